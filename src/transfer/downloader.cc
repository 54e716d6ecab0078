#include "transfer/downloader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <spdlog/spdlog.h>

#include "transfer/beneath.h"

namespace trainfeed {

namespace {

constexpr char kEtagXattr[] = "user.trainfeed.etag";

// The hidden name a file is written under until complete. Deterministic, so a rerun after a
// crash overwrites its own leftovers instead of piling up new ones.
std::string TemporaryName(const std::string& name) {
  std::string tmp = "." + name + ".tfpart";
  if (tmp.size() <= 255) return tmp;
  char hex[17];
  snprintf(hex, sizeof(hex), "%016zx", std::hash<std::string>{}(name));
  return std::string(".tfpart-") + hex;
}

timespec ToTimespec(std::chrono::system_clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

// Links an O_TMPFILE descriptor into `dir` as `name`. AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH;
// without it the /proc/self/fd path does the same for the file's owner.
int LinkAnonymous(int fd, int dir, const std::string& name) {
  if (::linkat(fd, "", dir, name.c_str(), AT_EMPTY_PATH) == 0) return 0;
  if (errno != ENOENT && errno != EPERM) return -1;
  std::string proc = "/proc/self/fd/" + std::to_string(fd);
  return ::linkat(AT_FDCWD, proc.c_str(), dir, name.c_str(), AT_SYMLINK_FOLLOW);
}

// Writes a part's bytes at their place in the file, in order.
//
// Parts of one large object are written by several workers at once, and every write takes the
// file's inode lock: network reads arrive in pieces of 16-64 KiB, so the pieces of a large part are
// gathered into 1 MiB writes, which measurably cuts the kernel time spent contending for the lock.
// Small objects have one writer each and are written as they arrive (gathering would only add a
// copy).
class PwriteSink final : public ByteSink {
 public:
  static constexpr size_t kWriteBatch = 1 << 20;

  // `batch` is the calling worker's buffer, reused across its GETs.
  PwriteSink(int fd, uint64_t offset, uint64_t expected_bytes, const ObjectInfo& expected,
             std::atomic<uint64_t>& received, std::vector<char>& batch)
      : fd_(fd),
        offset_(offset),
        gather_(expected_bytes != kUnknownSize && expected_bytes >= 2 * kWriteBatch),
        expected_(expected),
        received_(received),
        batch_(batch) {
    batch_.clear();
  }
  Status Begin(const GetResult& meta) override {
    object_size_ = meta.object_size;
    if (!expected_.etag.empty() && !meta.etag.empty() && meta.etag != expected_.etag) {
      return PreconditionFailedError("object changed since it was listed (ETag " +
                                     expected_.etag + " -> " + meta.etag + ")");
    }
    if (expected_.size != kUnknownSize && meta.object_size != expected_.size) {
      return DataLossError("object is " + std::to_string(meta.object_size) +
                           " bytes but was listed as " + std::to_string(expected_.size));
    }
    return OkStatus();
  }
  Status Append(const char* data, size_t size) override {
    received_.fetch_add(size, std::memory_order_relaxed);
    if (!gather_ || (batch_.empty() && size >= kWriteBatch)) return WriteAt(data, size);
    if (batch_.capacity() < kWriteBatch) batch_.reserve(kWriteBatch);
    while (size > 0) {
      size_t take = std::min(size, kWriteBatch - batch_.size());
      batch_.insert(batch_.end(), data, data + take);
      data += take;
      size -= take;
      if (batch_.size() == kWriteBatch) TF_RETURN_IF_ERROR(Flush());
    }
    return OkStatus();
  }
  // Writes what is still gathered; call before checking written().
  Status Flush() {
    Status s = WriteAt(batch_.data(), batch_.size());
    batch_.clear();
    return s;
  }
  uint64_t written() const { return written_; }
  uint64_t object_size() const { return object_size_; }

 private:
  Status WriteAt(const char* data, size_t size) {
    while (size > 0) {
      ssize_t n = ::pwrite(fd_, data, size, static_cast<off_t>(offset_ + written_));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoToStatus(errno, "write");
      }
      data += n;
      size -= static_cast<size_t>(n);
      written_ += static_cast<uint64_t>(n);
    }
    return OkStatus();
  }

  int fd_;
  uint64_t offset_;
  bool gather_;
  uint64_t written_ = 0;
  uint64_t object_size_ = 0;  // as the response reported it
  const ObjectInfo& expected_;
  std::atomic<uint64_t>& received_;
  std::vector<char>& batch_;
};

}  // namespace

// One object being downloaded: shared by its parts; the last part to finish completes it.
struct Downloader::FileJob {
  DownloadItem item;
  std::string name;       // last path component
  std::string temp_name;  // hidden name while incomplete (when the file system has no O_TMPFILE)
  bool anonymous = false;  // fd is an O_TMPFILE: it has no name until it is linked in, complete
  std::once_flag open_once;
  Status open_status;    // set inside open_once
  bool skipped = false;  // already complete on disk (set inside open_once)
  UniqueFd dir_fd;
  UniqueFd fd;
  std::atomic<int> parts_left{0};
  std::mutex mu;
  Status failure;  // Guarded by mu: the first part failure.
};

Downloader::Downloader(ObjectStore& store, DownloadOptions options)
    : store_(store), options_(options), queue_(static_cast<size_t>(options.concurrency) * 4) {}

Downloader::~Downloader() {
  if (!workers_.empty()) {
    Cancel(CancelledError("download abandoned"));
    queue_.Close();
    for (auto& t : workers_) t.join();
  }
  if (root_fd_ >= 0) ::close(root_fd_);
}

Status Downloader::Start(const std::string& destination_dir) {
  std::error_code ec;
  if (::mkdir(destination_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "create destination directory '" + destination_dir + "'");
  }
  root_fd_ = ::open(destination_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd_ < 0) return ErrnoToStatus(errno, "open destination '" + destination_dir + "'");
  started_ = std::chrono::steady_clock::now();
  for (int i = 0; i < options_.concurrency; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  return OkStatus();
}

bool Downloader::Add(DownloadItem item) {
  if (stopping()) return false;
  auto job = std::make_shared<FileJob>();
  size_t slash = item.relative_path.rfind('/');
  job->name = slash == std::string::npos ? item.relative_path : item.relative_path.substr(slash + 1);
  job->temp_name = TemporaryName(job->name);
  uint64_t size = item.info.size;
  progress_.objects_queued.fetch_add(1, std::memory_order_relaxed);
  if (size != kUnknownSize) progress_.bytes_queued.fetch_add(size, std::memory_order_relaxed);
  job->item = std::move(item);

  std::vector<ByteRange> ranges;
  if (size > options_.multipart_threshold && size != kUnknownSize) {
    for (uint64_t begin = 0; begin < size; begin += options_.part_size) {
      ranges.push_back({begin, std::min(size, begin + options_.part_size)});
    }
  } else {
    ranges.push_back({0, size});  // one GET without a Range header (also for empty objects)
  }
  job->parts_left.store(static_cast<int>(ranges.size()));
  for (const ByteRange& r : ranges) {
    if (!queue_.Push(Part{job, r})) return false;
  }
  return !stopping();
}

void Downloader::AddFailure(std::string key, Status status) {
  progress_.objects_failed.fetch_add(1, std::memory_order_relaxed);
  RecordFailure(key, status);
}

void Downloader::WorkerLoop() {
  while (std::optional<Part> part = queue_.Pop()) {
    RunPart(*part);
  }
}

Status Downloader::OpenJob(FileJob& job) {
  const std::string& rel = job.item.relative_path;
  size_t slash = rel.rfind('/');
  std::string dir = slash == std::string::npos ? "" : rel.substr(0, slash);
  TF_ASSIGN_OR_RETURN(job.dir_fd, OpenDirectoryBeneath(root_fd_, dir, /*create=*/true));

  if (options_.skip_complete && job.item.info.size != kUnknownSize) {
    // Complete from an earlier run? Size and ETag must match; where the file system keeps no
    // user xattrs, size and mtime (which we set from LastModified) stand in for the ETag.
    UniqueFd existing(OpenBeneath(job.dir_fd.get(), job.name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
    struct stat st;
    if (existing && ::fstat(existing.get(), &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<uint64_t>(st.st_size) == job.item.info.size) {
      char etag[256];
      ssize_t n = ::fgetxattr(existing.get(), kEtagXattr, etag, sizeof(etag));
      bool same;
      if (n >= 0) {
        same = std::string_view(etag, static_cast<size_t>(n)) == job.item.info.etag;
      } else {
        timespec want = ToTimespec(job.item.info.last_modified);
        same = (errno == ENOTSUP) && st.st_mtim.tv_sec == want.tv_sec &&
               st.st_mtim.tv_nsec == want.tv_nsec;
      }
      if (same) {
        job.skipped = true;
        return OkStatus();
      }
    }
  }
  // An unnamed file (O_TMPFILE) is linked in only once complete: one change to the directory
  // instead of create + rename (directory locks are the bottleneck with many small files), and
  // nothing to clean up if the process dies. Elsewhere: a hidden temporary name, then rename.
  job.fd = UniqueFd(OpenBeneath(job.dir_fd.get(), ".", O_TMPFILE | O_WRONLY, 0644));
  job.anonymous = static_cast<bool>(job.fd);
  if (!job.fd) {
    job.fd = UniqueFd(OpenBeneath(job.dir_fd.get(), job.temp_name,
                                  O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644));
  }
  if (!job.fd) return ErrnoToStatus(errno, "create '" + rel + "' (temporary name)");
  // Reserve the space now: a full disk fails here, before any byte is fetched.
  if (job.item.info.size > 0 && job.item.info.size != kUnknownSize &&
      ::fallocate(job.fd.get(), 0, 0, static_cast<off_t>(job.item.info.size)) != 0 &&
      errno != EOPNOTSUPP) {
    Status s = ErrnoToStatus(errno, "reserve " + std::to_string(job.item.info.size) +
                                        " bytes for '" + rel + "'");
    if (!job.anonymous) ::unlinkat(job.dir_fd.get(), job.temp_name.c_str(), 0);
    job.fd = UniqueFd();
    return s;
  }
  return OkStatus();
}

void Downloader::RunPart(Part& part) {
  FileJob& job = *part.job;
  std::call_once(job.open_once, [&] { job.open_status = OpenJob(job); });
  if (!job.open_status.ok()) {
    FinishPart(job, job.open_status);
    return;
  }
  if (job.skipped) {
    FinishPart(job, OkStatus());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(job.mu);
    if (!job.failure.ok()) {  // an earlier part already failed: don't fetch the rest
      FinishPart(job, OkStatus());
      return;
    }
  }
  if (stopping()) {
    FinishPart(job, CancelledError("download stopped"));
    return;
  }
  GetRequest request;
  request.object = job.item.object;
  request.if_match = job.item.info.etag;
  bool whole = part.range.begin == 0 && part.range.end == job.item.info.size;
  if (!whole) request.range = part.range;
  uint64_t expected_bytes = job.item.info.size == kUnknownSize ? kUnknownSize : part.range.size();
  thread_local std::vector<char> batch;  // workers are long-lived threads: one buffer each
  PwriteSink sink(job.fd.get(), part.range.begin, expected_bytes, job.item.info,
                  progress_.bytes_received, batch);
  Result<GetResult> got = store_.Get(request, sink);
  Status status = got.status();
  Status flushed = sink.Flush();
  if (status.ok()) status = flushed;
  uint64_t expected = job.item.info.size == kUnknownSize ? sink.object_size() : part.range.size();
  if (status.ok() && sink.written() != expected) {
    status = DataLossError("received " + std::to_string(sink.written()) + " bytes of " +
                           std::to_string(expected) + " at offset " +
                           std::to_string(part.range.begin));
  }
  if (status.ok()) progress_.bytes_done.fetch_add(expected, std::memory_order_relaxed);
  FinishPart(job, status);
}

void Downloader::FinishPart(FileJob& job, Status part_status) {
  if (!part_status.ok()) {
    std::lock_guard<std::mutex> lock(job.mu);
    if (job.failure.ok()) job.failure = part_status;
  }
  if (job.parts_left.fetch_sub(1) != 1) return;

  // The last part: complete or clean up the file.
  const std::string& key = job.item.object.key;
  Status failure;
  {
    std::lock_guard<std::mutex> lock(job.mu);
    failure = job.failure;
  }
  if (failure.ok() && job.skipped) {
    progress_.objects_skipped.fetch_add(1, std::memory_order_relaxed);
    progress_.bytes_skipped.fetch_add(job.item.info.size, std::memory_order_relaxed);
    progress_.bytes_done.fetch_add(job.item.info.size, std::memory_order_relaxed);
    progress_.objects_done.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (failure.ok()) {
    int fd = job.fd.get();
    const std::string& etag = job.item.info.etag;
    if (::fsetxattr(fd, kEtagXattr, etag.data(), etag.size(), 0) != 0 && errno != ENOTSUP) {
      failure = ErrnoToStatus(errno, "record ETag of '" + job.item.relative_path + "'");
    }
    timespec times[2] = {{0, UTIME_OMIT}, ToTimespec(job.item.info.last_modified)};
    if (failure.ok() && job.item.info.last_modified.time_since_epoch().count() != 0 &&
        ::futimens(fd, times) != 0) {
      failure = ErrnoToStatus(errno, "set mtime of '" + job.item.relative_path + "'");
    }
    if (failure.ok()) failure = PutInPlace(job);
    job.fd = UniqueFd();
  }
  if (failure.ok()) {
    progress_.objects_done.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Failed: never leave anything that could pass for the object.
  job.fd = UniqueFd();
  if (job.dir_fd && !job.anonymous) ::unlinkat(job.dir_fd.get(), job.temp_name.c_str(), 0);
  progress_.objects_failed.fetch_add(1, std::memory_order_relaxed);
  RecordFailure(key, failure);
  // Failures that will hit every other object too stop the run instead of repeating.
  ErrorCode code = failure.code();
  if (code == ErrorCode::kPermissionDenied || code == ErrorCode::kResourceExhausted) {
    Cancel(failure.WithContext("key '" + key + "'"));
  }
}

// Gives the complete file its final name, replacing whatever an earlier run left there.
Status Downloader::PutInPlace(FileJob& job) {
  const int dir = job.dir_fd.get();
  auto fail = [&] {
    return ErrnoToStatus(errno, "put '" + job.item.relative_path + "' in place");
  };
  if (job.anonymous) {
    if (LinkAnonymous(job.fd.get(), dir, job.name) == 0) return OkStatus();
    if (errno != EEXIST) return fail();
    // The name is taken (an older version of the object): link under the temporary name, then
    // rename over it, so the replacement is atomic.
    ::unlinkat(dir, job.temp_name.c_str(), 0);
    if (LinkAnonymous(job.fd.get(), dir, job.temp_name) != 0) return fail();
  }
  if (::renameat(dir, job.temp_name.c_str(), dir, job.name.c_str()) != 0) {
    Status s = fail();
    ::unlinkat(dir, job.temp_name.c_str(), 0);
    return s;
  }
  return OkStatus();
}

void Downloader::RecordFailure(const std::string& key, const Status& status) {
  if (status.code() == ErrorCode::kCancelled && stopping()) return;  // reported as the fatal one
  std::lock_guard<std::mutex> lock(report_mu_);
  if (failures_.size() < kMaxReportedFailures) failures_.push_back({key, status});
}

void Downloader::Cancel(Status why) {
  {
    std::lock_guard<std::mutex> lock(report_mu_);
    if (fatal_.ok()) fatal_ = why;
  }
  stopping_.store(true);
}

DownloadReport Downloader::Finish() {
  progress_.listing_done.store(true);
  queue_.Close();
  for (auto& t : workers_) t.join();
  workers_.clear();
  DownloadReport report;
  report.objects = progress_.objects_done.load();
  report.bytes = progress_.bytes_done.load();
  report.skipped_objects = progress_.objects_skipped.load();
  report.skipped_bytes = progress_.bytes_skipped.load();
  report.failed_objects = progress_.objects_failed.load();
  report.elapsed = std::chrono::steady_clock::now() - started_;
  std::lock_guard<std::mutex> lock(report_mu_);
  report.failures = failures_;
  report.fatal = fatal_;
  return report;
}

}  // namespace trainfeed
