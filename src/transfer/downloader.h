// Downloader: the engine that moves objects from a store onto local disk, fast and safely.
//
// A producer Add()s objects (already mapped to safe relative paths); a fixed pool of workers
// fetches them. Objects above `multipart_threshold` are split into `part_size` ranged GETs that
// run in parallel and are written in place with pwrite(), so memory use is the libcurl buffers of
// the workers plus a bounded queue, whatever the dataset's size or object count.
//
// Safety:
//  - every write stays beneath the destination directory (openat2 RESOLVE_BENEATH: no "..", no
//    symlink out);
//  - data goes to a hidden temporary name (".NAME.tfpart") and is renamed into place only when
//    every byte has arrived and the length equals the listed size, so a file under its final name
//    is always complete;
//  - every GET carries If-Match with the listed ETag: an object that changes mid-download fails
//    clearly instead of mixing versions;
//  - a finished file records its ETag (xattr user.trainfeed.etag) and the object's mtime, so a
//    rerun skips files that are already complete (size + ETag; size + mtime where the file system
//    has no user xattrs).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/object_store.h"
#include "transfer/work_queue.h"

namespace trainfeed {

struct DownloadOptions {
  // GETs in flight. 64 streams keep a 10 Gb/s NIC busy against S3, where one stream gets
  // ~50-90 MB/s; on loopback fewer suffice but more cost little (threads mostly wait).
  int concurrency = 64;
  // Size of each ranged GET of a large object. 8 MiB matches the aws cli and S3's guidance.
  uint64_t part_size = 8ull << 20;
  // Objects larger than this are split into parts; smaller ones are one GET each.
  uint64_t multipart_threshold = 16ull << 20;
  // Skip files that are already complete from an earlier run.
  bool skip_complete = true;
};

// ObjectInfo::size of an object known only by name (a manifest entry): it is fetched with one
// GET, its length checked against the response's Content-Length, and never skipped on reruns.
inline constexpr uint64_t kUnknownSize = ~uint64_t{0};

struct DownloadItem {
  ObjectRef object;           // bucket + key in the store
  ObjectInfo info;            // size (or kUnknownSize), etag, last_modified from the listing
  std::string relative_path;  // where it goes under the destination, already checked safe
};

struct DownloadFailure {
  std::string key;
  Status status;
};

// Live counters, safe to read from another thread (the progress line).
struct DownloadProgress {
  std::atomic<uint64_t> objects_queued{0}, bytes_queued{0};
  std::atomic<uint64_t> objects_done{0}, bytes_done{0};  // includes skipped
  std::atomic<uint64_t> objects_skipped{0}, bytes_skipped{0};
  std::atomic<uint64_t> objects_failed{0};
  std::atomic<uint64_t> bytes_received{0};  // from the network, this run
  std::atomic<bool> listing_done{false};
};

struct DownloadReport {
  uint64_t objects = 0, bytes = 0;  // complete under their final name (incl. skipped)
  uint64_t skipped_objects = 0, skipped_bytes = 0;
  uint64_t failed_objects = 0;
  std::vector<DownloadFailure> failures;  // the first kMaxReportedFailures
  Status fatal;                           // set when the whole run stopped early
  std::chrono::duration<double> elapsed{};
  bool ok() const { return fatal.ok() && failed_objects == 0; }
};

class Downloader {
 public:
  static constexpr size_t kMaxReportedFailures = 100;

  // REQUIRES: `store` outlives the Downloader.
  Downloader(ObjectStore& store, DownloadOptions options);
  ~Downloader();  // cancels and joins

  // Creates (if needed) and opens the destination directory and starts the workers.
  Status Start(const std::string& destination_dir);
  // Queues one object; blocks while the queue is full. Returns false once the run has stopped
  // (cancelled or a fatal error): the producer should stop listing.
  bool Add(DownloadItem item);
  // Records a failure found before queueing (e.g. an unsafe key), so it is reported with the rest.
  void AddFailure(std::string key, Status status);
  // No more objects: waits for the workers and returns what happened.
  DownloadReport Finish();
  // Stops early: queued work is dropped, in-flight GETs finish, temporary files are removed.
  void Cancel(Status why);

  const DownloadProgress& progress() const { return progress_; }

 private:
  struct FileJob;
  struct Part {
    std::shared_ptr<FileJob> job;
    ByteRange range;
  };

  void WorkerLoop();
  void RunPart(Part& part);
  Status OpenJob(FileJob& job);
  Status PutInPlace(FileJob& job);
  void FinishPart(FileJob& job, Status part_status);
  void RecordFailure(const std::string& key, const Status& status);
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  ObjectStore& store_;
  DownloadOptions options_;
  int root_fd_ = -1;
  WorkQueue<Part> queue_;
  std::vector<std::thread> workers_;
  DownloadProgress progress_;
  std::atomic<bool> stopping_{false};
  std::chrono::steady_clock::time_point started_;

  std::mutex report_mu_;
  std::vector<DownloadFailure> failures_;  // Guarded by report_mu_, as is fatal_.
  Status fatal_;
};

}  // namespace trainfeed
