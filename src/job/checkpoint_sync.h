// Checkpoint sync: SageMaker's CheckpointConfig (contract §6) between a local directory
// (LocalPath, /opt/ml/checkpoints by default) and a store prefix (S3Uri).
//
//   - Before the training process starts, RestoreCheckpoints copies everything under S3Uri into
//     LocalPath (also after a restart, so a script can resume).
//   - While it runs, a CheckpointSyncer uploads new and changed files as objects (key = S3Uri as a
//     folder + relative path) and deletes the objects of files deleted locally. Objects added to
//     the store by others are never pulled down, and objects the syncer never saw locally are
//     never deleted.
//   - After the process exits, Stop() makes one final sweep.
//
// A file is never uploaded while it is half-written: an upload is triggered by inotify
// (IN_CLOSE_WRITE, or IN_MOVED_TO for writers that rename into place), or, for writers that never
// close (mmap, long-lived handles), by the file's size and mtime staying unchanged for
// `quiet_period`. Size and mtime are compared before and after each upload; a file that changed
// meanwhile is uploaded again later. Temporary files of writers (".tmp", ".swp") are uploaded like
// any other file, as SageMaker does; one that disappears before its upload is skipped silently.
//
// "Already uploaded" is remembered per relative path as (size, mtime ns). At Start() the store is
// listed once: a local file counts as uploaded when an object of the same size exists that is not
// older than the file (`aws s3 sync`'s rule), which covers the files RestoreCheckpoints wrote
// (it sets their mtime to the object's LastModified).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/status.h"
#include "store/object_store.h"
#include "store/store_uri.h"

namespace trainfeed {

struct CheckpointSyncOptions {
  // Full rescan of LocalPath; also how soon a quiet file (no close event) is noticed.
  std::chrono::milliseconds scan_interval{1000};
  // A file is uploaded only after its size and mtime stopped changing for this long, or right
  // after an IN_CLOSE_WRITE / IN_MOVED_TO for it.
  std::chrono::milliseconds quiet_period{2000};
  // Parallel uploads (each may be a multipart upload of a large checkpoint).
  int upload_concurrency = 4;
};

// Copies every object under `s3_uri` (taken as a folder: "ckpt" means "ckpt/") into `local_path`,
// creating it. An empty or missing prefix is not an error: a first run has no checkpoints. Files
// already complete locally are skipped, so a retry after a partial restore is cheap.
Status RestoreCheckpoints(ObjectStore& store, const StoreUri& s3_uri,
                          const std::string& local_path);

class CheckpointSyncer {
 public:
  struct Stats {
    uint64_t uploaded_files = 0, uploaded_bytes = 0, deleted_files = 0;
  };

  // REQUIRES: `store` and `clock` outlive the syncer.
  CheckpointSyncer(ObjectStore& store, StoreUri s3_uri, std::string local_path,
                   CheckpointSyncOptions options, Clock& clock = RealClock());
  ~CheckpointSyncer();  // stops the thread without a final sweep
  CheckpointSyncer(const CheckpointSyncer&) = delete;
  CheckpointSyncer& operator=(const CheckpointSyncer&) = delete;

  // Lists the store (see the file comment), creates LocalPath if missing, sets up the inotify
  // watches and starts the background thread. Errors: the store cannot be listed, LocalPath
  // cannot be created, or inotify is unavailable.
  Status Start();
  // Stops the background thread, then makes one final full sweep: uploads everything new or
  // changed (a file still changing is retried a few times, a quiet period apart) and deletes the
  // objects of removed files. Returns the first error of that sweep, i.e. what is still out of
  // sync; failures during training that a later sweep repaired are only logged.
  Status Stop();

  Stats stats() const;

 private:
  struct FileStat {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileStat&) const = default;
  };
  struct Pending {
    FileStat stat;                                        // as last observed
    std::chrono::steady_clock::time_point since;          // when `stat` was first observed
    std::chrono::steady_clock::time_point retry_after{};  // after a failed upload
    int failures = 0;
  };
  struct SweepResult {
    Status first_error;
    bool changed_during_upload = false;  // some file must be uploaded again
  };

  void Run();
  // Reads all queued inotify events; returns true if any may call for a sweep.
  bool DrainEvents();
  // Walks LocalPath: regular files (and symlinks to them) by relative path. `complete` is false
  // when some directory could not be read, so absence proves nothing.
  Status Walk(std::map<std::string, FileStat>& files, bool& complete);
  void WalkDir(const std::string& rel_dir, std::map<std::string, FileStat>& files, bool& complete,
               Status& first_error);
  SweepResult Sweep(bool final);
  std::string KeyOf(const std::string& rel) const { return prefix_ + rel; }
  std::string AbsOf(const std::string& rel) const { return local_path_ + "/" + rel; }

  ObjectStore& store_;
  const StoreUri s3_uri_;
  std::string prefix_;      // s3_uri_.key as a folder: "" or ending in '/'
  std::string local_path_;  // without a trailing '/'
  const CheckpointSyncOptions options_;
  Clock& clock_;

  int inotify_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the thread
  std::thread thread_;
  bool started_ = false;

  // Touched only by the thread running sweeps (the background thread, or Stop() after joining).
  std::map<std::string, FileStat> uploaded_;         // relative path -> what the store holds
  std::map<std::string, FileStat> remote_at_start_;  // consumed by the first sweep
  std::map<std::string, Pending> pending_;           // new or changed, not yet uploaded
  std::set<std::string> closed_;                     // close/rename event seen, not yet handled
  std::map<int, std::string> watches_;               // inotify wd -> relative directory

  mutable std::mutex mu_;
  Stats stats_;  // Guarded by mu_.
};

}  // namespace trainfeed
