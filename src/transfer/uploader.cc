#include "transfer/uploader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "transfer/beneath.h"

namespace trainfeed {

namespace {

Status ReadRange(const std::string& path, ByteRange range, std::string& buffer) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoToStatus(errno, "open '" + path + "'");
  buffer.resize(range.size());
  uint64_t done = 0;
  while (done < range.size()) {
    ssize_t n = ::pread(fd.get(), buffer.data() + done, range.size() - done,
                        static_cast<off_t>(range.begin + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "read '" + path + "'");
    if (n == 0) return DataLossError("'" + path + "' shrank while being uploaded");
    done += static_cast<uint64_t>(n);
  }
  return OkStatus();
}

}  // namespace

struct Uploader::FileJob {
  UploadItem item;
  std::once_flag create_once;
  Status create_status;
  std::string upload_id;
  std::atomic<int> parts_left{0};
  std::mutex mu;
  std::vector<CompletedPart> parts;  // Guarded by mu, as is failure.
  Status failure;
};

Uploader::Uploader(ObjectStore& store, UploadOptions options)
    : store_(store), options_(options), queue_(static_cast<size_t>(options.concurrency) * 2) {}

Uploader::~Uploader() {
  if (!workers_.empty()) Finish();
}

void Uploader::Start() {
  started_ = std::chrono::steady_clock::now();
  for (int i = 0; i < options_.concurrency; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

void Uploader::Add(UploadItem item) {
  auto job = std::make_shared<FileJob>();
  uint64_t size = item.size;
  job->item = std::move(item);
  if (size <= options_.multipart_threshold) {
    job->parts_left = 1;
    queue_.Push(Part{job, 0, {0, size}});
    return;
  }
  uint64_t part_size = std::max(options_.part_size, (size + 9'999) / 10'000);
  int count = static_cast<int>((size + part_size - 1) / part_size);
  job->parts_left = count;
  for (int i = 0; i < count; ++i) {
    uint64_t begin = static_cast<uint64_t>(i) * part_size;
    queue_.Push(Part{job, i + 1, {begin, std::min(size, begin + part_size)}});
  }
}

void Uploader::WorkerLoop() {
  while (std::optional<Part> part = queue_.Pop()) RunPart(*part);
}

void Uploader::RunPart(const Part& part) {
  FileJob& job = *part.job;
  thread_local std::string buffer;
  if (part.number == 0) {
    Status s = ReadRange(job.item.local_path, part.range, buffer);
    if (s.ok()) s = store_.Put(job.item.object, buffer).status();
    if (s.ok()) bytes_sent += part.range.size();
    FinishPart(job, s);
    return;
  }
  std::call_once(job.create_once, [&] {
    Result<std::string> id = store_.CreateMultipartUpload(job.item.object);
    job.create_status = id.status();
    if (id.ok()) job.upload_id = *id;
  });
  Status s = job.create_status;
  {
    std::lock_guard<std::mutex> lock(job.mu);
    if (s.ok() && !job.failure.ok()) s = CancelledError("another part failed");
  }
  if (s.ok()) s = ReadRange(job.item.local_path, part.range, buffer);
  if (s.ok()) {
    Result<std::string> etag = store_.UploadPart(job.item.object, job.upload_id, part.number, buffer);
    s = etag.status();
    if (s.ok()) {
      bytes_sent += part.range.size();
      std::lock_guard<std::mutex> lock(job.mu);
      job.parts.push_back({part.number, *etag});
    }
  }
  FinishPart(job, s);
}

void Uploader::FinishPart(FileJob& job, Status status) {
  if (!status.ok()) {
    std::lock_guard<std::mutex> lock(job.mu);
    if (job.failure.ok() || job.failure.code() == ErrorCode::kCancelled) job.failure = status;
  }
  if (job.parts_left.fetch_sub(1) != 1) return;
  Status failure;
  {
    std::lock_guard<std::mutex> lock(job.mu);
    failure = job.failure;
  }
  if (!job.upload_id.empty()) {
    if (failure.ok()) {
      std::sort(job.parts.begin(), job.parts.end(),
                [](const CompletedPart& a, const CompletedPart& b) {
                  return a.part_number < b.part_number;
                });
      failure = store_.CompleteMultipartUpload(job.item.object, job.upload_id, job.parts).status();
    }
    if (!failure.ok()) {
      // Best effort: a leftover upload costs storage but is invisible as an object.
      (void)store_.AbortMultipartUpload(job.item.object, job.upload_id);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (failure.ok()) {
    report_.objects += 1;
    report_.bytes += job.item.size;
  } else {
    report_.failed_objects += 1;
    if (report_.failures.size() < 100) report_.failures.emplace_back(job.item.local_path, failure);
  }
}

UploadReport Uploader::Finish() {
  queue_.Close();
  for (auto& t : workers_) t.join();
  workers_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  report_.elapsed = std::chrono::steady_clock::now() - started_;
  return report_;
}

}  // namespace trainfeed
