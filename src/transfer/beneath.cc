#include "transfer/beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace trainfeed {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int OpenBeneath(int dir_fd, std::string_view path, int flags, int mode) {
  std::string p(path);
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  // openat2 takes a mode only for calls that create a file, and refuses one otherwise.
  bool creates = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
  how.mode = creates ? static_cast<uint64_t>(mode) : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd;
  do {
    fd = static_cast<int>(::syscall(SYS_openat2, dir_fd, p.c_str(), &how, sizeof(how)));
  } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  return fd;
}

Result<UniqueFd> OpenDirectoryBeneath(int root_fd, std::string_view relative, bool create) {
  std::string path = relative.empty() ? "." : std::string(relative);
  int fd = OpenBeneath(root_fd, path, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) return UniqueFd(fd);
  if (errno != ENOENT || !create) return ErrnoToStatus(errno, "open directory '" + path + "'");
  // Create the missing components one by one, each beneath its already-opened parent.
  UniqueFd current(OpenBeneath(root_fd, ".", O_RDONLY | O_DIRECTORY));
  if (!current) return ErrnoToStatus(errno, "open destination directory");
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    start = end + 1;
    if (part.empty() || part == ".") continue;
    if (::mkdirat(current.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoToStatus(errno, "create directory '" + path.substr(0, end) + "'");
    }
    UniqueFd next(OpenBeneath(current.get(), part, O_RDONLY | O_DIRECTORY));
    if (!next) return ErrnoToStatus(errno, "open directory '" + path.substr(0, end) + "'");
    current = std::move(next);
  }
  return current;
}

}  // namespace trainfeed
