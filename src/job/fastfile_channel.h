// FastFile channels (contract §3.3): the channel's S3 prefix is mounted read-only at
// <job>/opt/ml/input/data/<channel> before the training command starts and unmounted after it,
// whatever path the job takes.
//
// The mount is served by a child process running this same binary as `trainfeed mount URI DIR
// --foreground`, not by a thread of the job runner: ServeFastFileMount must start before any other
// thread exists and takes over SIGINT/SIGTERM/SIGHUP for as long as it serves, while the runner
// already has threads (checkpoint sync, downloads) and its own stop handling. The child:
//   - is in its own process group, so a Ctrl-C at the terminal reaches trainfeed, which stops the
//     command first (with its grace period), but not the mount the command is still reading;
//   - gets SIGTERM when trainfeed dies (PR_SET_PDEATHSIG), however it dies, and then unmounts;
//   - writes its log and its counters line to a file, which is forwarded to our stderr.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/store_factory.h"

namespace trainfeed {

// Mount flags a job passes to every FastFile channel's mount (trainfeed train --fastfile-*).
// Zero / empty leaves the mount's own default.
struct FastFileTuning {
  uint64_t memory_limit_bytes = 0;  // --memory-limit
  int read_threads = 0;             // --read-threads
  std::string cache_dir;            // --cache: this channel's own folder (one mount per folder)
  uint64_t cache_size_bytes = 0;    // --cache-size
};

struct FastFileChannelOptions {
  // The trainfeed binary the child runs. Tests substitute a stand-in script.
  std::string program = "/proc/self/exe";
  // Passed on as the global store flags (--endpoint-url, --region, --profile, --no-sign-request,
  // --max-attempts), so the mount reads the store exactly as the rest of the job does.
  StoreOpenOptions store;
  FastFileTuning tuning;
  // Where the child's stdout and stderr go (truncated on Start). "" = inherit ours; the error of a
  // failed start then cannot quote the child's last lines.
  std::string log_path;
  // Listing a prefix of millions of objects takes a while; beyond this the job fails instead of
  // waiting forever on a store that does not answer.
  std::chrono::milliseconds ready_timeout = std::chrono::seconds(120);
  // SIGTERM -> SIGKILL when stopping. A clean unmount takes milliseconds (it is lazy).
  std::chrono::milliseconds stop_timeout = std::chrono::seconds(5);
  // Checked while waiting for the mount: trainfeed was asked to stop.
  const std::atomic<bool>* cancel = nullptr;
};

// The child's argv: `trainfeed [store flags] mount <uri> <dir> --foreground [tuning flags]`. The
// global flags come before the subcommand, as --flag=value; only those set are passed, except
// --max-attempts, which always is (its default is this build's either way).
std::vector<std::string> FastFileMountArgv(const std::string& uri, const std::string& dir,
                                           const StoreOpenOptions& store,
                                           const FastFileTuning& tuning = {});

// The last `max_lines` non-empty lines of `log` joined with " / " (at most `max_chars`, keeping the
// end), with the "trainfeed: " prefix of each dropped: the one-line tail for an error message.
std::string LogTail(const std::string& log, size_t max_lines = 3, size_t max_chars = 600);

// One FastFile channel mount. Not copyable; Stop() runs in the destructor, so no return path of
// the runner can leave a mount behind.
class FastFileChannelMount {
 public:
  // `dir` is the absolute channel directory; its parent must exist. `uri` is the channel's S3Uri
  // (s3://bucket/prefix/ or file:///path/).
  FastFileChannelMount(std::string channel, std::string uri, std::string dir,
                       FastFileChannelOptions options);
  ~FastFileChannelMount();
  FastFileChannelMount(const FastFileChannelMount&) = delete;
  FastFileChannelMount& operator=(const FastFileChannelMount&) = delete;

  // Creates `dir` (detaching a trainfeed mount an earlier, killed run left there), starts the
  // child and waits until the mount is ready: IsFastFileMounted(dir) and a stat() of dir succeeds
  // while the child is alive. On failure the child is stopped and the error, one line, names the
  // channel and quotes the end of the child's log. Call from the thread that will also call
  // Stop(), normally the main thread: PR_SET_PDEATHSIG fires when the forking thread ends.
  Status Start();

  // SIGTERM to the child, up to stop_timeout for it to unmount and exit, then SIGKILL; then
  // detaches whatever trainfeed mount is still at `dir`. Forwards the rest of the child's log
  // (its counters line) to stderr. An error only when a mount could not be removed. Idempotent.
  Status Stop();

  const std::string& channel() const { return channel_; }
  const std::string& uri() const { return uri_; }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }

 private:
  // Non-blocking reap; true once the child is gone (status in exit_status_).
  bool Reaped();
  // "exited with 1" / "killed by signal 9".
  std::string DescribeExit() const;
  // Reads the child's log from where the last call stopped and writes it to stderr.
  void ForwardLog();
  std::string ReadLog() const;
  Status StartFailed(Status status);

  std::string channel_;
  std::string uri_;
  std::string dir_;
  FastFileChannelOptions options_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  bool serving_ = false;  // Start() succeeded: the command may be using the mount
  int exit_status_ = 0;
  uint64_t forwarded_ = 0;  // bytes of the log already written to stderr
};

}  // namespace trainfeed
