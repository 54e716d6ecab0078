// Uploader: local files to a store, in parallel. Files above `multipart_threshold` go up as a
// multipart upload whose parts run in parallel; a failed multipart upload is aborted so no
// half-object and no orphaned parts are left behind. Memory: at most one part buffer per worker.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/object_store.h"
#include "transfer/work_queue.h"

namespace trainfeed {

struct UploadOptions {
  // PUTs in flight. Each holds one part in memory: 16 x 8 MiB = 128 MiB at most.
  int concurrency = 16;
  // S3 needs parts of at least 5 MiB (but the last) and at most 10,000 of them; the part size is
  // raised automatically for objects over part_size * 10,000.
  uint64_t part_size = 8ull << 20;
  uint64_t multipart_threshold = 16ull << 20;
};

struct UploadItem {
  std::string local_path;
  ObjectRef object;
  uint64_t size = 0;
};

struct UploadReport {
  uint64_t objects = 0, bytes = 0, failed_objects = 0;
  std::vector<std::pair<std::string, Status>> failures;  // local path, why (first 100)
  std::chrono::duration<double> elapsed{};
  bool ok() const { return failed_objects == 0; }
};

class Uploader {
 public:
  Uploader(ObjectStore& store, UploadOptions options);
  ~Uploader();
  void Start();
  // Queues one file; blocks while the queue is full.
  void Add(UploadItem item);
  UploadReport Finish();

  std::atomic<uint64_t> bytes_sent{0};

 private:
  struct FileJob;
  struct Part {
    std::shared_ptr<FileJob> job;
    int number;  // 1-based; 0 = whole object in one PUT
    ByteRange range;
  };
  void WorkerLoop();
  void RunPart(const Part& part);
  void FinishPart(FileJob& job, Status status);

  ObjectStore& store_;
  UploadOptions options_;
  WorkQueue<Part> queue_;
  std::vector<std::thread> workers_;
  std::chrono::steady_clock::time_point started_;
  std::mutex mu_;
  UploadReport report_;  // Guarded by mu_.
};

}  // namespace trainfeed
