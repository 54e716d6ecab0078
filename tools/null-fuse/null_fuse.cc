// tf-null-fuse: a read-only FUSE file system that does no I/O, for the FastFile benchmark's read
// ceiling: what the kernel's FUSE path alone delivers on this machine.
//
//   tf-null-fuse MOUNTPOINT [--size BYTES] [--count N] [--foreground]
//
// The root folder holds N files named file000000 ... of BYTES bytes each; every read returns
// zeros from one static buffer. It is configured like trainfeed's mount (libfuse3 low-level API,
// max_read 1 MiB, the same background-request and worker-thread limits, attributes cached for an
// hour, keep_cache), so a sequential read through it is the best trainfeed's mount could do.
//
// Without --foreground it returns once mounted and serves from a daemon. It unmounts on SIGINT,
// SIGTERM or SIGHUP, or when unmounted (fusermount3 -u); auto_unmount cleans up if it is killed.
//
// Build: g++ -std=c++20 -O2 null_fuse.cc $(pkg-config --cflags --libs fuse3) -o tf-null-fuse

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace {

constexpr unsigned kMaxRead = 1 << 20;  // trainfeed's max_read
constexpr unsigned kMaxBackground = 64;
constexpr unsigned kMaxThreads = 64;
constexpr unsigned kIdleThreads = 16;
constexpr double kCacheSeconds = 3600;
constexpr fuse_ino_t kFirstFile = 2;  // inode 1 is the root
constexpr char kUsage[] =
    "usage: tf-null-fuse MOUNTPOINT [--size BYTES] [--count N] [--foreground]\n";

alignas(4096) char g_zeros[kMaxRead];  // never written: zeros, in .bss

struct Options {
  std::string mountpoint;
  uint64_t size = 1ull << 30;
  uint64_t count = 1;
  bool foreground = false;
};

Options g_options;

bool IsFile(fuse_ino_t ino) { return ino >= kFirstFile && ino - kFirstFile < g_options.count; }

std::string NameOf(fuse_ino_t ino) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "file%06llu",
                static_cast<unsigned long long>(ino - kFirstFile));
  return buf;
}

// The inode of "fileNNNNNN" when it names an existing file; 0 when not.
fuse_ino_t InodeOf(std::string_view name) {
  if (name.size() < 10 || name.substr(0, 4) != "file") return 0;
  uint64_t index = 0;
  std::string_view digits = name.substr(4);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  if (ec != std::errc() || end != digits.data() + digits.size() || index >= g_options.count ||
      NameOf(index + kFirstFile) != name) {
    return 0;
  }
  return index + kFirstFile;
}

void FillAttributes(fuse_ino_t ino, struct stat* st) {
  std::memset(st, 0, sizeof(*st));
  st->st_ino = ino;
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_blksize = kMaxRead;
  if (ino == FUSE_ROOT_ID) {
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
  } else {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = static_cast<off_t>(g_options.size);
    st->st_blocks = static_cast<blkcnt_t>((g_options.size + 511) / 512);
  }
}

void FillEntry(fuse_ino_t ino, fuse_entry_param* e) {
  std::memset(e, 0, sizeof(*e));
  e->ino = ino;  // 0 = a cached negative entry
  e->attr_timeout = kCacheSeconds;
  e->entry_timeout = kCacheSeconds;
  if (ino != 0) FillAttributes(ino, &e->attr);
}

void OnInit(void*, fuse_conn_info* conn) {
  conn->max_read = kMaxRead;
  conn->max_background = kMaxBackground;
  conn->congestion_threshold = kMaxBackground * 3 / 4;
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (parent != FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENOTDIR);
  fuse_entry_param e;
  FillEntry(InodeOf(name), &e);
  fuse_reply_entry(req, &e);
}

void OnGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID && !IsFile(ino)) return (void)fuse_reply_err(req, ENOENT);
  struct stat st;
  FillAttributes(ino, &st);
  fuse_reply_attr(req, &st, kCacheSeconds);
}

void OnOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != FUSE_ROOT_ID) return (void)fuse_reply_err(req, IsFile(ino) ? ENOTDIR : ENOENT);
  fi->cache_readdir = 1;
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

// Offsets: 0 is ".", 1 is "..", 2 + i is file i.
void OnReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENOTDIR);
  std::unique_ptr<char[]> buf(new char[size]);
  size_t used = 0;
  for (uint64_t i = offset < 0 ? 0 : static_cast<uint64_t>(offset); i < 2 + g_options.count;
       ++i) {
    struct stat st = {};
    std::string name = i == 0 ? "." : i == 1 ? ".." : NameOf(kFirstFile + i - 2);
    st.st_ino = i < 2 ? FUSE_ROOT_ID : kFirstFile + i - 2;
    st.st_mode = i < 2 ? S_IFDIR : S_IFREG;
    size_t n = fuse_add_direntry(req, buf.get() + used, size - used, name.c_str(), &st,
                                 static_cast<off_t>(i + 1));
    if (n > size - used) break;
    used += n;
  }
  fuse_reply_buf(req, buf.get(), used);
}

void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (!IsFile(ino)) return (void)fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return (void)fuse_reply_err(req, EROFS);
  fi->keep_cache = 1;
  fi->noflush = 1;
  fuse_reply_open(req, fi);
}

void OnRead(fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info*) {
  uint64_t begin = offset < 0 ? 0 : static_cast<uint64_t>(offset);
  uint64_t left = begin < g_options.size ? g_options.size - begin : 0;
  size_t n = static_cast<size_t>(std::min<uint64_t>({size, left, kMaxRead}));
  fuse_reply_buf(req, g_zeros, n);
}

void OnRelease(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void OnStatfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs st = {};
  st.f_bsize = st.f_frsize = kMaxRead;
  st.f_blocks = (g_options.size * g_options.count + kMaxRead - 1) / kMaxRead;
  st.f_files = g_options.count + 1;
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}

bool ParseNumber(const char* text, uint64_t* out) {
  std::string_view s(text);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool ParseArgs(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    if (arg == "--foreground" || arg == "-f") {
      options->foreground = true;
    } else if ((arg == "--size" || arg == "--count") && i + 1 < argc) {
      uint64_t* target = arg == "--size" ? &options->size : &options->count;
      if (!ParseNumber(argv[++i], target)) {
        std::fprintf(stderr, "tf-null-fuse: %s wants a number, got '%s'\n", argv[i - 1],
                     argv[i]);
        return false;
      }
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (!arg.empty() && arg[0] != '-' && options->mountpoint.empty()) {
      options->mountpoint = argv[i];
    } else {
      std::fprintf(stderr, "tf-null-fuse: unexpected argument '%s'\n%s", argv[i], kUsage);
      return false;
    }
  }
  if (options->mountpoint.empty()) {
    std::fputs(kUsage, stderr);
    return false;
  }
  if (options->count == 0 || options->count > 1'000'000) {
    std::fputs("tf-null-fuse: --count must be 1 to 1000000\n", stderr);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (!ParseArgs(argc, argv, &g_options)) return 2;
  fuse_lowlevel_ops ops = {};
  ops.init = OnInit;
  ops.lookup = OnLookup;
  ops.getattr = OnGetattr;
  ops.opendir = OnOpendir;
  ops.readdir = OnReaddir;
  ops.releasedir = OnRelease;
  ops.open = OnOpen;
  ops.read = OnRead;
  ops.release = OnRelease;
  ops.statfs = OnStatfs;

  std::string mount_options = "ro,default_permissions,fsname=null-fuse,subtype=null-fuse,"
                              "auto_unmount,max_read=" + std::to_string(kMaxRead);
  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  for (const char* arg : {"tf-null-fuse", "-o", mount_options.c_str()}) {
    fuse_opt_add_arg(&args, arg);
  }
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), nullptr);
  fuse_opt_free_args(&args);
  if (se == nullptr) return 1;
  int status = 1;
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, g_options.mountpoint.c_str()) == 0) {
      if (fuse_daemonize(g_options.foreground ? 1 : 0) == 0) {
        fuse_loop_config* config = fuse_loop_cfg_create();
        fuse_loop_cfg_set_max_threads(config, kMaxThreads);
        fuse_loop_cfg_set_idle_threads(config, kIdleThreads);
        // Ends with the signal number after SIGTERM: still a clean stop.
        fuse_session_loop_mt(se, config);
        status = 0;
        fuse_loop_cfg_destroy(config);
      }
      fuse_session_unmount(se);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  return status;
}
