#include "job/process_supervisor.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <spdlog/spdlog.h>
#include <thread>

namespace trainfeed {

std::string ProcessOutcome::Describe() const {
  std::string s;
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    s = std::string("killed by SIG") + (name ? name : std::to_string(signal).c_str());
  } else {
    s = "exited with " + std::to_string(exit_code);
  }
  if (timed_out) s += " after reaching the maximum runtime";
  if (interrupted) s += " after trainfeed was asked to stop";
  return s;
}

namespace {

// Executed in the child between fork and exec: only async-signal-safe calls.
[[noreturn]] void Die(int error_fd) {
  int err = errno;
  (void)!::write(error_fd, &err, sizeof(err));
  ::_exit(127);
}

[[noreturn]] void ExecChild(char* const* argv, char* const* envp, const char* dir,
                            const char* opt_ml_source, int error_fd) {
  ::setpgid(0, 0);  // own process group: signals reach the whole tree the script starts
  if (opt_ml_source && *opt_ml_source) {
    // A private copy of the mount table: the bind below is invisible to the host.
    if (::unshare(CLONE_NEWNS) != 0) Die(error_fd);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Die(error_fd);
    if (::mount(opt_ml_source, "/opt/ml", nullptr, MS_BIND | MS_REC, nullptr) != 0) Die(error_fd);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  if (dir && *dir && ::chdir(dir) != 0) Die(error_fd);
  ::execvpe(argv[0], argv, envp);
  Die(error_fd);
}

// Makes sure /opt/ml exists as a mount point. Returns the directories it had to create, deepest
// first, so they can be removed again.
Result<std::vector<std::string>> EnsureOptMl() {
  struct stat st;
  if (::stat("/opt/ml", &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return AlreadyExistsError("/opt/ml exists and is not a directory");
    return std::vector<std::string>{};
  }
  std::vector<std::string> created;
  if (::mkdir("/opt", 0755) == 0) created.push_back("/opt");
  if (::mkdir("/opt/ml", 0755) != 0) {
    Status s = ErrnoToStatus(errno, "create mount point /opt/ml");
    for (const auto& d : created) ::rmdir(d.c_str());
    return s;
  }
  created.insert(created.begin(), "/opt/ml");
  return created;
}

}  // namespace

Result<ProcessOutcome> RunSupervised(const LaunchSpec& spec, const SupervisorOptions& options,
                                     const std::atomic<bool>& stop_requested) {
  if (spec.argv.empty()) return InvalidArgumentError("no command to run");
  // Everything the child needs is prepared before fork: the child may only call async-safe code.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  // A close-on-exec pipe tells the parent whether exec worked: EOF means yes.
  std::vector<std::string> created_dirs;
  if (!spec.opt_ml_source.empty()) {
    if (::geteuid() != 0) {
      return PermissionDeniedError("--container-paths needs root (a private mount namespace)");
    }
    TF_ASSIGN_OR_RETURN(created_dirs, EnsureOptMl());
  }
  // Leaves the host as it was: an empty mount point we made goes again.
  struct RemoveDirs {
    const std::vector<std::string>& dirs;
    ~RemoveDirs() {
      for (const auto& d : dirs) ::rmdir(d.c_str());
    }
  } remove_dirs{created_dirs};
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "pipe");

  auto started = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoToStatus(errno, "fork");
  if (pid == 0) {
    ExecChild(argv.data(), envp.data(), spec.working_dir.c_str(), spec.opt_ml_source.c_str(),
              pipefd[1]);
  }
  ::setpgid(pid, pid);  // also from the parent, so it holds before any kill below
  ::close(pipefd[1]);
  int child_errno = 0;
  ssize_t n = ::read(pipefd[0], &child_errno, sizeof(child_errno));
  ::close(pipefd[0]);
  if (n == sizeof(child_errno)) {
    ::waitpid(pid, nullptr, 0);
    return ErrnoToStatus(child_errno, "start '" + spec.argv[0] + "'");
  }

  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  ProcessOutcome outcome;
  bool term_sent = false;
  std::chrono::steady_clock::time_point kill_at{};
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) {
        outcome.exit_code = WEXITSTATUS(status);
      } else if (WIFSIGNALED(status)) {
        outcome.signal = WTERMSIG(status);
        outcome.exit_code = 128 + outcome.signal;
      }
      break;
    }
    if (r < 0 && errno != EINTR) {
      if (pidfd >= 0) ::close(pidfd);
      return ErrnoToStatus(errno, "waitpid");
    }
    auto now = std::chrono::steady_clock::now();
    if (!term_sent) {
      bool timeout = options.max_runtime.count() > 0 && now - started >= options.max_runtime;
      if (timeout || stop_requested.load()) {
        outcome.timed_out = timeout;
        outcome.interrupted = !timeout;
        spdlog::warn("stopping the training command ({}): SIGTERM, then SIGKILL in {} s",
                     timeout ? "maximum runtime reached" : "interrupted", options.stop_grace.count());
        ::kill(-pid, SIGTERM);
        term_sent = true;
        kill_at = now + options.stop_grace;
      }
    } else if (now >= kill_at) {
      ::kill(-pid, SIGKILL);
      kill_at = now + std::chrono::hours(24);
    }
    // Wake when the child exits, or every 100 ms to check the clock and the stop flag.
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, 100);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  // SageMaker stops the whole container when the entry point exits: so do we with its group.
  ::kill(-pid, SIGKILL);
  outcome.elapsed = std::chrono::steady_clock::now() - started;
  return outcome;
}

}  // namespace trainfeed
