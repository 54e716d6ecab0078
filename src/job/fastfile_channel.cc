#include "job/fastfile_channel.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "modes/fastfile/fuse_fs.h"
#include "store/store_uri.h"

namespace trainfeed {

namespace {

using Steady = std::chrono::steady_clock;

constexpr auto kPollInterval = std::chrono::milliseconds(50);

// Executed in the child between fork and exec: only async-signal-safe calls.
[[noreturn]] void Die(int error_fd) {
  int err = errno;
  (void)!::write(error_fd, &err, sizeof(err));
  ::_exit(127);
}

[[noreturn]] void ExecMountChild(const char* program, char* const* argv, pid_t parent, int null_fd,
                                 int log_fd, int error_fd) {
  // trainfeed's own SIGTERM handler only sets a flag; a stop sent before exec must still stop us.
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGINT, SIG_DFL);
  // Its own process group: a terminal's Ctrl-C must not unmount the data under a command that
  // trainfeed is still giving its grace period to.
  ::setpgid(0, 0);
  if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) Die(error_fd);
  // trainfeed may have died before the prctl: then no signal would ever come.
  if (::getppid() != parent) ::_exit(1);
  ::dup2(null_fd, STDIN_FILENO);
  if (log_fd >= 0) {
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execv(program, argv);
  Die(error_fd);
}

// The errno of a stat() of `dir` (0: it answered, with a directory).
int StatDir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

std::string Seconds(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

}  // namespace

std::vector<std::string> FastFileMountArgv(const std::string& uri, const std::string& dir,
                                           const StoreOpenOptions& store,
                                           const FastFileTuning& tuning) {
  std::vector<std::string> argv = {"trainfeed"};
  // "--flag=value": a value can never be taken for a flag of its own.
  if (!store.s3.endpoint_url.empty()) argv.push_back("--endpoint-url=" + store.s3.endpoint_url);
  if (!store.s3.region.empty()) argv.push_back("--region=" + store.s3.region);
  if (!store.s3.profile.empty()) argv.push_back("--profile=" + store.s3.profile);
  if (store.s3.no_sign_request) argv.push_back("--no-sign-request");
  argv.push_back("--max-attempts=" + std::to_string(store.retry.max_attempts));
  // The channel URI starts with s3:// or file:// and the directory with '/': neither can be
  // taken for a flag.
  for (const std::string& arg : {std::string("mount"), uri, dir, std::string("--foreground")}) {
    argv.push_back(arg);
  }
  if (tuning.memory_limit_bytes) argv.push_back("--memory-limit=" + std::to_string(tuning.memory_limit_bytes));
  if (tuning.read_threads) argv.push_back("--read-threads=" + std::to_string(tuning.read_threads));
  if (!tuning.cache_dir.empty()) argv.push_back("--cache=" + tuning.cache_dir);
  if (tuning.cache_size_bytes) argv.push_back("--cache-size=" + std::to_string(tuning.cache_size_bytes));
  return argv;
}

std::string LogTail(const std::string& log, size_t max_lines, size_t max_chars) {
  std::vector<std::string> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    if (line.starts_with("trainfeed: ")) line.erase(0, 11);
    lines.push_back(std::move(line));
  }
  std::string tail;
  size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  for (size_t i = first; i < lines.size(); ++i) tail += (tail.empty() ? "" : " / ") + lines[i];
  if (tail.size() > max_chars) tail = "..." + tail.substr(tail.size() - max_chars);
  return tail;
}

FastFileChannelMount::FastFileChannelMount(std::string channel, std::string uri, std::string dir,
                                           FastFileChannelOptions options)
    : channel_(std::move(channel)),
      uri_(std::move(uri)),
      dir_(std::move(dir)),
      options_(std::move(options)) {}

FastFileChannelMount::~FastFileChannelMount() {
  Status s = Stop();
  if (!s.ok()) spdlog::error("{}", s.ToString());
}

Status FastFileChannelMount::Start() {
  if (pid_ > 0) return InternalError("channel '" + channel_ + "': FastFile mount started twice");
  const std::string what = "channel '" + channel_ + "': FastFile mount of " + uri_;
  // A run that was SIGKILLed together with its mount process can leave a dead mount here, which
  // fails every access with ENOTCONN and makes `mount` refuse the directory.
  Result<bool> left = IsFastFileMounted(dir_);
  if (!left.ok()) return left.status().WithContext(what);
  if (*left) {
    spdlog::warn("channel '{}': detaching the FastFile mount an earlier run left at {}", channel_,
                 dir_);
    if (Status s = UnmountFastFile(dir_); !s.ok()) return s.WithContext(what);
  }
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return ErrnoToStatus(ec.value(), "create '" + dir_ + "'").WithContext(what);

  // A relative file:// URI is made absolute here, so the child's working directory never matters.
  std::string source = uri_;
  if (Result<StoreUri> parsed = ParseStoreUri(uri_);
      parsed.ok() && parsed->scheme == StoreUri::Scheme::kFile) {
    source = parsed->ToString();
  }
  // Everything the child needs is prepared before fork: the child may only call async-safe code.
  std::vector<std::string> args = FastFileMountArgv(source, dir_, options_.store, options_.tuning);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int log_fd = -1;
  if (!options_.log_path.empty()) {
    log_fd = ::open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      return ErrnoToStatus(errno, "create log '" + options_.log_path + "'").WithContext(what);
    }
  }
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int pipefd[2] = {-1, -1};
  if (null_fd < 0 || ::pipe2(pipefd, O_CLOEXEC) != 0) {
    Status s = ErrnoToStatus(errno, "open /dev/null or a pipe").WithContext(what);
    if (null_fd >= 0) ::close(null_fd);
    if (log_fd >= 0) ::close(log_fd);
    return s;
  }
  pid_t parent = ::getpid();
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ExecMountChild(options_.program.c_str(), argv.data(), parent, null_fd, log_fd, pipefd[1]);
  }
  int fork_errno = errno;
  ::close(pipefd[1]);
  ::close(null_fd);
  if (log_fd >= 0) ::close(log_fd);
  if (pid < 0) {
    ::close(pipefd[0]);
    return ErrnoToStatus(fork_errno, "fork").WithContext(what);
  }
  // A close-on-exec pipe tells whether exec worked: EOF means yes.
  int child_errno = 0;
  ssize_t n;
  while ((n = ::read(pipefd[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR) {
  }
  ::close(pipefd[0]);
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return ErrnoToStatus(child_errno, "start '" + options_.program + "'").WithContext(what);
  }
  pid_ = pid;
  reaped_ = false;
  serving_ = false;
  forwarded_ = 0;

  // Ready = the kernel lists our mount at dir and a stat() of it answers. That stat goes through
  // the mount, and a child that mounted but never answers would block it for good; so it runs on
  // a helper thread and the wait stays bounded. Stopping the child closes /dev/fuse, which aborts
  // the connection and so releases the helper.
  auto deadline = Steady::now() + options_.ready_timeout;
  std::future<int> probe;
  for (;;) {
    if (Reaped()) {
      return StartFailed(UnavailableError("the mount process " + DescribeExit() +
                                          " before the mount was ready"));
    }
    if (options_.cancel && options_.cancel->load()) {
      return StartFailed(CancelledError("interrupted before the mount was ready"));
    }
    if (probe.valid() &&
        probe.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      int err = probe.get();
      if (err == 0) break;
      // ENOTCONN and the like: the mount is not (or no longer) served; asked again next round.
    }
    if (!probe.valid()) {
      Result<bool> mounted = IsFastFileMounted(dir_);
      if (!mounted.ok()) return StartFailed(mounted.status());
      if (*mounted) probe = std::async(std::launch::async, StatDir, dir_);
    }
    if (Steady::now() >= deadline) {
      return StartFailed(UnavailableError("not ready after " + Seconds(options_.ready_timeout)));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  serving_ = true;
  ForwardLog();
  return OkStatus();
}

Status FastFileChannelMount::StartFailed(Status status) {
  std::string tail = LogTail(ReadLog());
  Status stopped = Stop();
  std::string message = "channel '" + channel_ + "': FastFile mount of " + uri_ + " failed: " +
                        status.message();
  if (!tail.empty()) message += ": " + tail;
  if (!stopped.ok()) message += " (and: " + stopped.message() + ")";
  return Status(status.code(), message);
}

Status FastFileChannelMount::Stop() {
  if (pid_ <= 0) return OkStatus();
  bool died_early = Reaped();
  bool killed = false;
  if (!reaped_) {
    ::kill(pid_, SIGTERM);
    auto deadline = Steady::now() + options_.stop_timeout;
    while (!Reaped() && Steady::now() < deadline) std::this_thread::sleep_for(kPollInterval / 2);
    if (!reaped_) {
      // Only the child itself: fusermount3's auto_unmount helper in its group must outlive it to
      // take the mount away.
      ::kill(pid_, SIGKILL);
      killed = true;
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
      exit_status_ = status;
    }
  }
  if (serving_) {
    // The child's last lines: the counters of what the job read.
    ForwardLog();
    if (died_early) {
      spdlog::warn("channel '{}': the FastFile mount process {} while the command was running",
                   channel_, DescribeExit());
    } else if (killed) {
      spdlog::warn("channel '{}': the FastFile mount process did not stop within {} of SIGTERM; "
                   "killed", channel_, Seconds(options_.stop_timeout));
    } else if (!WIFEXITED(exit_status_) || WEXITSTATUS(exit_status_) != 0) {
      spdlog::warn("channel '{}': the FastFile mount process {}", channel_, DescribeExit());
    }
  }
  pid_ = -1;
  serving_ = false;
  // Whatever the child managed: a killed one leaves a dead mount unless fusermount3 removed it.
  Status s = UnmountFastFile(dir_);
  if (!s.ok()) return s.WithContext("channel '" + channel_ + "': remove the FastFile mount");
  return OkStatus();
}

bool FastFileChannelMount::Reaped() {
  if (reaped_) return true;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    exit_status_ = status;
  } else if (r < 0 && errno == ECHILD) {
    reaped_ = true;  // reaped by someone else; its status is lost
  }
  return reaped_;
}

std::string FastFileChannelMount::DescribeExit() const {
  if (WIFSIGNALED(exit_status_)) {
    const char* name = sigabbrev_np(WTERMSIG(exit_status_));
    return std::string("was killed by SIG") +
           (name ? name : std::to_string(WTERMSIG(exit_status_)).c_str());
  }
  return "exited with " + std::to_string(WEXITSTATUS(exit_status_));
}

std::string FastFileChannelMount::ReadLog() const {
  if (options_.log_path.empty()) return "";
  std::ifstream in(options_.log_path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void FastFileChannelMount::ForwardLog() {
  std::string log = ReadLog();
  if (log.size() <= forwarded_) return;
  // Whole lines only: the child may be writing the next one right now.
  size_t end = log.rfind('\n');
  if (end == std::string::npos || end + 1 <= forwarded_) return;
  std::fwrite(log.data() + forwarded_, 1, end + 1 - forwarded_, stderr);
  std::fflush(stderr);
  forwarded_ = end + 1;
}

}  // namespace trainfeed
