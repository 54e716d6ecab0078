#include "store/local/local_object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <system_error>
#include <utility>

namespace trainfeed {
namespace {

constexpr size_t kIoChunk = size_t{1} << 20;
constexpr int kMaxListKeys = 1000;  // S3 never returns more per page
constexpr int kMaxPartNumber = 10000;
constexpr std::string_view kPutTag = ".trainfeed-put-";
constexpr std::string_view kMpuTag = ".trainfeed-mpu-";
constexpr size_t kPutRandomHex = 16;
constexpr size_t kUploadIdHex = 32;
// Temporary and staging names embed the destination name; truncating it keeps them below
// NAME_MAX (255) for any legal destination name.
constexpr size_t kMaxNameInTemp = 128;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now, so that an error (possible on network filesystems) is reported.
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// Like ErrnoToStatus, but a symlink loop means the key names nothing.
Status FileError(int err, std::string_view what) {
  if (err == ELOOP) return NotFoundError(std::string(what) + ": too many levels of symbolic links");
  return ErrnoToStatus(err, what);
}

void AppendHex(uint64_t v, std::string& out) {
  char buf[16];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, 16);
  out.append(buf, end);
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string RandomHex(size_t digits) {
  // Per thread, so no lock is shared; seeded from the OS so that processes differ.
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }());
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(digits, '0');
  for (char& c : out) c = kDigits[rng() & 15];
  return out;
}

uint64_t Nanos(const struct timespec& ts) {
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// ctime is included so that a rewrite which restores the old mtime (cp -p, rsync -t in place)
// still changes the ETag.
std::string EtagOf(const struct stat& st) {
  std::string etag;
  for (uint64_t v : {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                     static_cast<uint64_t>(st.st_size), Nanos(st.st_mtim), Nanos(st.st_ctim)}) {
    if (!etag.empty()) etag += '-';
    AppendHex(v, etag);
  }
  return etag;
}

ObjectInfo InfoOf(std::string key, const struct stat& st) {
  ObjectInfo info;
  info.key = std::move(key);
  info.size = static_cast<uint64_t>(st.st_size);
  info.etag = EtagOf(st);
  auto since_epoch =
      std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec);
  info.last_modified = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(since_epoch));
  return info;
}

// OK if `key` names a file, or with a trailing '/' a directory, strictly below the root.
Status CheckKey(std::string_view key) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("key '" + std::string(key) + "' " + std::string(why));
  };
  if (key.empty()) return bad("is empty");
  if (key.find('\0') != std::string_view::npos) return bad("contains a NUL byte");
  if (key.front() == '/') return bad("starts with '/'");
  std::string_view rest = key;
  if (rest.back() == '/') rest.remove_suffix(1);
  size_t start = 0;
  while (true) {
    size_t slash = rest.find('/', start);
    std::string_view part = rest.substr(start, slash - start);
    if (part.empty()) return bad("has an empty path component");
    if (part == "." || part == "..") return bad("has a '.' or '..' path component");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return OkStatus();
}

// Splits "a/b/c" into "a/b/" and "c".
std::pair<std::string, std::string> SplitDir(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {"", std::string(path)};
  return {std::string(path.substr(0, slash + 1)), std::string(path.substr(slash + 1))};
}

std::string HiddenName(std::string_view name, std::string_view tag, std::string_view suffix) {
  std::string out = ".";
  out += name.substr(0, kMaxNameInTemp);
  out += tag;
  out += suffix;
  return out;
}

// Temporary files and staging directories of uploads in progress: never objects.
bool IsHiddenName(std::string_view name) {
  if (name.empty() || name.front() != '.') return false;
  for (auto [tag, digits] : {std::pair{kPutTag, kPutRandomHex}, std::pair{kMpuTag, kUploadIdHex}}) {
    if (name.size() < tag.size() + digits) continue;
    std::string_view tail = name.substr(name.size() - digits);
    if (name.substr(name.size() - digits - tag.size(), tag.size()) == tag && IsHex(tail)) {
      return true;
    }
  }
  return false;
}

// Creates root + rel_dir ("a/b/", or "") and its missing parents.
Status MakeDirs(const std::string& root, std::string_view rel_dir) {
  struct stat st;
  std::string full = root + std::string(rel_dir);
  if (::stat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return OkStatus();
  std::string path = root;
  size_t start = 0;
  while (start < rel_dir.size()) {
    size_t slash = rel_dir.find('/', start);
    path.append(rel_dir.substr(start, slash - start + 1));
    start = slash + 1;
    if (::mkdir(path.c_str(), 0777) == 0) continue;
    int err = errno;
    if (err != EEXIST) return FileError(err, "mkdir " + path);
    // Without the trailing '/', which makes stat of a file fail with ENOTDIR.
    std::string existing = path.substr(0, path.size() - 1);
    if (::stat(existing.c_str(), &st) != 0) return FileError(errno, "stat " + existing);
    if (!S_ISDIR(st.st_mode)) {
      // S3 can hold both "a" and "a/b"; a directory tree cannot.
      return AlreadyExistsError(existing + " exists and is not a directory");
    }
  }
  return OkStatus();
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError(errno, "write " + path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

// Fills a fresh temporary file in `dir` (ending in '/') with `fill`, then renames it onto `path`,
// so readers see the old file or the new one, never a mix. Returns the new file's ETag.
Result<std::string> ReplaceFile(const std::string& dir, std::string_view name,
                                const std::string& path,
                                const std::function<Status(int fd, const std::string&)>& fill) {
  std::string tmp;
  int raw_fd = -1;
  for (int attempt = 0; attempt < 8 && raw_fd < 0; ++attempt) {
    tmp = dir + HiddenName(name, kPutTag, RandomHex(kPutRandomHex));
    raw_fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (raw_fd < 0 && errno != EEXIST) return FileError(errno, "create " + tmp);
  }
  if (raw_fd < 0) return InternalError("create " + tmp + ": no free temporary name");
  Fd fd(raw_fd);
  Status status = fill(fd.get(), tmp);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = FileError(errno, "rename " + tmp + " to " + path);
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  // fstat after the rename: rename may update ctime, which is part of the ETag. The descriptor
  // still names our inode even if another writer has replaced the file meanwhile.
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return FileError(errno, "stat " + path);
  if (fd.Close() != 0) return FileError(errno, "close " + path);
  return EtagOf(st);
}

// Resume point of a listing: keys up to and including `bound` have been returned; with
// `skip_prefix`, so have all keys that start with it (a common prefix was returned).
struct ListCursor {
  std::string bound;
  bool skip_prefix = false;
};

std::string EncodeToken(const ListCursor& cursor) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string token(1, cursor.skip_prefix ? 'P' : 'K');
  for (unsigned char c : cursor.bound) {
    token += kDigits[c >> 4];
    token += kDigits[c & 15];
  }
  return token;
}

Result<ListCursor> DecodeToken(std::string_view token) {
  auto value = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string_view hex = token.substr(1);
  if ((token[0] != 'K' && token[0] != 'P') || hex.size() % 2 != 0 || !IsHex(hex)) {
    return InvalidArgumentError("invalid continuation token '" + std::string(token) + "'");
  }
  ListCursor cursor;
  cursor.skip_prefix = token[0] == 'P';
  for (size_t i = 0; i < hex.size(); i += 2) {
    cursor.bound += static_cast<char>(value(hex[i]) * 16 + value(hex[i + 1]));
  }
  return cursor;
}

// Whether the key `key` comes after the cursor.
bool KeyAfter(std::string_view key, const ListCursor& c) {
  if (c.skip_prefix && key.starts_with(c.bound)) return false;
  return key > c.bound;
}

// Whether some key that starts with `p` comes after the cursor.
bool SubtreeAfter(std::string_view p, const ListCursor& c) {
  if (c.skip_prefix && p.starts_with(c.bound)) return false;
  return std::string_view(c.bound).starts_with(p) || p > c.bound;
}

enum class EntryKind { kSkip, kFile, kDir };

// Classifies a directory entry without following symlinks: a symlink counts as a file and is
// resolved when listed (a symlink to a directory is then skipped).
EntryKind KindOf(DIR* dir, const struct dirent* entry) {
  switch (entry->d_type) {
    case DT_REG:
    case DT_LNK:
      return EntryKind::kFile;
    case DT_DIR:
      return EntryKind::kDir;
    case DT_UNKNOWN:
      break;
    default:
      return EntryKind::kSkip;  // FIFOs, sockets, devices: never objects
  }
  struct stat st;
  if (::fstatat(::dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return EntryKind::kSkip;  // vanished
  }
  if (S_ISDIR(st.st_mode)) return EntryKind::kDir;
  if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) return EntryKind::kFile;
  return EntryKind::kSkip;
}

// Opens a directory met during a walk. Returns null with OK if it vanished or is not a directory
// (a symlink, which is never followed, or replaced by a file).
Result<DirPtr> OpenDir(const std::string& path, bool follow) {
  int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR || err == ELOOP) return DirPtr();
    return ErrnoToStatus(err, "open directory " + path);
  }
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoToStatus(err, "open directory " + path);
  }
  return DirPtr(dir);
}

// Reads one page of a listing by a depth-first walk in byte order. Subtrees wholly at or before
// the cursor are never opened, so paging through a tree costs about one pass over it, plus a
// re-read of each directory on the path to the cursor.
class Lister {
 public:
  Lister(const std::string& root, const ListRequest& request, ListCursor cursor, int max_keys)
      : root_(root),
        prefix_(request.prefix),
        delimiter_(request.delimiter),
        max_keys_(max_keys),
        cursor_(std::move(cursor)) {}

  Result<ListPage> Run() {
    auto [start_dir, name_prefix] = SplitDir(prefix_);
    if (SubtreeAfter(start_dir, cursor_)) {
      TF_RETURN_IF_ERROR(Walk(start_dir, name_prefix, /*is_start=*/true));
    }
    if (truncated_) page_.next_continuation_token = EncodeToken(cursor_);
    return std::move(page_);
  }

 private:
  struct Entry {
    std::string sort_key;  // name, or name + "/" for a directory
    bool is_dir;
    bool operator>(const Entry& o) const { return sort_key > o.sort_key; }
  };

  // Walks the directory whose key prefix is `dir_key` ("" or ending in '/').
  Status Walk(const std::string& dir_key, std::string_view name_prefix, bool is_start) {
    std::string path = root_ + dir_key;
    std::vector<Entry> entries;
    {
      // The start directory was named by the user, so symlinks to it are followed.
      TF_ASSIGN_OR_RETURN(DirPtr dir, OpenDir(path, /*follow=*/is_start));
      if (dir == nullptr) return OkStatus();
      // Filter against the cursor before sorting: only this page's tail is ordered. When the
      // cursor lies outside this directory, every entry comes after it.
      ListCursor tail;
      bool cursor_inside = std::string_view(cursor_.bound).starts_with(dir_key);
      if (cursor_inside) tail = {cursor_.bound.substr(dir_key.size()), cursor_.skip_prefix};
      while (true) {
        errno = 0;
        struct dirent* de = ::readdir(dir.get());
        if (de == nullptr) {
          if (errno != 0) return ErrnoToStatus(errno, "read directory " + path);
          break;
        }
        std::string_view name = de->d_name;
        if (name == "." || name == ".." || !name.starts_with(name_prefix)) continue;
        if (IsHiddenName(name)) continue;
        EntryKind kind = KindOf(dir.get(), de);
        if (kind == EntryKind::kSkip) continue;
        Entry entry{std::string(), kind == EntryKind::kDir};
        if (entry.is_dir) {
          entry.sort_key = std::string(name) + '/';
          if (cursor_inside && !SubtreeAfter(entry.sort_key, tail)) continue;
        } else {
          if (cursor_inside && !KeyAfter(name, tail)) continue;
          entry.sort_key = std::string(name);
        }
        entries.push_back(std::move(entry));
      }
    }  // closed before descending: one descriptor per walk, however deep
    // A heap, not a sort: a page usually consumes only the first few entries.
    std::make_heap(entries.begin(), entries.end(), std::greater<>());
    while (!entries.empty() && !done_ && SubtreeAfter(dir_key, cursor_)) {
      std::pop_heap(entries.begin(), entries.end(), std::greater<>());
      Entry entry = std::move(entries.back());
      entries.pop_back();
      std::string key = dir_key + entry.sort_key;
      if (entry.is_dir) {
        TF_RETURN_IF_ERROR(VisitDir(key));
      } else if (KeyAfter(key, cursor_)) {
        TF_RETURN_IF_ERROR(VisitFile(key));
      }
    }
    return OkStatus();
  }

  Status VisitDir(const std::string& key) {
    if (!SubtreeAfter(key, cursor_)) return OkStatus();
    // When the whole subtree rolls up into one common prefix, any file below proves it exists;
    // finding one is much cheaper than an ordered walk of the subtree.
    if (!delimiter_.empty() && KeyAfter(key, cursor_)) {
      size_t pos = key.find(delimiter_, prefix_.size());
      if (pos != std::string::npos) {
        TF_ASSIGN_OR_RETURN(bool has_file, HasFile(root_ + key));
        if (has_file) Add(key.substr(0, pos + delimiter_.size()), /*is_prefix=*/true, nullptr);
        return OkStatus();
      }
    }
    return Walk(key, "", /*is_start=*/false);
  }

  Status VisitFile(const std::string& key) {
    std::string path = root_ + key;
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      int err = errno;
      // Deleted since readdir, or a dangling symlink: not an object.
      if (err == ENOENT || err == ENOTDIR || err == ELOOP) return OkStatus();
      return ErrnoToStatus(err, "stat " + path);
    }
    if (!S_ISREG(st.st_mode)) return OkStatus();
    if (!delimiter_.empty()) {
      size_t pos = key.find(delimiter_, prefix_.size());
      if (pos != std::string::npos) {
        Add(key.substr(0, pos + delimiter_.size()), /*is_prefix=*/true, nullptr);
        return OkStatus();
      }
    }
    Add(key, /*is_prefix=*/false, &st);
    return OkStatus();
  }

  // Whether any regular file lies below the directory `path`, in any order.
  Result<bool> HasFile(const std::string& path) {
    TF_ASSIGN_OR_RETURN(DirPtr dir, OpenDir(path, /*follow=*/false));
    if (dir == nullptr) return false;
    std::vector<std::string> subdirs;
    while (true) {
      errno = 0;
      struct dirent* de = ::readdir(dir.get());
      if (de == nullptr) {
        if (errno != 0) return ErrnoToStatus(errno, "read directory " + path);
        break;
      }
      std::string_view name = de->d_name;
      if (name == "." || name == ".." || IsHiddenName(name)) continue;
      EntryKind kind = KindOf(dir.get(), de);
      if (kind == EntryKind::kDir) {
        subdirs.push_back(path + std::string(name) + "/");
      } else if (kind == EntryKind::kFile) {
        struct stat st;
        if (::fstatat(::dirfd(dir.get()), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode)) {
          return true;
        }
      }
    }
    dir.reset();
    for (const std::string& sub : subdirs) {
      TF_ASSIGN_OR_RETURN(bool found, HasFile(sub));
      if (found) return true;
    }
    return false;
  }

  // Adds an object or a common prefix, or on finding one more than fits, ends the page.
  void Add(std::string item, bool is_prefix, const struct stat* st) {
    if (count_ == max_keys_) {
      truncated_ = true;
      done_ = true;
      return;
    }
    ++count_;
    if (is_prefix) {
      page_.common_prefixes.push_back(item);
    } else {
      page_.objects.push_back(InfoOf(item, *st));
    }
    cursor_ = {std::move(item), is_prefix};
  }

  const std::string& root_;
  const std::string& prefix_;
  const std::string& delimiter_;
  const int max_keys_;
  ListCursor cursor_;
  ListPage page_;
  int count_ = 0;
  bool truncated_ = false;
  bool done_ = false;
};

std::string PartName(int part_number) {
  std::string digits = std::to_string(part_number);
  return "part-" + std::string(5 - std::min<size_t>(5, digits.size()), '0') + digits;
}

}  // namespace

LocalObjectStore::LocalObjectStore(LocalStoreOptions options) : options_(std::move(options)) {
  if (options_.root.empty() || options_.root.front() != '/') {
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(options_.root, ec);
    if (!ec) options_.root = abs.string();
  }
  if (options_.root.empty() || options_.root.back() != '/') options_.root += '/';
}

Result<std::string> LocalObjectStore::PathOf(const ObjectRef& object) const {
  if (!object.bucket.empty()) {
    return NotFoundError("NoSuchBucket: a file:// store has no bucket '" + object.bucket + "'");
  }
  TF_RETURN_IF_ERROR(CheckKey(object.key));
  return options_.root + object.key;
}

Result<std::string> LocalObjectStore::StagingDirOf(const std::string& path,
                                                   const std::string& upload_id) const {
  // The id becomes part of a path: accept only what CreateMultipartUpload hands out.
  if (upload_id.size() != kUploadIdHex || !IsHex(upload_id)) {
    return NotFoundError("NoSuchUpload: no upload '" + upload_id + "' for " + path);
  }
  auto [dir, name] = SplitDir(path);
  return dir + HiddenName(name, kMpuTag, upload_id);
}

Result<ListPage> LocalObjectStore::List(const ListRequest& request) {
  if (!request.bucket.empty()) {
    return NotFoundError("NoSuchBucket: a file:// store has no bucket '" + request.bucket + "'");
  }
  if (request.max_keys < 1) {
    return InvalidArgumentError("max_keys must be positive, not " +
                                std::to_string(request.max_keys));
  }
  ListCursor cursor;
  if (!request.continuation_token.empty()) {
    TF_ASSIGN_OR_RETURN(cursor, DecodeToken(request.continuation_token));
  } else {
    cursor.bound = request.start_after;
  }
  // No key can start with such a prefix: an empty page, as S3 gives for a prefix that matches
  // nothing. Checking also keeps ".." from walking outside the root.
  const std::string& prefix = request.prefix;
  std::string start_dir = SplitDir(prefix).first;
  if (prefix.find('\0') != std::string::npos || (!start_dir.empty() && !CheckKey(start_dir).ok())) {
    return ListPage();
  }
  Lister lister(options_.root, request, std::move(cursor),
                std::min(request.max_keys, kMaxListKeys));
  return lister.Run();
}

Result<ObjectInfo> LocalObjectStore::Head(const ObjectRef& object) {
  TF_ASSIGN_OR_RETURN(std::string path, PathOf(object));
  if (path.back() == '/') return NotFoundError(path + ": a directory is not an object");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return FileError(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) return NotFoundError(path + ": not a regular file");
  return InfoOf(object.key, st);
}

Result<GetResult> LocalObjectStore::Get(const GetRequest& request, ByteSink& sink) {
  TF_ASSIGN_OR_RETURN(std::string path, PathOf(request.object));
  if (path.back() == '/') return NotFoundError(path + ": a directory is not an object");
  if (request.range && request.range->begin >= request.range->end) {
    return InvalidArgumentError("empty byte range [" + std::to_string(request.range->begin) + ", " +
                                std::to_string(request.range->end) + ") for " + path);
  }
  // O_NONBLOCK: opening a FIFO must not hang; it is rejected below as not a regular file.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return FileError(errno, "open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return FileError(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) return NotFoundError(path + ": not a regular file");
  std::string etag = EtagOf(st);
  if (!request.if_match.empty() && request.if_match != etag) {
    return PreconditionFailedError(path + ": ETag is " + etag + ", expected " + request.if_match);
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t begin = 0;
  uint64_t end = size;
  if (request.range) {
    if (request.range->begin >= size) {
      // S3 answers 416 InvalidRange.
      return InvalidArgumentError("range begins at " + std::to_string(request.range->begin) +
                                  ", past the end of the " + std::to_string(size) + "-byte file " +
                                  path);
    }
    begin = request.range->begin;
    end = std::min(request.range->end, size);
  }
  TF_RETURN_IF_ERROR(sink.Begin(GetResult{etag, size, 0}));
  const size_t buffer_size = std::max<uint64_t>(1, std::min<uint64_t>(kIoChunk, end - begin));
  std::unique_ptr<char[]> buffer(new char[buffer_size]);
  uint64_t pos = begin;
  while (pos < end) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buffer_size, end - pos));
    ssize_t n = ::pread(fd.get(), buffer.get(), want, static_cast<off_t>(pos));
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError(errno, "read " + path);
    }
    if (n == 0) return PreconditionFailedError(path + ": file shrank while being read");
    TF_RETURN_IF_ERROR(sink.Append(buffer.get(), static_cast<size_t>(n)));
    pos += static_cast<uint64_t>(n);
  }
  // An in-place write during the read would mix versions; S3 never delivers that.
  struct stat after;
  if (::fstat(fd.get(), &after) != 0) return FileError(errno, "stat " + path);
  if (EtagOf(after) != etag) {
    return PreconditionFailedError(path + ": file changed while being read");
  }
  return GetResult{etag, size, end - begin};
}

Result<std::string> LocalObjectStore::Put(const ObjectRef& object, std::string_view body) {
  TF_ASSIGN_OR_RETURN(std::string path, PathOf(object));
  if (path.back() == '/') {
    // An S3 folder marker: the directory is all a tree can hold of it.
    if (!body.empty()) {
      return InvalidArgumentError("key '" + object.key +
                                  "' ends in '/' and names a directory, which cannot hold a body");
    }
    TF_RETURN_IF_ERROR(MakeDirs(options_.root, object.key));
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return FileError(errno, "stat " + path);
    return EtagOf(st);
  }
  auto [dir, name] = SplitDir(object.key);
  TF_RETURN_IF_ERROR(MakeDirs(options_.root, dir));
  return ReplaceFile(options_.root + dir, name, path,
                     [&](int fd, const std::string& tmp) { return WriteAll(fd, body, tmp); });
}

Status LocalObjectStore::Delete(const ObjectRef& object) {
  TF_ASSIGN_OR_RETURN(std::string path, PathOf(object));
  if (path.back() == '/') {
    if (::rmdir(path.c_str()) == 0) return OkStatus();
    int err = errno;
    if (err == ENOENT || err == ENOTDIR || err == ENOTEMPTY || err == EEXIST) return OkStatus();
    return FileError(err, "rmdir " + path);
  }
  if (::unlink(path.c_str()) == 0) return OkStatus();
  int err = errno;
  // Deleting a missing key succeeds on S3. So does deleting "a" when only "a/b" exists: a
  // directory is not an object (Linux says EISDIR, POSIX allows EPERM).
  if (err == ENOENT || err == ENOTDIR || err == EISDIR) return OkStatus();
  struct stat st;
  if (err == EPERM && ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return OkStatus();
  return FileError(err, "unlink " + path);
}

Result<std::string> LocalObjectStore::CreateMultipartUpload(const ObjectRef& object) {
  TF_ASSIGN_OR_RETURN(std::string path, PathOf(object));
  if (path.back() == '/') {
    return InvalidArgumentError("key '" + object.key + "' names a directory, not an object");
  }
  auto [dir, name] = SplitDir(object.key);
  TF_RETURN_IF_ERROR(MakeDirs(options_.root, dir));
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string id = RandomHex(kUploadIdHex);
    std::string staging = options_.root + dir + HiddenName(name, kMpuTag, id);
    if (::mkdir(staging.c_str(), 0777) == 0) return id;
    if (errno != EEXIST) return FileError(errno, "mkdir " + staging);
  }
  return InternalError("no free upload id for " + path);
}

Result<std::string> LocalObjectStore::UploadPart(const ObjectRef& object,
                                                 const std::string& upload_id, int part_number,
                                                 std::string_view body) {
  TF_ASSIGN_OR_RETURN(std::string path, PathOf(object));
  TF_ASSIGN_OR_RETURN(std::string staging, StagingDirOf(path, upload_id));
  if (part_number < 1 || part_number > kMaxPartNumber) {
    return InvalidArgumentError("part number " + std::to_string(part_number) + " of " + path +
                                " is outside [1, 10000]");
  }
  struct stat st;
  if (::stat(staging.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return NotFoundError("NoSuchUpload: no upload '" + upload_id + "' for " + path);
  }
  std::string part = PartName(part_number);
  // Through a rename, so that a retried or concurrent upload of the same part never interleaves.
  return ReplaceFile(staging + "/", part, staging + "/" + part,
                     [&](int fd, const std::string& tmp) { return WriteAll(fd, body, tmp); });
}

Result<std::string> LocalObjectStore::CompleteMultipartUpload(
    const ObjectRef& object, const std::string& upload_id,
    const std::vector<CompletedPart>& parts) {
  TF_ASSIGN_OR_RETURN(std::string path, PathOf(object));
  TF_ASSIGN_OR_RETURN(std::string staging, StagingDirOf(path, upload_id));
  struct stat st;
  if (::stat(staging.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return NotFoundError("NoSuchUpload: no upload '" + upload_id + "' for " + path);
  }
  if (parts.empty()) return InvalidArgumentError("MalformedXML: no parts to complete " + path);
  std::vector<uint64_t> sizes;
  for (size_t i = 0; i < parts.size(); ++i) {
    const CompletedPart& part = parts[i];
    if (i > 0 && part.part_number <= parts[i - 1].part_number) {
      return InvalidArgumentError("InvalidPartOrder: part " + std::to_string(part.part_number) +
                                  " follows part " + std::to_string(parts[i - 1].part_number) +
                                  " for " + path);
    }
    std::string part_path = staging + "/" + PartName(part.part_number);
    if (part.part_number < 1 || part.part_number > kMaxPartNumber ||
        ::stat(part_path.c_str(), &st) != 0) {
      return InvalidArgumentError("InvalidPart: part " + std::to_string(part.part_number) + " of " +
                                  path + " was not uploaded");
    }
    if (EtagOf(st) != part.etag) {
      return InvalidArgumentError("InvalidPart: part " + std::to_string(part.part_number) + " of " +
                                  path + " has ETag " + EtagOf(st) + ", not " + part.etag);
    }
    sizes.push_back(static_cast<uint64_t>(st.st_size));
  }
  // Sizes only once every part is known to be right, so a wrong list reports as such.
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (sizes[i] < options_.min_part_size) {
      return InvalidArgumentError("EntityTooSmall: part " + std::to_string(parts[i].part_number) +
                                  " of " + path + " is " + std::to_string(sizes[i]) +
                                  " bytes, less than the minimum " +
                                  std::to_string(options_.min_part_size));
    }
  }
  auto concatenate = [&](int out, const std::string& tmp) -> Status {
    std::unique_ptr<char[]> buffer(new char[kIoChunk]);
    for (const CompletedPart& part : parts) {
      std::string part_path = staging + "/" + PartName(part.part_number);
      Fd in(::open(part_path.c_str(), O_RDONLY | O_CLOEXEC));
      struct stat part_st;
      if (!in.valid() || ::fstat(in.get(), &part_st) != 0 || EtagOf(part_st) != part.etag) {
        // Re-uploaded or aborted since the check above.
        return InvalidArgumentError("InvalidPart: part " + std::to_string(part.part_number) +
                                    " of " + path + " changed during completion");
      }
      while (true) {
        ssize_t n = ::read(in.get(), buffer.get(), kIoChunk);
        if (n < 0) {
          if (errno == EINTR) continue;
          return FileError(errno, "read " + part_path);
        }
        if (n == 0) break;
        TF_RETURN_IF_ERROR(WriteAll(out, std::string_view(buffer.get(), n), tmp));
      }
    }
    return OkStatus();
  };
  auto [dir, name] = SplitDir(path);
  TF_ASSIGN_OR_RETURN(std::string etag, ReplaceFile(dir, name, path, concatenate));
  // The object is in place; a staging directory left behind only wastes space.
  std::error_code ec;
  std::filesystem::remove_all(staging, ec);
  return etag;
}

Status LocalObjectStore::AbortMultipartUpload(const ObjectRef& object,
                                              const std::string& upload_id) {
  TF_ASSIGN_OR_RETURN(std::string path, PathOf(object));
  TF_ASSIGN_OR_RETURN(std::string staging, StagingDirOf(path, upload_id));
  struct stat st;
  if (::lstat(staging.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return NotFoundError("NoSuchUpload: no upload '" + upload_id + "' for " + path);
  }
  std::error_code ec;
  std::filesystem::remove_all(staging, ec);
  if (ec) return ErrnoToStatus(ec.value(), "remove " + staging);
  return OkStatus();
}

std::string LocalObjectStore::Describe(const ObjectRef& object) const {
  return "file://" + options_.root + object.key;
}

}  // namespace trainfeed
