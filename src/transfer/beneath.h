// File operations that cannot leave a root directory: paths are resolved with openat2's
// RESOLVE_BENEATH, so neither ".." nor a symlink planted in the tree can redirect a write outside
// it. Requires Linux 5.6 or later.
#pragma once

#include <string_view>

#include "common/status.h"

namespace trainfeed {

// An owned file descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// openat2(dir_fd, path, flags, mode) constrained beneath dir_fd. Returns -1 with errno set.
int OpenBeneath(int dir_fd, std::string_view path, int flags, int mode = 0);

// Opens directory `relative` (may be "" for the root itself) beneath root_fd, creating missing
// components (mode 0755) when `create` is set. Errors name the path.
Result<UniqueFd> OpenDirectoryBeneath(int root_fd, std::string_view relative, bool create);

}  // namespace trainfeed
