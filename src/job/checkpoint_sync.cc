#include "job/checkpoint_sync.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "dataset/local_names.h"
#include "modes/file/prefix_download.h"
#include "transfer/uploader.h"

namespace trainfeed {

namespace {

using std::chrono::steady_clock;

// Directory events that can change what a sweep finds. IN_MODIFY is left out on purpose: it fires
// on every write() and says nothing about whether the writer is done.
constexpr uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

// A burst of events (a script saving many small files) is handled in one sweep, not one each.
constexpr std::chrono::milliseconds kMinSweepGap{20};

// Final sweep: how many times a file that keeps changing under the upload is retried.
constexpr int kFinalRounds = 3;

std::string AsFolder(std::string key) {
  if (!key.empty() && key.back() != '/') key += '/';
  return key;
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

}  // namespace

Status RestoreCheckpoints(ObjectStore& store, const StoreUri& s3_uri,
                          const std::string& local_path) {
  StoreUri folder = s3_uri;
  folder.key = AsFolder(folder.key);
  std::error_code ec;
  std::filesystem::create_directories(local_path, ec);
  if (ec) return ErrnoToStatus(ec.value(), "create checkpoint directory '" + local_path + "'");

  // A first run has no checkpoints; only a failing listing (no bucket, no access) is an error.
  // DownloadPrefix alone cannot tell the two apart: it calls an empty prefix NotFound.
  ListRequest probe;
  probe.bucket = folder.bucket;
  probe.prefix = folder.key;
  probe.max_keys = 2;  // "ckpt/" may be a folder marker; see past it
  Result<ListPage> page = store.List(probe);
  if (!page.ok()) return page.status().WithContext("list checkpoints at " + folder.ToString());
  bool any = page->next_continuation_token.size() > 0;
  for (const ObjectInfo& info : page->objects) any = any || !IsFolderMarker(info.key);
  if (!any) {
    spdlog::info("no checkpoints to restore from {}", folder.ToString());
    return OkStatus();
  }

  DownloadReport report = DownloadPrefix(store, folder, local_path, {});
  bool empty = report.fatal.code() == ErrorCode::kNotFound && report.objects == 0 &&
               report.failed_objects == 0;
  if (!report.fatal.ok() && !empty) {
    return report.fatal.WithContext("restore checkpoints from " + folder.ToString());
  }
  if (report.failed_objects > 0) {
    const DownloadFailure& first = report.failures.front();
    return first.status.WithContext("restore checkpoints from " + folder.ToString() + ": " +
                                    std::to_string(report.failed_objects) +
                                    " objects failed; first '" + first.key + "'");
  }
  spdlog::info("restored {} checkpoint files ({} bytes) from {}", report.objects, report.bytes,
               folder.ToString());
  return OkStatus();
}

CheckpointSyncer::CheckpointSyncer(ObjectStore& store, StoreUri s3_uri, std::string local_path,
                                   CheckpointSyncOptions options, Clock& clock)
    : store_(store),
      s3_uri_(std::move(s3_uri)),
      prefix_(AsFolder(s3_uri_.key)),
      local_path_(std::move(local_path)),
      options_(options),
      clock_(clock) {
  while (local_path_.size() > 1 && local_path_.back() == '/') local_path_.pop_back();
}

CheckpointSyncer::~CheckpointSyncer() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status CheckpointSyncer::Start() {
  if (started_) return InternalError("CheckpointSyncer::Start called twice");
  std::error_code ec;
  std::filesystem::create_directories(local_path_, ec);
  if (ec) return ErrnoToStatus(ec.value(), "create checkpoint directory '" + local_path_ + "'");

  ListRequest request;
  request.bucket = s3_uri_.bucket;
  request.prefix = prefix_;
  do {
    Result<ListPage> page = store_.List(request);
    if (!page.ok()) {
      return page.status().WithContext("list checkpoints at " +
                                       store_.Describe({s3_uri_.bucket, prefix_}));
    }
    for (const ObjectInfo& info : page->objects) {
      if (IsFolderMarker(info.key) || info.key.size() <= prefix_.size()) continue;
      int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       info.last_modified.time_since_epoch())
                       .count();
      remote_at_start_[info.key.substr(prefix_.size())] = {info.size, ns};
    }
    request.continuation_token = page->next_continuation_token;
  } while (!request.continuation_token.empty());

  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) return ErrnoToStatus(errno, "inotify_init1");
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return ErrnoToStatus(errno, "eventfd");

  // Synchronously, so watches are in place before the training process starts writing.
  SweepResult first = Sweep(/*final=*/false);
  if (!first.first_error.ok()) {
    spdlog::warn("checkpoint sync: {}", first.first_error.ToString());
  }
  started_ = true;
  thread_ = std::thread([this] { Run(); });
  spdlog::info("syncing checkpoints from '{}' to {}", local_path_,
               store_.Describe({s3_uri_.bucket, prefix_}));
  return OkStatus();
}

Status CheckpointSyncer::Stop() {
  if (!started_) return InternalError("CheckpointSyncer::Stop without a successful Start");
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (::write(wake_fd_, &one, sizeof(one)) < 0) {
      return ErrnoToStatus(errno, "wake the checkpoint sync thread");
    }
    thread_.join();
  }
  SweepResult result;
  for (int round = 1; round <= kFinalRounds; ++round) {
    DrainEvents();
    result = Sweep(/*final=*/true);
    if (!result.changed_during_upload) break;
    if (round == kFinalRounds) {
      if (result.first_error.ok()) {
        result.first_error = UnavailableError("checkpoint files under '" + local_path_ +
                                              "' kept changing during the final upload");
      }
      break;
    }
    // Something still writes: give it a quiet period to finish before trying again.
    clock_.SleepFor(options_.quiet_period);
  }
  Stats s = stats();
  spdlog::info("checkpoint sync stopped: {} files ({} bytes) uploaded, {} deleted",
               s.uploaded_files, s.uploaded_bytes, s.deleted_files);
  return result.first_error;
}

CheckpointSyncer::Stats CheckpointSyncer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CheckpointSyncer::Run() {
  steady_clock::time_point last_sweep = clock_.Monotonic();
  steady_clock::time_point next_sweep = last_sweep + options_.scan_interval;
  for (;;) {
    steady_clock::time_point now = clock_.Monotonic();
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_sweep - now);
    int timeout_ms = static_cast<int>(std::max<int64_t>(0, wait.count()));
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) {
      spdlog::error("checkpoint sync: poll: {}; falling back to scanning", std::strerror(errno));
      clock_.SleepFor(options_.scan_interval);
    }
    if (n > 0 && (fds[1].revents & POLLIN)) return;
    if (n > 0 && (fds[0].revents & POLLIN) && DrainEvents()) {
      next_sweep = std::min(next_sweep, last_sweep + kMinSweepGap);
    }
    now = clock_.Monotonic();
    if (now < next_sweep) continue;

    SweepResult result = Sweep(/*final=*/false);
    (void)result;  // Sweep logs each failure; the final sweep reports what is left
    last_sweep = clock_.Monotonic();
    next_sweep = last_sweep + options_.scan_interval;
    // Wake up exactly when the next quiet file becomes eligible.
    for (const auto& [rel, p] : pending_) {
      next_sweep = std::min(next_sweep, std::max(p.since + options_.quiet_period, p.retry_after));
    }
    next_sweep = std::max(next_sweep, last_sweep + kMinSweepGap);
  }
}

bool CheckpointSyncer::DrainEvents() {
  if (inotify_fd_ < 0) return false;
  alignas(inotify_event) char buffer[64 * 1024];
  bool any = false;
  for (;;) {
    ssize_t n = ::read(inotify_fd_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: drained
    for (char* p = buffer; p < buffer + n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + event->len;
      if (event->mask & IN_Q_OVERFLOW) {
        // Close events were lost: those files fall back to the quiet-period rule.
        any = true;
        continue;
      }
      if (event->mask & IN_IGNORED) {
        watches_.erase(event->wd);
        continue;
      }
      auto it = watches_.find(event->wd);
      if (it == watches_.end()) continue;
      any = true;
      if (event->len == 0 || (event->mask & IN_ISDIR)) continue;
      if (event->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
        std::string name = event->name;  // NUL-padded
        closed_.insert(it->second.empty() ? name : it->second + "/" + name);
      }
    }
  }
  return any;
}

void CheckpointSyncer::WalkDir(const std::string& rel_dir, std::map<std::string, FileStat>& files,
                               bool& complete, Status& first_error) {
  std::string abs_dir = rel_dir.empty() ? local_path_ : AbsOf(rel_dir);
  DIR* d = ::opendir(abs_dir.c_str());
  if (d == nullptr) {
    // A subdirectory deleted or replaced mid-walk: its files really are gone from here.
    if (!rel_dir.empty() && (errno == ENOENT || errno == ENOTDIR)) return;
    complete = false;
    if (first_error.ok()) first_error = ErrnoToStatus(errno, "open directory '" + abs_dir + "'");
    return;
  }
  if (inotify_fd_ >= 0) {
    // Re-adding is cheap and returns the same wd, which also refreshes the path of a directory
    // renamed since. The root may be a symlink (LocalPath on another volume): follow it there.
    uint32_t mask = kWatchMask | (rel_dir.empty() ? 0 : IN_DONT_FOLLOW);
    int wd = ::inotify_add_watch(inotify_fd_, abs_dir.c_str(), mask);
    if (wd >= 0) {
      watches_[wd] = rel_dir;
    } else if (errno == ENOSPC) {
      static std::once_flag once;
      std::call_once(once, [] {
        spdlog::warn(
            "checkpoint sync: out of inotify watches (fs.inotify.max_user_watches); files in some "
            "directories are uploaded after the quiet period only");
      });
    }
  }
  std::vector<std::string> subdirs;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string rel = rel_dir.empty() ? std::string(name) : rel_dir + "/" + std::string(name);
    struct stat st;
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      errno = 0;
      continue;  // gone since readdir
    }
    if (S_ISDIR(st.st_mode)) {
      subdirs.push_back(std::move(rel));
    } else {
      // A symlink to a file is uploaded as that file; linked directories are not followed.
      if (S_ISLNK(st.st_mode) && ::fstatat(::dirfd(d), e->d_name, &st, 0) != 0) st.st_mode = 0;
      if (S_ISREG(st.st_mode)) {
        files[rel] = {static_cast<uint64_t>(st.st_size), MtimeNs(st)};
      }
    }
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) {
    complete = false;
    if (first_error.ok()) first_error = ErrnoToStatus(err, "read directory '" + abs_dir + "'");
  }
  for (const std::string& sub : subdirs) WalkDir(sub, files, complete, first_error);
}

Status CheckpointSyncer::Walk(std::map<std::string, FileStat>& files, bool& complete) {
  complete = true;
  Status first_error;
  WalkDir("", files, complete, first_error);
  return first_error;
}

CheckpointSyncer::SweepResult CheckpointSyncer::Sweep(bool final) {
  SweepResult result;
  auto note = [&](const Status& s) {
    spdlog::warn("checkpoint sync: {}", s.ToString());
    if (result.first_error.ok()) result.first_error = s;
  };

  std::map<std::string, FileStat> local;
  bool complete = true;
  if (Status s = Walk(local, complete); !s.ok()) note(s);

  // Objects that were there at start and match the local file (restored ones) need no upload.
  for (const auto& [rel, remote] : remote_at_start_) {
    auto it = local.find(rel);
    if (it != local.end() && it->second.size == remote.size &&
        it->second.mtime_ns <= remote.mtime_ns) {
      uploaded_[rel] = it->second;
    }
  }
  remote_at_start_.clear();

  // Deletions first: a file replaced by a directory of the same name must go before its
  // contents can be stored (file:// stores cannot hold both).
  // After a partial walk absence proves nothing, so nothing is deleted.
  if (complete) {
    for (auto it = uploaded_.begin(); it != uploaded_.end();) {
      if (local.count(it->first)) {
        ++it;
        continue;
      }
      Status s = store_.Delete({s3_uri_.bucket, KeyOf(it->first)});
      if (!s.ok()) {
        note(s.WithContext("delete checkpoint '" + it->first + "'"));
        ++it;
        continue;
      }
      spdlog::debug("checkpoint sync: deleted '{}'", it->first);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.deleted_files;
      }
      it = uploaded_.erase(it);
    }
  }
  std::erase_if(pending_, [&](const auto& kv) { return !local.count(kv.first); });
  std::erase_if(closed_, [&](const std::string& rel) { return !local.count(rel); });

  // New and changed files that are ready.
  steady_clock::time_point now = clock_.Monotonic();
  std::vector<std::pair<std::string, FileStat>> batch;
  for (const auto& [rel, st] : local) {
    auto up = uploaded_.find(rel);
    if (up != uploaded_.end() && up->second == st) {
      pending_.erase(rel);
      closed_.erase(rel);
      continue;
    }
    auto [it, inserted] = pending_.try_emplace(rel);
    Pending& p = it->second;
    if (inserted || !(p.stat == st)) {
      p.stat = st;
      p.since = now;
    }
    if (final) {
      batch.emplace_back(rel, st);
      continue;
    }
    if (now < p.retry_after) continue;
    if (closed_.count(rel) || now - p.since >= options_.quiet_period) batch.emplace_back(rel, st);
  }
  if (batch.empty()) return result;

  UploadOptions upload_options;
  upload_options.concurrency =
      std::max(1, std::min(options_.upload_concurrency, static_cast<int>(batch.size())));
  Uploader uploader(store_, upload_options);
  uploader.Start();
  for (const auto& [rel, st] : batch) {
    uploader.Add({AbsOf(rel), {s3_uri_.bucket, KeyOf(rel)}, st.size});
  }
  UploadReport report = uploader.Finish();
  std::map<std::string, Status> failed(report.failures.begin(), report.failures.end());
  // Only the first 100 failures are itemised; beyond that no success can be trusted.
  bool outcome_known = report.failed_objects == report.failures.size();

  now = clock_.Monotonic();
  for (const auto& [rel, before] : batch) {
    closed_.erase(rel);
    auto f = failed.find(AbsOf(rel));
    bool uploaded = outcome_known && f == failed.end();
    struct stat st;
    bool exists = ::stat(AbsOf(rel).c_str(), &st) == 0 && S_ISREG(st.st_mode);
    FileStat after;
    if (exists) after = {static_cast<uint64_t>(st.st_size), MtimeNs(st)};
    if (uploaded) {
      // Recorded with the size and mtime it was read at: if the file changed meanwhile they no
      // longer match, so it goes up again; if it is gone, the next sweep deletes the object.
      uploaded_[rel] = before;
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.uploaded_files;
      stats_.uploaded_bytes += before.size;
    }
    if (!exists) {
      pending_.erase(rel);  // deleted before or during its upload: nothing to report
      continue;
    }
    if (!(after == before)) {
      result.changed_during_upload = true;
      Pending& p = pending_[rel];
      p.stat = after;
      p.since = now;
      continue;
    }
    if (uploaded) {
      pending_.erase(rel);
      spdlog::debug("checkpoint sync: uploaded '{}' ({} bytes)", rel, before.size);
      continue;
    }
    Pending& p = pending_[rel];
    p.failures += 1;
    p.retry_after = now + std::min<steady_clock::duration>(
                              options_.scan_interval * (int64_t{1} << std::min(p.failures, 6)),
                              std::chrono::minutes(1));
    Status why =
        f != failed.end() ? f->second : UnavailableError("outcome unknown among too many failures");
    note(why.WithContext("upload checkpoint '" + rel + "'"));
  }
  return result;
}

}  // namespace trainfeed
