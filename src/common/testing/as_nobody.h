// Runs a piece of a test as the unprivileged user 'nobody', in a forked child: how a root test
// run checks what an ordinary user would get (root passes every permission check).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "common/status.h"

namespace trainfeed {

// Calls `fn` in a child running as uid/gid 65534 and returns the Status it produced. A child that
// could not drop privileges or report back gives an Internal status saying so.
inline Status RunAsNobody(const std::function<Status()>& fn) {
  int fds[2];
  if (::pipe(fds) != 0) return ErrnoToStatus(errno, "pipe");
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoToStatus(errno, "fork");
  if (pid == 0) {
    ::close(fds[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    Status s = fn();
    std::string out = std::to_string(static_cast<int>(s.code())) + " " + s.message();
    ssize_t n = ::write(fds[1], out.data(), out.size());
    ::_exit(n == static_cast<ssize_t>(out.size()) ? 0 : 4);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) out.append(buf, n);
  ::close(fds[0]);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0 || out.empty()) {
    return InternalError("child running as nobody failed (wait status " + std::to_string(wstatus) + ")");
  }
  size_t space = out.find(' ');
  return Status(static_cast<ErrorCode>(std::stoi(out.substr(0, space))), out.substr(space + 1));
}

}  // namespace trainfeed
