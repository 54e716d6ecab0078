#include "cli/commands.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "transfer/progress_line.h"
#include "common/units.h"
#include "modes/fastfile/disk_cache.h"
#include "modes/fastfile/tree.h"
#include "modes/fastfile/tree_snapshot.h"
#include "modes/file/prefix_download.h"
#include "store/s3/s3_object_store.h"

namespace trainfeed {

std::atomic<bool> g_interrupted{false};

int ReportError(const Status& status) {
  std::fprintf(stderr, "trainfeed: error: %s\n", status.ToString().c_str());
  return 1;
}

namespace {

Result<std::unique_ptr<ObjectStore>> Open(const GlobalFlags& flags, const StoreUri& uri) {
  return OpenObjectStore(uri, flags.store);
}

std::string FormatTime(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// Parent side of a daemonizing mount: waits for the child's "ready" byte, or for it to fail.
// Ctrl-C here stops the child too (it is in its own session and would not see the terminal's).
int WaitForMountDaemon(pid_t child, int ready_fd) {
  bool signalled = false;
  while (true) {
    if (g_interrupted.load() && !signalled) {
      ::kill(child, SIGTERM);
      signalled = true;
    }
    pollfd p = {ready_fd, POLLIN, 0};
    int r = ::poll(&p, 1, 200);
    if (r < 0 && errno != EINTR) return ReportError(ErrnoToStatus(errno, "wait for the mount"));
    if (r <= 0) continue;
    char c = 0;
    ssize_t n = ::read(ready_fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    ::close(ready_fd);
    if (n == 1 && c == 'R') return 0;
    break;
  }
  // The child failed before the mount answered; it printed why on the shared stderr.
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1;
  if (WIFSIGNALED(status)) {
    return ReportError(InternalError("the mount process died of signal " +
                                     std::to_string(WTERMSIG(status))));
  }
  return 1;
}

// The daemon keeps stderr (its log and the counters go there) but must not hold the caller's
// terminal, stdin or stdout (a `$(trainfeed mount ...)` would never see EOF) or working directory.
void DetachFromCaller() {
  ::setsid();
  if (::chdir("/") != 0) {
    // Nothing depends on the working directory any more: paths were resolved before the fork.
  }
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
    if (null_fd > STDERR_FILENO) ::close(null_fd);
  }
}

void WarnAboutKeys(const TreeBuildReport& report) {
  auto examples = [](const std::vector<std::string>& keys) {
    std::string out;
    for (const std::string& k : keys) out += (out.empty() ? "'" : ", '") + k + "'";
    return out;
  };
  if (report.hidden_files > 0) {
    spdlog::warn("{} objects are hidden because a folder has the same name (the folder wins), "
                 "e.g. {}", report.hidden_files, examples(report.hidden_examples));
  }
  if (report.skipped_keys > 0) {
    spdlog::warn("{} keys are not shown: they name no safe path (empty, '.' or '..' component, "
                 "NUL, name over 255 bytes), e.g. {}", report.skipped_keys,
                 examples(report.skipped_examples));
  }
}

}  // namespace

int RunLs(const GlobalFlags& flags, const std::string& uri_text, bool recursive) {
  Result<StoreUri> uri = ParseStoreUri(uri_text);
  if (!uri.ok()) return ReportError(uri.status());
  Result<std::unique_ptr<ObjectStore>> store = Open(flags, *uri);
  if (!store.ok()) return ReportError(store.status());
  ListRequest request;
  request.bucket = uri->bucket;
  request.prefix = uri->key;
  if (!recursive) request.delimiter = "/";
  uint64_t objects = 0, bytes = 0;
  do {
    Result<ListPage> page = (*store)->List(request);
    if (!page.ok()) return ReportError(page.status());
    for (const std::string& p : page->common_prefixes) {
      std::printf("%19s %12s PRE %s\n", "", "", p.c_str());
    }
    for (const ObjectInfo& o : page->objects) {
      std::printf("%s %12llu %s\n", FormatTime(o.last_modified).c_str(),
                  static_cast<unsigned long long>(o.size), o.key.c_str());
      ++objects;
      bytes += o.size;
    }
    request.continuation_token = page->next_continuation_token;
  } while (!request.continuation_token.empty());
  std::printf("\nTotal Objects: %llu\n   Total Size: %llu (%s)\n",
              static_cast<unsigned long long>(objects), static_cast<unsigned long long>(bytes),
              FormatBytes(static_cast<double>(bytes)).c_str());
  return 0;
}

int RunDownload(const GlobalFlags& flags, const std::string& uri_text, const std::string& dir,
                const DownloadOptions& options) {
  Result<StoreUri> uri = ParseStoreUri(uri_text);
  if (!uri.ok()) return ReportError(uri.status());
  Result<std::unique_ptr<ObjectStore>> store = Open(flags, *uri);
  if (!store.ok()) return ReportError(store.status());
  ProgressLine progress("download", flags.quiet);
  FileModeOptions prefix_options;
  prefix_options.download = options;
  prefix_options.cancel = &g_interrupted;
  prefix_options.on_progress = [&](const DownloadProgress& p, bool final) {
    progress.Update(p, final);
  };
  DownloadReport report = DownloadPrefix(**store, *uri, dir, prefix_options);
  for (const DownloadFailure& f : report.failures) {
    // Most messages already name the object; prefix those that do not.
    std::string line = f.status.ToString();
    if (line.find(f.key) == std::string::npos) {
      line = (*store)->Describe({uri->bucket, f.key}) + ": " + line;
    }
    std::fprintf(stderr, "trainfeed: error: %s\n", line.c_str());
  }
  if (report.failed_objects > report.failures.size()) {
    std::fprintf(stderr, "trainfeed: error: ... and %llu more failed objects\n",
                 static_cast<unsigned long long>(report.failed_objects - report.failures.size()));
  }
  if (!report.fatal.ok()) return ReportError(report.fatal);
  if (report.failed_objects > 0) {
    std::fprintf(stderr, "trainfeed: error: %llu of %llu objects failed to download\n",
                 static_cast<unsigned long long>(report.failed_objects),
                 static_cast<unsigned long long>(report.failed_objects + report.objects));
    return 1;
  }
  return 0;
}

int RunUpload(const GlobalFlags& flags, const std::string& dir, const std::string& uri_text,
              const UploadOptions& options) {
  Result<StoreUri> uri = ParseStoreUri(uri_text);
  if (!uri.ok()) return ReportError(uri.status());
  Result<std::unique_ptr<ObjectStore>> store = Open(flags, *uri);
  if (!store.ok()) return ReportError(store.status());
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status st = fs::status(dir, ec);
  if (ec || !(fs::is_directory(st) || fs::is_regular_file(st))) {
    return ReportError(NotFoundError("upload source '" + dir + "' is not a file or directory"));
  }
  std::string prefix = uri->key;
  Uploader uploader(**store, options);
  uploader.Start();
  auto started = std::chrono::steady_clock::now();
  if (fs::is_regular_file(st)) {
    // A single file goes to the URI itself, or under it when the URI ends in '/'.
    std::string key = prefix.empty() || prefix.back() == '/'
                          ? prefix + fs::path(dir).filename().string() : prefix;
    uploader.Add({dir, {uri->bucket, key}, static_cast<uint64_t>(fs::file_size(dir))});
  } else {
    if (!prefix.empty() && prefix.back() != '/') prefix += '/';
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (g_interrupted.load()) break;
      if (!it->is_regular_file()) continue;
      std::string rel = fs::relative(it->path(), dir).generic_string();
      uploader.Add({it->path().string(), {uri->bucket, prefix + rel},
                    static_cast<uint64_t>(it->file_size())});
    }
    if (ec) return ReportError(ErrnoToStatus(ec.value(), "walk '" + dir + "'"));
  }
  UploadReport report = uploader.Finish();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  for (const auto& [path, status] : report.failures) {
    std::fprintf(stderr, "trainfeed: error: %s: %s\n", path.c_str(), status.ToString().c_str());
  }
  if (!flags.quiet) {
    std::fprintf(stderr, "upload: %llu objects (%s) in %s, %s/s%s\n",
                 static_cast<unsigned long long>(report.objects),
                 FormatBytes(static_cast<double>(report.bytes)).c_str(),
                 FormatDuration(seconds).c_str(),
                 FormatBytes(seconds > 0 ? static_cast<double>(report.bytes) / seconds : 0).c_str(),
                 report.failed_objects ? (", " + std::to_string(report.failed_objects) + " failed").c_str() : "");
  }
  if (g_interrupted.load()) return ReportError(CancelledError("interrupted"));
  return report.ok() ? 0 : 1;
}

namespace {

// What a listing snapshot is valid for: the resolved endpoint and the URI (the same bucket name
// on another server is another dataset).
std::string SnapshotSource(const GlobalFlags& flags, const StoreUri& uri) {
  if (uri.scheme != StoreUri::Scheme::kS3) return uri.ToString();
  Result<S3Config> config = ResolveS3ConfigFromEnvironment(flags.store.s3);
  return (config.ok() ? config->endpoint : flags.store.s3.endpoint_url) + " " + uri.ToString();
}

// The tree to mount: from `snapshot` when it holds this source's listing, else listed (and then
// saved there). A snapshot that cannot be used is reported in one line and replaced.
Result<FileTree> ListOrLoadTree(const GlobalFlags& flags, ObjectStore& store, const StoreUri& uri,
                                const std::string& snapshot, bool& from_snapshot) {
  from_snapshot = false;
  std::string source = snapshot.empty() ? "" : SnapshotSource(flags, uri);
  if (!snapshot.empty()) {
    Result<FileTree> loaded = LoadTreeSnapshot(snapshot, source);
    if (loaded.ok()) {
      from_snapshot = true;
      return loaded;
    }
    if (loaded.status().code() != ErrorCode::kNotFound) {
      spdlog::warn("{}; listing again", loaded.status().ToString());
    }
  }
  TF_ASSIGN_OR_RETURN(FileTree tree, ListFileTree(store, uri, &g_interrupted));
  if (!snapshot.empty()) {
    // A snapshot that cannot be written costs the next mount a listing, not this one its data.
    if (Status s = SaveTreeSnapshot(tree, source, snapshot); !s.ok()) spdlog::warn("{}", s.ToString());
  }
  return tree;
}

}  // namespace

int RunMount(const GlobalFlags& flags, const std::string& uri_text, const std::string& dir,
             FastFileMountOptions options, bool foreground, std::string listing_snapshot) {
  Result<StoreUri> uri = ParseStoreUri(uri_text);
  if (!uri.ok()) return ReportError(uri.status());
  if (Status s = CheckFolderPrefix(*uri); !s.ok()) return ReportError(s);
  Result<bool> mounted = IsFastFileMounted(dir);
  if (!mounted.ok()) return ReportError(mounted.status());
  if (*mounted) {
    return ReportError(AlreadyExistsError("a trainfeed mount is already at '" + dir +
                                          "' (run: trainfeed unmount " + dir + ")"));
  }
  char resolved[PATH_MAX];
  if (::realpath(dir.c_str(), resolved) == nullptr) {
    return ReportError(ErrnoToStatus(errno, "mount point '" + dir + "'"));
  }
  struct stat st;
  if (::stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return ReportError(InvalidArgumentError("mount point '" + dir + "' is not a directory"));
  }
  options.mountpoint = resolved;
  options.bucket = uri->bucket;
  if (!listing_snapshot.empty()) {
    // Resolved now: the daemon works from "/".
    listing_snapshot = std::filesystem::absolute(listing_snapshot).lexically_normal().string();
  }
  options.cancel = &g_interrupted;
  if (!options.cache_dir.empty()) {
    // Resolved now: the daemon works from "/".
    std::error_code ec;
    std::filesystem::path cache_dir = std::filesystem::absolute(options.cache_dir, ec);
    if (ec) {
      return ReportError(ErrnoToStatus(ec.value(), "cache folder '" + options.cache_dir + "'"));
    }
    options.cache_dir = cache_dir.lexically_normal().string();
  }

  // Daemonize before opening the store: no thread may exist at fork time.
  int ready_fd = -1;
  if (!foreground) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return ReportError(ErrnoToStatus(errno, "pipe"));
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t child = ::fork();
    if (child < 0) return ReportError(ErrnoToStatus(errno, "fork"));
    if (child > 0) {
      ::close(fds[1]);
      return WaitForMountDaemon(child, fds[0]);
    }
    ::close(fds[0]);
    ready_fd = fds[1];
    DetachFromCaller();
  }

  Result<std::unique_ptr<ObjectStore>> store = Open(flags, *uri);
  if (!store.ok()) return ReportError(store.status());
  // Opened by the process that serves the mount (it holds the folder's lock) and kept until the
  // mount, its readers and their pending cache writes are gone.
  std::unique_ptr<DiskCache> cache;
  if (!options.cache_dir.empty()) {
    Result<std::unique_ptr<DiskCache>> opened =
        DiskCache::Open({.dir = options.cache_dir, .max_bytes = options.cache_size_bytes});
    if (!opened.ok()) return ReportError(opened.status());
    cache = std::move(*opened);
    options.reader.cache = cache.get();
    spdlog::info("disk cache {}: {} blocks, {} of {}", options.cache_dir, cache->block_count(),
                 FormatBytes(static_cast<double>(cache->used_bytes())),
                 FormatBytes(static_cast<double>(cache->max_bytes())));
  }
  auto started = std::chrono::steady_clock::now();
  bool from_snapshot = false;
  Result<FileTree> tree = ListOrLoadTree(flags, **store, *uri, listing_snapshot, from_snapshot);
  if (!tree.ok()) return ReportError(tree.status());
  double list_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  WarnAboutKeys(tree->report());
  options.on_ready = [&](const Status& status) {
    if (status.ok()) {
      const TreeBuildReport& r = tree->report();
      spdlog::info("mounted {} at {} (pid {}): {} files, {} folders, {} ({} in {}; tree {})",
                   uri->ToString(), options.mountpoint, ::getpid(), r.files, r.folders,
                   FormatBytes(static_cast<double>(r.bytes)),
                   from_snapshot ? "snapshot loaded" : "listed", FormatDuration(list_seconds),
                   FormatBytes(static_cast<double>(tree->MemoryBytes())));
    }
    if (ready_fd >= 0) {
      char c = 'R';
      if (status.ok()) (void)!::write(ready_fd, &c, 1);
      ::close(ready_fd);
      ready_fd = -1;
    }
  };
  Status served = ServeFastFileMount(**store, *tree, options);
  if (ready_fd >= 0) ::close(ready_fd);
  if (!served.ok()) return ReportError(served);
  return 0;
}

int RunUnmount(const std::string& dir) {
  Status s = UnmountFastFile(dir);
  if (!s.ok()) return ReportError(s);
  return 0;
}

int RunMakeBucket(const GlobalFlags& flags, const std::string& uri_text) {
  Result<StoreUri> uri = ParseStoreUri(uri_text);
  if (!uri.ok()) return ReportError(uri.status());
  if (uri->scheme == StoreUri::Scheme::kFile) {
    std::error_code ec;
    std::filesystem::create_directories("/" + uri->key, ec);
    if (ec) return ReportError(ErrnoToStatus(ec.value(), "create directory '/" + uri->key + "'"));
    return 0;
  }
  Result<S3Config> config = ResolveS3ConfigFromEnvironment(flags.store.s3);
  if (!config.ok()) return ReportError(config.status());
  S3StoreOptions options;
  options.config = *config;
  S3ObjectStore store(options);
  Status s = store.CreateBucket(uri->bucket);
  if (!s.ok() && s.code() != ErrorCode::kAlreadyExists) return ReportError(s);
  return 0;
}

}  // namespace trainfeed
