#include "modes/fastfile/fuse_fs.h"

// The libfuse3 API level this file is written for (3.12 brought fuse_loop_cfg_*).
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/units.h"

extern char** environ;

namespace trainfeed {

namespace {

// The tree is immutable while mounted: the kernel may keep entries and attributes this long.
constexpr double kCacheSeconds = 3600;
// Largest FUSE read the kernel sends (its limit is 256 pages); fewer, larger requests cut the
// per-request round trips through /dev/fuse.
constexpr unsigned kMaxRead = 1 << 20;
// FUSE worker threads. Each read blocks its thread while ObjectReader waits for the network, so
// this bounds the reads in flight for all open files together (a data loader with 32 workers
// should not queue behind libfuse's default of 10).
constexpr unsigned kMaxFuseThreads = 64;
constexpr unsigned kIdleFuseThreads = 16;
// Asynchronous requests (kernel readahead) the kernel keeps in flight; its default of 12 would
// throttle several sequential readers at once.
constexpr unsigned kMaxBackground = 64;
constexpr char kFsType[] = "fuse.trainfeed";

// ---- Signals ----
//
// Every thread Serve starts blocks SIGINT/SIGTERM/SIGHUP/SIGUSR1, and libfuse's workers block
// the first three too, so they reach the thread in fuse_session_loop_mt(): its wait for workers is
// interrupted and it sees the exit flag. The handlers only touch async-signal-safe state.
std::atomic<fuse_session*> g_session{nullptr};
std::atomic<bool> g_stop_requested{false};
int g_wake_fd = -1;  // write end of the control thread's pipe

void OnStopSignal(int) {
  int saved = errno;
  g_stop_requested.store(true);
  if (fuse_session* se = g_session.load()) fuse_session_exit(se);
  errno = saved;
}

void OnStatsSignal(int) {
  int saved = errno;
  char c = 'S';
  if (g_wake_fd >= 0) (void)!::write(g_wake_fd, &c, 1);
  errno = saved;
}

sigset_t ServeSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&set, sig);
  return set;
}

void LogFromFuse(enum fuse_log_level level, const char* fmt, va_list ap) {
  char line[512];
  std::vsnprintf(line, sizeof(line), fmt, ap);
  size_t n = std::strlen(line);
  while (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
  spdlog::level::level_enum to = level <= FUSE_LOG_ERR       ? spdlog::level::err
                                 : level == FUSE_LOG_WARNING ? spdlog::level::warn
                                 : level <= FUSE_LOG_INFO    ? spdlog::level::info
                                                             : spdlog::level::debug;
  spdlog::log(to, "fuse: {}", line);
}

std::string FormatMicros(uint64_t us) {
  char buf[32];
  if (us < 1000) {
    std::snprintf(buf, sizeof(buf), "%" PRIu64 "us", us);
  } else if (us < 1'000'000) {
    std::snprintf(buf, sizeof(buf), "%.1fms", static_cast<double>(us) / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2fs", static_cast<double>(us) / 1e6);
  }
  return buf;
}

// ---- The file system ----

// How far a read may start from where a stream got to and still continue it: behind, for the
// kernel's parallel readahead requests that arrive out of order; ahead, for the pages another
// handle's reads already brought into the page cache.
constexpr uint64_t kStreamBehind = 4ull << 20;
constexpr uint64_t kStreamAhead = 2ull << 20;

// One run of reads over an object, served by one ObjectReader.
struct Stream {
  std::shared_ptr<ObjectReader> reader;  // null for an empty object: nothing to fetch
  std::atomic<uint64_t> next{0};         // end of the furthest read served
  std::atomic<bool> started{false};
};

struct OpenFile {
  FileTree::NodeId id = 0;
  std::shared_ptr<Stream> own;
  std::atomic<bool> failure_logged{false};
};

class FastFileFs {
 public:
  FastFileFs(ObjectStore& store, const FileTree& tree, const FastFileMountOptions& options)
      : store_(store),
        tree_(tree),
        bucket_(options.bucket),
        reader_options_(options.reader),
        uid_(::getuid()),
        gid_(::getgid()),
        budget_(options.memory_limit_bytes),
        pool_(options.read_threads) {}

  // Runs after the session loop ended (no handler is running): files the kernel never released
  // (the mount went away under them) are closed here, before the pool they fetch on.
  ~FastFileFs() {
    for (OpenFile* file : open_files_) delete file;
    streams_.clear();
  }

  const FileTree& tree() const { return tree_; }
  const ReadStats& stats() const { return stats_; }
  const MemoryBudget& budget() const { return budget_; }

  void Attributes(FileTree::NodeId id, struct stat* st) const {
    tree_.FillAttributes(id, uid_, gid_, st);
  }
  void Entry(FileTree::NodeId id, fuse_entry_param* e) const {
    *e = {};
    e->ino = id;
    e->attr_timeout = kCacheSeconds;
    e->entry_timeout = kCacheSeconds;
    if (id != FileTree::kNoNode) Attributes(id, &e->attr);
  }

  OpenFile* Open(FileTree::NodeId id) {
    auto file = std::make_unique<OpenFile>();
    file->id = id;
    file->own = std::make_shared<Stream>();
    if (tree_.Size(id) > 0) {
      ObjectInfo info = tree_.Object(id);
      ObjectRef ref{bucket_, info.key};
      file->own->reader = std::make_shared<ObjectReader>(store_, std::move(ref), std::move(info),
                                                         pool_, budget_, stats_, reader_options_);
    }
    std::lock_guard<std::mutex> lock(mu_);
    streams_[id].push_back(file->own);
    open_files_.insert(file.get());
    return file.release();
  }

  void Release(OpenFile* file) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_files_.erase(file);
      auto it = streams_.find(file->id);
      std::erase(it->second, file->own);
      if (it->second.empty()) streams_.erase(it);
    }
    // Outside the lock: the reader waits for its in-flight fetches (or, if a read on another
    // handle is using this stream right now, that read's thread does when it lets go).
    delete file;
  }

  // The kernel shares one page cache among all open files of an object, so when several
  // processes read the same file at once its FUSE reads arrive on whichever handle missed the
  // cache first. Served per handle, each handle's reader would see a broken sequence and fetch
  // the same bytes again (8 concurrent `cat`s fetched 5.4x the file). So a read goes to the
  // oldest started stream of its object that it continues, and to its own handle's stream only
  // when it continues none: one reader per region being read, whatever handle the reads arrive on.
  // Returns the stream and whether the read continues it.
  std::pair<std::shared_ptr<Stream>, bool> StreamFor(const OpenFile& file, uint64_t offset) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::shared_ptr<Stream>& stream : streams_[file.id]) {
      if (!stream->started.load(std::memory_order_relaxed)) continue;
      uint64_t next = stream->next.load(std::memory_order_relaxed);
      if (offset + kStreamBehind >= next && offset <= next + kStreamAhead) return {stream, true};
    }
    return {file.own, false};
  }

  // One line per open file: the first failure names the object, later ones would only repeat it.
  void LogReadFailure(OpenFile& file, uint64_t offset, size_t size, const Status& status) {
    if (file.failure_logged.exchange(true)) return;
    std::string what = store_.Describe({bucket_, tree_.Key(file.id)});
    spdlog::error("read {} [{}, +{}): {}{}", what, offset, size, status.ToString(),
                  status.code() == ErrorCode::kPreconditionFailed
                      ? " (the object changed since it was listed; remount to see the new one)"
                      : "");
  }

 private:
  ObjectStore& store_;
  const FileTree& tree_;
  const std::string bucket_;
  const ReaderOptions reader_options_;
  const uid_t uid_;
  const gid_t gid_;
  ReadStats stats_;
  MemoryBudget budget_;
  FetchPool pool_;
  std::mutex mu_;
  std::unordered_set<OpenFile*> open_files_;  // Guarded by mu_
  // Streams of each open object, oldest first. Guarded by mu_.
  std::unordered_map<FileTree::NodeId, std::vector<std::shared_ptr<Stream>>> streams_;
};

FastFileFs& Fs(fuse_req_t req) { return *static_cast<FastFileFs*>(fuse_req_userdata(req)); }
OpenFile* FileOf(const fuse_file_info* fi) { return reinterpret_cast<OpenFile*>(fi->fh); }

// Replies exactly once and lets no exception unwind into libfuse. `fn` does its work before its
// reply, so a throw means nothing was sent yet.
template <typename Fn>
void Guarded(fuse_req_t req, const char* op, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    spdlog::error("fuse {}: {}", op, e.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    spdlog::error("fuse {}: unknown exception", op);
    fuse_reply_err(req, EIO);
  }
}

void OnInit(void* userdata, fuse_conn_info* conn) {
  (void)userdata;
  conn->max_read = kMaxRead;  // must equal the max_read mount option, or libfuse refuses
  // libfuse already lowered max_readahead from "unlimited" to what the kernel offers, which is the
  // most it accepts; max_write (unused, read-only) stays at 1 MiB, which also sets the kernel's
  // request size limit (max_pages) that lets reads be 1 MiB.
  conn->max_background = kMaxBackground;
  conn->congestion_threshold = kMaxBackground * 3 / 4;
  // Objects never change under the mount: no reason to drop cached pages when attributes are
  // refreshed.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  spdlog::debug("fuse: protocol {}.{}, max_read {}, max_readahead {}, max_write {}",
                conn->proto_major, conn->proto_minor, conn->max_read, conn->max_readahead,
                conn->max_write);
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guarded(req, "lookup", [&] {
    FastFileFs& fs = Fs(req);
    if (!fs.tree().Contains(parent)) return (void)fuse_reply_err(req, ENOENT);
    if (!fs.tree().IsDir(parent)) return (void)fuse_reply_err(req, ENOTDIR);
    fuse_entry_param e;
    // A miss is replied as ino 0 with a timeout: the kernel caches the negative entry.
    fs.Entry(fs.tree().Lookup(parent, name), &e);
    fuse_reply_entry(req, &e);
  });
}

void OnForget(fuse_req_t req, fuse_ino_t, uint64_t) {
  fuse_reply_none(req);  // nodes live as long as the tree
}

void OnForgetMulti(fuse_req_t req, size_t, fuse_forget_data*) { fuse_reply_none(req); }

void OnGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Guarded(req, "getattr", [&] {
    FastFileFs& fs = Fs(req);
    if (!fs.tree().Contains(ino)) return (void)fuse_reply_err(req, ENOENT);
    struct stat st;
    fs.Attributes(ino, &st);
    fuse_reply_attr(req, &st, kCacheSeconds);
  });
}

void OnOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guarded(req, "opendir", [&] {
    FastFileFs& fs = Fs(req);
    if (!fs.tree().Contains(ino)) return (void)fuse_reply_err(req, ENOENT);
    if (!fs.tree().IsDir(ino)) return (void)fuse_reply_err(req, ENOTDIR);
    fi->cache_readdir = 1;  // listings never change: let the kernel keep them
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
  });
}

// Offsets: 0 is ".", 1 is "..", 2 + i is the i-th child in name order. The tree never changes, so
// an offset means the same entry for the life of the mount.
void ReplyDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, bool plus) {
  FastFileFs& fs = Fs(req);
  const FileTree& tree = fs.tree();
  if (!tree.Contains(ino)) return (void)fuse_reply_err(req, ENOENT);
  if (!tree.IsDir(ino)) return (void)fuse_reply_err(req, ENOTDIR);
  std::unique_ptr<char[]> buf(new char[size]);
  size_t used = 0;
  size_t end = 2 + tree.ChildCount(ino);
  for (size_t i = offset < 0 ? 0 : static_cast<size_t>(offset); i < end; ++i) {
    FileTree::NodeId id;
    const char* name;
    if (i == 0) {
      id = ino;
      name = ".";
    } else if (i == 1) {
      id = tree.Parent(ino);
      name = "..";
    } else {
      id = tree.Child(ino, i - 2);
      name = tree.Name(id).data();  // NUL-terminated in the tree's arena
    }
    size_t room = size - used;
    size_t entry_size;
    off_t next = static_cast<off_t>(i + 1);
    if (plus) {
      fuse_entry_param e;
      fs.Entry(id, &e);
      entry_size = fuse_add_direntry_plus(req, buf.get() + used, room, name, &e, next);
    } else {
      struct stat st = {};
      st.st_ino = id;
      st.st_mode = tree.IsDir(id) ? S_IFDIR : S_IFREG;
      entry_size = fuse_add_direntry(req, buf.get() + used, room, name, &st, next);
    }
    if (entry_size > room) break;  // did not fit: the kernel asks again from `i`
    used += entry_size;
  }
  fuse_reply_buf(req, buf.get(), used);
}

void OnReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  Guarded(req, "readdir", [&] { ReplyDir(req, ino, size, offset, /*plus=*/false); });
}

void OnReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  Guarded(req, "readdirplus", [&] { ReplyDir(req, ino, size, offset, /*plus=*/true); });
}

void OnReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guarded(req, "open", [&] {
    FastFileFs& fs = Fs(req);
    if (!fs.tree().Contains(ino)) return (void)fuse_reply_err(req, ENOENT);
    if (fs.tree().IsDir(ino)) return (void)fuse_reply_err(req, EISDIR);
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
      return (void)fuse_reply_err(req, EROFS);
    }
    fi->fh = reinterpret_cast<uint64_t>(fs.Open(ino));
    fi->keep_cache = 1;  // objects are immutable: pages cached by an earlier open stay valid
    fi->noflush = 1;     // nothing to flush on close
    // If the open was interrupted meanwhile, libfuse calls OnRelease for this handle.
    fuse_reply_open(req, fi);
  });
}

void OnRead(fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
  Guarded(req, "read", [&] {
    OpenFile* file = FileOf(fi);
    if (!file->own->reader || offset < 0) return (void)fuse_reply_buf(req, nullptr, 0);
    auto begin = static_cast<uint64_t>(offset);
    auto [stream, continues] = Fs(req).StreamFor(*file, begin);
    // One buffer per FUSE thread, reused: fuse_reply_buf copies it out before returning.
    thread_local std::vector<char> buffer;
    if (buffer.size() < size) buffer.resize(size);
    Result<size_t> n = stream->reader->Read(begin, buffer.data(), size);
    uint64_t end = begin + size;
    if (continues) {
      uint64_t next = stream->next.load();
      while (next < end && !stream->next.compare_exchange_weak(next, end)) {
      }
    } else {
      stream->next.store(end);  // a jump: the stream continues from here
    }
    stream->started.store(true);
    if (!n.ok()) {
      Fs(req).LogReadFailure(*file, static_cast<uint64_t>(offset), size, n.status());
      return (void)fuse_reply_err(req, EIO);
    }
    fuse_reply_buf(req, buffer.data(), *n);
  });
}

void OnRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Guarded(req, "release", [&] {
    Fs(req).Release(FileOf(fi));
    fuse_reply_err(req, 0);
  });
}

void OnStatfs(fuse_req_t req, fuse_ino_t) {
  Guarded(req, "statfs", [&] {
    const FileTree& tree = Fs(req).tree();
    struct statvfs st = {};
    st.f_bsize = kMaxRead;
    st.f_frsize = kMaxRead;
    st.f_blocks = (tree.report().bytes + kMaxRead - 1) / kMaxRead;
    st.f_files = tree.node_count();
    st.f_namemax = 255;
    // Nothing free: no byte or inode can be added to a read-only dataset.
    fuse_reply_statfs(req, &st);
  });
}

// The mount has no extended attributes. ENOSYS makes the kernel answer ENOTSUP itself from now
// on, so `ls -l` and `cp -a` stop paying a round trip per file for security.* and ACL probes.
void OnGetxattr(fuse_req_t req, fuse_ino_t, const char*, size_t) { fuse_reply_err(req, ENOSYS); }
void OnListxattr(fuse_req_t req, fuse_ino_t, size_t) { fuse_reply_err(req, ENOSYS); }

// Modifications. The `ro` mount option makes the kernel refuse nearly all of these before they
// get here; these replies cover the rest.
void ReadOnly(fuse_req_t req) { fuse_reply_err(req, EROFS); }

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops = {};
  ops.init = OnInit;
  ops.lookup = OnLookup;
  ops.forget = OnForget;
  ops.forget_multi = OnForgetMulti;
  ops.getattr = OnGetattr;
  ops.opendir = OnOpendir;
  ops.readdir = OnReaddir;
  ops.readdirplus = OnReaddirplus;
  ops.releasedir = OnReleasedir;
  ops.open = OnOpen;
  ops.read = OnRead;
  ops.release = OnRelease;
  ops.statfs = OnStatfs;
  ops.getxattr = OnGetxattr;
  ops.listxattr = OnListxattr;
  ops.setattr = [](fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
    ReadOnly(req);
  };
  ops.mknod = [](fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { ReadOnly(req); };
  ops.mkdir = [](fuse_req_t req, fuse_ino_t, const char*, mode_t) { ReadOnly(req); };
  ops.unlink = [](fuse_req_t req, fuse_ino_t, const char*) { ReadOnly(req); };
  ops.rmdir = [](fuse_req_t req, fuse_ino_t, const char*) { ReadOnly(req); };
  ops.symlink = [](fuse_req_t req, const char*, fuse_ino_t, const char*) { ReadOnly(req); };
  ops.rename = [](fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) {
    ReadOnly(req);
  };
  ops.link = [](fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { ReadOnly(req); };
  ops.write = [](fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*) {
    ReadOnly(req);
  };
  ops.create = [](fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
    ReadOnly(req);
  };
  ops.setxattr = [](fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
    ReadOnly(req);
  };
  ops.removexattr = [](fuse_req_t req, fuse_ino_t, const char*) { ReadOnly(req); };
  ops.fallocate = [](fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
    ReadOnly(req);
  };
  return ops;
}

// ---- Mount table ----

// The path the mount table shows for `dir`, found without entering `dir` itself (a dead mount
// there answers ENOTCONN): the parent resolved, the last component as given.
Result<std::string> MountTablePath(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string abs = fs::absolute(dir, ec).lexically_normal().string();
  if (ec) return ErrnoToStatus(ec.value(), "resolve '" + dir + "'");
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  if (abs == "/") return abs;
  fs::path path(abs);
  fs::path parent = fs::canonical(path.parent_path(), ec);
  if (ec) return ErrnoToStatus(ec.value(), "resolve '" + path.parent_path().string() + "'");
  return (parent / path.filename()).string();
}

// Mount points in /proc/self/mountinfo escape space, tab, newline and backslash as \ooo.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The file system type of the top-most mount at `path` ("" when nothing is mounted there).
Result<std::string> TopMountType(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return ErrnoToStatus(errno, "read /proc/self/mountinfo");
  std::string line, type;
  while (std::getline(in, line)) {
    // "id parent major:minor root mount-point options [optional fields] - type source options"
    std::vector<std::string_view> fields;
    std::string_view rest(line);
    while (!rest.empty()) {
      size_t space = rest.find(' ');
      fields.push_back(rest.substr(0, space));
      if (space == std::string_view::npos) break;
      rest.remove_prefix(space + 1);
    }
    if (fields.size() < 7 || Unescape(fields[4]) != path) continue;
    for (size_t i = 6; i + 1 < fields.size(); ++i) {
      if (fields[i] == "-") {
        type = std::string(fields[i + 1]);  // later lines are mounted on top of earlier ones
        break;
      }
    }
  }
  return type;
}

Status Detach(const std::string& path) {
  if (::geteuid() == 0) {
    if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
      return ErrnoToStatus(errno, "unmount '" + path + "'");
    }
    return OkStatus();
  }
  // Unprivileged: the setuid helper from fuse3 does what umount2 would.
  const char* argv[] = {"fusermount3", "-u", "-z", "--", path.c_str(), nullptr};
  pid_t pid;
  int err =
      ::posix_spawnp(&pid, "fusermount3", nullptr, nullptr, const_cast<char**>(argv), environ);
  if (err != 0) return ErrnoToStatus(err, "run fusermount3 -u -z '" + path + "'");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return InternalError("fusermount3 -u -z '" + path + "' failed (see its message above)");
  }
  return OkStatus();
}

bool HaveFusermount() {
  std::string path = "/usr/bin";
  if (const char* env = std::getenv("PATH")) path = path + ":" + env;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = std::min(path.find(':', start), path.size());
    std::string dir = path.substr(start, end - start);
    if (!dir.empty() && ::access((dir + "/fusermount3").c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

// Waits until the mount answers a stat() of its root, which goes through INIT and GETATTR.
Status CheckMountAnswers(const std::string& mountpoint) {
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0) {
    return ErrnoToStatus(errno, "the mount at '" + mountpoint + "' does not answer");
  }
  if (st.st_ino != FUSE_ROOT_ID || !S_ISDIR(st.st_mode)) {
    return InternalError("'" + mountpoint + "' does not show the mounted tree");
  }
  return OkStatus();
}

}  // namespace

std::string FormatReadStats(const ReadStats& stats, const MemoryBudget* budget) {
  uint64_t served = stats.bytes_served.load();
  uint64_t fetched = stats.bytes_fetched.load();
  char ratio[32] = "n/a";
  if (served > 0) {
    std::snprintf(ratio, sizeof(ratio), "%.2fx",
                  static_cast<double>(fetched) / static_cast<double>(served));
  }
  std::string line =
      "served " + FormatBytes(static_cast<double>(served)) + " in " +
      std::to_string(stats.reads.load()) + " reads; " + std::to_string(stats.gets.load()) +
      " GETs fetched " + FormatBytes(static_cast<double>(fetched)) + " (over-fetch " + ratio +
      "); read latency p50 " + FormatMicros(stats.LatencyPercentileMicros(50)) + " p99 " +
      FormatMicros(stats.LatencyPercentileMicros(99)) + "; waited " +
      FormatDuration(static_cast<double>(stats.wait_ns.load()) / 1e9) + " for the store";
  const uint64_t hits = stats.cache_hits.load(), misses = stats.cache_misses.load();
  const uint64_t written = stats.cache_writes.load();
  if (hits + misses + written > 0) {
    line += "; disk cache " + std::to_string(hits) + " hits (" +
            FormatBytes(static_cast<double>(stats.cache_bytes.load())) + ") " +
            std::to_string(misses) + " misses " + std::to_string(written) + " blocks written";
  }
  if (budget) {
    line += "; memory " + FormatBytes(static_cast<double>(budget->used())) + " in use, peak " +
            FormatBytes(static_cast<double>(budget->peak())) + " of " +
            FormatBytes(static_cast<double>(budget->limit()));
  }
  return line;
}

Result<bool> IsFastFileMounted(const std::string& dir) {
  TF_ASSIGN_OR_RETURN(std::string path, MountTablePath(dir));
  TF_ASSIGN_OR_RETURN(std::string type, TopMountType(path));
  return type == kFsType;
}

Status UnmountFastFile(const std::string& dir) {
  TF_ASSIGN_OR_RETURN(std::string path, MountTablePath(dir));
  // Mounts can be stacked (a second mount over a dead one): detach every trainfeed layer, stop at
  // anything else.
  for (int layer = 0; layer < 64; ++layer) {
    TF_ASSIGN_OR_RETURN(std::string type, TopMountType(path));
    if (type.empty()) return OkStatus();
    if (type != kFsType) {
      if (layer > 0) return OkStatus();
      return InvalidArgumentError("'" + path + "' is not a trainfeed mount (its type is " + type +
                                  "); refusing to unmount it");
    }
    TF_RETURN_IF_ERROR(Detach(path));
  }
  return InternalError("'" + path + "' still shows a trainfeed mount after 64 unmounts");
}

Status ServeFastFileMount(ObjectStore& store, const FileTree& tree,
                          const FastFileMountOptions& options) {
  const sigset_t signals = ServeSignals();
  sigset_t old_mask;
  pthread_sigmask(SIG_BLOCK, &signals, &old_mask);  // inherited by every thread started below
  fuse_set_log_func(LogFromFuse);

  Status result;
  {
    FastFileFs fs(store, tree, options);
    fuse_lowlevel_ops ops = MakeOps();
    std::string mount_options = "ro,default_permissions,fsname=trainfeed,subtype=trainfeed";
    mount_options += ",max_read=" + std::to_string(kMaxRead);
    if (options.allow_other) mount_options += ",allow_other";
    // auto_unmount leaves fusermount3 watching the session: if this process is killed (OOM,
    // SIGKILL) the mount goes away instead of failing every access with ENOTCONN.
    if (HaveFusermount()) {
      mount_options += ",auto_unmount";
    } else {
      spdlog::warn(
          "fusermount3 not found (package fuse3): if trainfeed is killed, the mount stays "
          "dead until 'trainfeed unmount {}'",
          options.mountpoint);
    }
    fuse_args args = FUSE_ARGS_INIT(0, nullptr);
    for (const char* arg : {"trainfeed", "-o", mount_options.c_str()}) {
      fuse_opt_add_arg(&args, arg);
    }
    fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), &fs);
    fuse_opt_free_args(&args);
    if (se == nullptr) {
      pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
      return InternalError("cannot start a FUSE session (options: " + mount_options + ")");
    }
    if (fuse_session_mount(se, options.mountpoint.c_str()) != 0) {
      fuse_session_destroy(se);
      pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
      return UnavailableError(
          "cannot mount at '" + options.mountpoint +
          "' (libfuse said why above; needs /dev/fuse and root or fusermount3)");
    }

    int wake[2];
    if (::pipe2(wake, O_CLOEXEC) != 0) {
      Status s = ErrnoToStatus(errno, "pipe");
      fuse_session_unmount(se);
      fuse_session_destroy(se);
      pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
      return s;
    }
    g_wake_fd = wake[1];
    g_stop_requested.store(false);
    g_session.store(se);
    struct sigaction stop = {}, stats = {}, old_actions[4];
    stop.sa_handler = OnStopSignal;  // no SA_RESTART: the loop's wait must see EINTR
    stats.sa_handler = OnStatsSignal;
    sigaction(SIGINT, &stop, &old_actions[0]);
    sigaction(SIGTERM, &stop, &old_actions[1]);
    sigaction(SIGHUP, &stop, &old_actions[2]);
    sigaction(SIGUSR1, &stats, &old_actions[3]);
    if (options.cancel && options.cancel->load()) OnStopSignal(SIGTERM);

    // The control thread: confirms the mount answers, prints counters on SIGUSR1, and re-sends
    // a stop signal until the loop has ended (one that lands just before libfuse starts waiting
    // would otherwise be lost).
    const pthread_t loop_thread = pthread_self();
    std::atomic<bool> loop_done{false};
    Status ready_status;
    std::thread control([&, wake_fd = wake[0]] {
      ready_status = CheckMountAnswers(options.mountpoint);
      if (!ready_status.ok() && g_stop_requested.load()) {
        ready_status = CancelledError("stopped before the mount at '" + options.mountpoint +
                                      "' was ready");
      }
      if (options.on_ready) options.on_ready(ready_status);
      if (!ready_status.ok()) {
        OnStopSignal(SIGTERM);
        pthread_kill(loop_thread, SIGTERM);
      }
      while (true) {
        pollfd p = {wake_fd, POLLIN, 0};
        int r = ::poll(&p, 1, 500);
        if (r > 0) {
          char buf[64];
          ssize_t n = ::read(wake_fd, buf, sizeof(buf));
          bool quit = n == 0;
          for (ssize_t i = 0; i < n; ++i) {
            if (buf[i] == 'S') {
              std::fprintf(stderr, "trainfeed: mount %s: %s\n", options.mountpoint.c_str(),
                           FormatReadStats(fs.stats(), &fs.budget()).c_str());
            }
            if (buf[i] == 'Q') quit = true;
          }
          if (quit) return;
        } else if (r == 0 && g_stop_requested.load() && !loop_done.load()) {
          pthread_kill(loop_thread, SIGTERM);
        }
      }
    });

    fuse_loop_config* config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(config, kMaxFuseThreads);
    fuse_loop_cfg_set_idle_threads(config, kIdleFuseThreads);
    pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    int loop_result = fuse_session_loop_mt(se, config);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    fuse_loop_cfg_destroy(config);
    loop_done.store(true);
    g_session.store(nullptr);

    // Unmount before joining the control thread: if the loop ended before it answered the
    // readiness stat(), that stat fails (ENOTCONN) once the session is gone instead of hanging.
    fuse_session_unmount(se);
    char quit = 'Q';
    (void)!::write(wake[1], &quit, 1);
    control.join();
    g_wake_fd = -1;
    ::close(wake[0]);
    ::close(wake[1]);
    fuse_session_destroy(se);
    sigaction(SIGINT, &old_actions[0], nullptr);
    sigaction(SIGTERM, &old_actions[1], nullptr);
    sigaction(SIGHUP, &old_actions[2], nullptr);
    sigaction(SIGUSR1, &old_actions[3], nullptr);
    // Stop signals still pending (a late re-send, a second Ctrl-C) are spent: the mount is gone.
    timespec no_wait = {0, 0};
    while (sigtimedwait(&signals, nullptr, &no_wait) > 0) {
    }

    if (!ready_status.ok()) {
      result = ready_status;
    } else if (loop_result != 0 && !g_stop_requested.load()) {
      result =
          InternalError("FUSE session ended with an error: " +
                        std::string(std::strerror(loop_result < 0 ? -loop_result : loop_result)));
    }
    std::fprintf(stderr, "trainfeed: unmounted %s: %s\n", options.mountpoint.c_str(),
                 FormatReadStats(fs.stats(), &fs.budget()).c_str());
  }  // readers, pool and budget go here, after the loop's threads are gone
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return result;
}

}  // namespace trainfeed
