#include "job/outputs.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "transfer/beneath.h"
#include "transfer/uploader.h"

namespace trainfeed {

namespace {

constexpr size_t kReadChunk = size_t{1} << 20;

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

// Names in `dir` (not "." or ".."), in byte order so archives and uploads are reproducible.
// A missing directory has no entries.
Result<std::vector<std::string>> SortedEntries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return names;
    return ErrnoToStatus(errno, "open directory '" + dir + "'");
  }
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoToStatus(err, "read directory '" + dir + "'");
  std::sort(names.begin(), names.end());
  return names;
}

// Visits every entry below `abs_dir` depth first, siblings in byte order, with its lstat(). An
// entry removed since the listing is skipped: it is not part of the output. `visit` returns
// whether to descend into a directory.
using TreeVisitor =
    std::function<Result<bool>(const std::string& abs, const std::string& rel, struct stat& st)>;
Status WalkSorted(const std::string& abs_dir, const std::string& rel_dir,
                  const TreeVisitor& visit) {
  TF_ASSIGN_OR_RETURN(std::vector<std::string> names, SortedEntries(abs_dir));
  for (const std::string& name : names) {
    std::string abs = JoinPath(abs_dir, name);
    std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
    struct stat st;
    if (::lstat(abs.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoToStatus(errno, "stat '" + abs + "'");
    }
    bool is_dir = S_ISDIR(st.st_mode);
    TF_ASSIGN_OR_RETURN(bool descend, visit(abs, rel, st));
    if (is_dir && descend) TF_RETURN_IF_ERROR(WalkSorted(abs, rel, visit));
  }
  return OkStatus();
}

Result<bool> IsEmptyDir(const std::string& dir) {
  TF_ASSIGN_OR_RETURN(std::vector<std::string> names, SortedEntries(dir));
  return names.empty();
}

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// libarchive's error as a Status: its errno when it has one (ENOSPC stays ResourceExhausted).
Status ArchiveError(archive* a, const std::string& what) {
  const char* text = archive_error_string(a);
  std::string detail = what + ": " + (text ? text : "unknown libarchive error");
  int err = archive_errno(a);
  if (err > 0) return ErrnoToStatus(err, detail);
  return InternalError(detail);
}

// Appends a directory tree to an open archive, depth first, siblings sorted.
class TarTreeWriter {
 public:
  TarTreeWriter(archive* a, const struct stat& skip) : a_(a), skip_(skip), buffer_(kReadChunk) {}

  Status AddTree(const std::string& root) {
    return WalkSorted(root, "", [&](const std::string& abs, const std::string& rel,
                                    struct stat& st) -> Result<bool> {
      if (S_ISREG(st.st_mode)) {
        if (st.st_dev == skip_.st_dev && st.st_ino == skip_.st_ino) return false;  // ourselves
        TF_RETURN_IF_ERROR(AddFile(abs, rel));
      } else if (S_ISDIR(st.st_mode)) {
        TF_RETURN_IF_ERROR(WriteHeader(rel, st, AE_IFDIR, 0, nullptr));
        return true;
      } else if (S_ISLNK(st.st_mode)) {
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t n = ::readlink(abs.c_str(), target.data(), target.size());
        if (n < 0) return ErrnoToStatus(errno, "readlink '" + abs + "'");
        target.resize(static_cast<size_t>(n));
        TF_RETURN_IF_ERROR(WriteHeader(rel, st, AE_IFLNK, 0, target.c_str()));
      } else {
        spdlog::warn("not archiving '{}': not a regular file, directory or symlink", abs);
      }
      return false;
    });
  }

 private:
  Status AddFile(const std::string& abs, const std::string& rel) {
    UniqueFd fd(::open(abs.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return ErrnoToStatus(errno, "open '" + abs + "'");
    // The header carries the size, so it must come from the very file we read.
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, "stat '" + abs + "'");
    uint64_t size = static_cast<uint64_t>(st.st_size);
    TF_RETURN_IF_ERROR(WriteHeader(rel, st, AE_IFREG, size, nullptr));
    uint64_t done = 0;
    while (done < size) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(buffer_.size(), size - done));
      ssize_t n = ::read(fd.get(), buffer_.data(), want);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoToStatus(errno, "read '" + abs + "'");
      // libarchive would pad a short entry with zeros: refuse instead of archiving garbage.
      if (n == 0) return DataLossError("'" + abs + "' shrank while being archived");
      if (archive_write_data(a_, buffer_.data(), static_cast<size_t>(n)) < 0) {
        return ArchiveError(a_, "archive '" + abs + "'");
      }
      done += static_cast<uint64_t>(n);
    }
    return OkStatus();
  }

  Status WriteHeader(const std::string& rel, const struct stat& st, unsigned int type,
                     uint64_t size, const char* symlink_target) {
    std::unique_ptr<archive_entry, EntryDeleter> entry(archive_entry_new());
    archive_entry_copy_pathname(entry.get(), rel.c_str());
    archive_entry_set_filetype(entry.get(), type);
    archive_entry_set_perm(entry.get(), st.st_mode & 07777);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
    // Whole seconds only: sub-second times would force pax headers and gain nothing.
    archive_entry_set_mtime(entry.get(), st.st_mtim.tv_sec, 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    if (symlink_target != nullptr) archive_entry_copy_symlink(entry.get(), symlink_target);
    int r = archive_write_header(a_, entry.get());
    if (r < ARCHIVE_WARN) return ArchiveError(a_, "archive header of '" + rel + "'");
    return OkStatus();
  }

  archive* a_;
  struct stat skip_;
  std::vector<char> buffer_;
};

Status WriteTarGzToFd(int fd, const std::string& source_dir, const std::string& what) {
  std::unique_ptr<archive, ArchiveDeleter> a(archive_write_new());
  if (!a) return InternalError("archive_write_new failed");
  struct stat self;
  if (::fstat(fd, &self) != 0) return ErrnoToStatus(errno, "stat '" + what + "'");
  // ustar, with pax extensions only where ustar cannot express an entry (long names).
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_add_filter_gzip(a.get()) != ARCHIVE_OK ||
      // No creation time in the gzip header: the same tree must give the same bytes.
      archive_write_set_filter_option(a.get(), "gzip", "timestamp", nullptr) < ARCHIVE_WARN ||
      archive_write_open_fd(a.get(), fd) != ARCHIVE_OK) {
    return ArchiveError(a.get(), "create '" + what + "'");
  }
  TarTreeWriter writer(a.get(), self);
  TF_RETURN_IF_ERROR(writer.AddTree(source_dir));
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return ArchiveError(a.get(), "finish '" + what + "'");
  }
  return OkStatus();
}

// Regular files below `dir` (symlinks to regular files included, as their target's content;
// symlinked directories are not followed), as (relative path, absolute path, size), sorted.
struct LocalFile {
  std::string rel, abs;
  uint64_t size;
};
Status CollectFiles(const std::string& root, std::vector<LocalFile>& out) {
  return WalkSorted(root, "", [&](const std::string& abs, const std::string& rel,
                                  struct stat& st) -> Result<bool> {
    if (S_ISDIR(st.st_mode)) return true;
    if (S_ISLNK(st.st_mode) && ::stat(abs.c_str(), &st) != 0) {
      spdlog::warn("not uploading '{}': dangling symlink", abs);
      return false;
    }
    if (!S_ISREG(st.st_mode)) {
      spdlog::warn("not uploading '{}': not a regular file", abs);
      return false;
    }
    out.push_back({rel, abs, static_cast<uint64_t>(st.st_size)});
    return false;
  });
}

}  // namespace

Status WriteTarGz(const std::string& source_dir, const std::string& archive_path) {
  std::filesystem::path final_path(archive_path);
  std::string dir = final_path.parent_path().string();
  if (dir.empty()) dir = ".";
  std::string temp = JoinPath(dir, "." + final_path.filename().string() + ".tmp-XXXXXX");
  UniqueFd fd(::mkstemp(temp.data()));
  if (!fd) return ErrnoToStatus(errno, "create a temporary file for '" + archive_path + "'");
  Status s = WriteTarGzToFd(fd.get(), source_dir, archive_path);
  // mkstemp makes the file 0600; an archive is meant to be read by others, like tar's output.
  if (s.ok() && ::fchmod(fd.get(), 0644) != 0) s = ErrnoToStatus(errno, "chmod '" + temp + "'");
  if (s.ok() && ::close(fd.release()) != 0) s = ErrnoToStatus(errno, "write '" + temp + "'");
  if (s.ok() && ::rename(temp.c_str(), archive_path.c_str()) != 0) {
    s = ErrnoToStatus(errno, "rename '" + temp + "' to '" + archive_path + "'");
  }
  if (!s.ok()) ::unlink(temp.c_str());
  return s;
}

Status UploadJobOutputs(ObjectStore& store, const StoreUri& s3_output_path,
                        const std::string& job_name, const std::string& model_dir,
                        const std::string& output_data_dir, const std::string& compression,
                        const HostInfo& host, const std::string& scratch_dir) {
  if (compression != "GZIP" && compression != "NONE") {
    return InvalidArgumentError("CompressionType '" + compression + "' is not one of GZIP|NONE");
  }
  if (job_name.empty() || job_name.find('/') != std::string::npos) {
    return InvalidArgumentError("training job name '" + job_name + "' is empty or has a '/'");
  }
  if (host.current_host.empty() || host.current_host.find('/') != std::string::npos) {
    return InvalidArgumentError("host name '" + host.current_host + "' is empty or has a '/'");
  }
  bool gzip = compression == "GZIP";
  std::string base = s3_output_path.key;
  if (!base.empty() && base.back() != '/') base += '/';
  base += job_name + "/output/";
  const std::string suffix = host.is_first() ? "" : "-" + host.current_host;

  struct Source {
    const std::string& dir;
    std::string name;  // archive base name (GZIP) or key folder (NONE)
  };
  const Source sources[] = {{model_dir, "model"}, {output_data_dir, gzip ? "output" : "data"}};

  std::error_code ec;
  if (gzip) {
    std::filesystem::create_directories(scratch_dir, ec);
    if (ec) return ErrnoToStatus(ec.value(), "create scratch directory '" + scratch_dir + "'");
  }

  UploadOptions options;
  options.concurrency = 8;
  Uploader uploader(store, options);
  uploader.Start();
  std::vector<std::string> archives;  // removed at the end, whatever happened
  uint64_t queued = 0;
  Status status;
  for (const Source& source : sources) {
    if (!host.is_first()) {
      Result<bool> empty = IsEmptyDir(source.dir);
      if (!empty.ok()) {
        status = empty.status();
        break;
      }
      if (*empty) continue;
    }
    if (gzip) {
      // The host name keeps hosts that share a scratch directory (tests, one machine) apart.
      std::string archive =
          JoinPath(scratch_dir, source.name + "-" + host.current_host + ".tar.gz");
      status = WriteTarGz(source.dir, archive);
      if (!status.ok()) break;
      archives.push_back(archive);
      struct stat st;
      if (::stat(archive.c_str(), &st) != 0) {
        status = ErrnoToStatus(errno, "stat '" + archive + "'");
        break;
      }
      uploader.Add({archive,
                    {s3_output_path.bucket, base + source.name + suffix + ".tar.gz"},
                    static_cast<uint64_t>(st.st_size)});
      ++queued;
    } else {
      std::vector<LocalFile> files;
      status = CollectFiles(source.dir, files);
      if (!status.ok()) break;
      for (LocalFile& f : files) {
        uploader.Add(
            {f.abs, {s3_output_path.bucket, base + source.name + suffix + "/" + f.rel}, f.size});
        ++queued;
      }
    }
  }
  UploadReport report = uploader.Finish();
  for (const std::string& archive : archives) ::unlink(archive.c_str());
  if (!status.ok()) return status.WithContext("job outputs");
  if (!report.ok()) {
    const auto& [path, why] = report.failures.front();
    return why.WithContext("upload job outputs: " + std::to_string(report.failed_objects) + " of " +
                           std::to_string(queued) + " objects failed; first '" + path + "'");
  }
  spdlog::info("uploaded job outputs: {} objects, {} bytes to {}", report.objects, report.bytes,
               store.Describe({s3_output_path.bucket, base}));
  return OkStatus();
}

}  // namespace trainfeed
