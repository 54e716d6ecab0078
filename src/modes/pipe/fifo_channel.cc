#include "modes/pipe/fifo_channel.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <thread>

#include "modes/pipe/resume_point.h"

namespace trainfeed {

namespace {

using Steady = std::chrono::steady_clock;

bool Cancelled(const std::atomic<bool>* cancel) { return cancel && cancel->load(); }

// How long a blocked write sleeps before it looks at the cancel flag again.
constexpr int kPollMillis = 50;

// Writes to a FIFO opened O_NONBLOCK. It stays non-blocking on purpose: a reader that holds the
// FIFO open but stops reading would otherwise block write() for good, and neither a cancel (job
// ended, SIGTERM) nor the max-runtime rule could stop the channel. poll() waits for room instead.
class FifoWriter final : public PipeWriter {
 public:
  FifoWriter(int fd, const std::atomic<bool>* cancel) : fd_(fd), cancel_(cancel) {}

  Status Append(const char* data, size_t size) override {
    while (size > 0) {
      ssize_t n = ::write(fd_, data, size);
      if (n > 0) {
        bytes_ += static_cast<uint64_t>(n);
        data += n;
        size -= static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EPIPE) {
        reader_closed_ = true;
        return CancelledError("the reader closed the FIFO");
      }
      if (n < 0 && errno != EAGAIN) return ErrnoToStatus(errno, "write to the FIFO");
      auto start = Steady::now();
      pollfd p = {fd_, POLLOUT, 0};
      int r = ::poll(&p, 1, kPollMillis);
      blocked_ += std::chrono::duration<double>(Steady::now() - start).count();
      if (r < 0 && errno != EINTR) return ErrnoToStatus(errno, "poll the FIFO");
      if (Cancelled(cancel_)) return CancelledError("stopped");
    }
    return OkStatus();
  }
  bool reader_closed() const override { return reader_closed_; }
  double blocked_seconds() const override { return blocked_; }
  uint64_t bytes_written() const override { return bytes_; }

 private:
  int fd_;
  const std::atomic<bool>* cancel_;
  bool reader_closed_ = false;
  double blocked_ = 0;
  uint64_t bytes_ = 0;
};

bool IsEpochName(const std::string& name, const std::string& channel) {
  if (name.size() <= channel.size() + 1 || name.compare(0, channel.size(), channel) != 0 ||
      name[channel.size()] != '_') {
    return false;
  }
  for (size_t i = channel.size() + 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  return true;
}

Status MakeFifo(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (S_ISFIFO(st.st_mode)) return OkStatus();
    return AlreadyExistsError("'" + path + "' exists and is not a FIFO");
  }
  // Readable like the files File mode writes: the command may run as another user.
  if (::mkfifo(path.c_str(), 0644) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "mkfifo " + path);
  }
  return OkStatus();
}

// Opens the FIFO for writing once a reader has it open. A non-blocking open fails with ENXIO
// while nobody reads; retrying it keeps the wait cancellable, unlike a blocking open.
Result<int> WaitForReader(const std::string& path, const PipeItems& items,
                          const FifoChannelOptions& options) {
  for (;;) {
    int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      struct stat st;
      if (::fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
        ::close(fd);
        return InternalError("'" + path + "' was replaced by something that is not a FIFO");
      }
      return fd;
    }
    if (errno == EINTR) continue;
    if (errno != ENXIO) return ErrnoToStatus(errno, "open " + path);
    if (Cancelled(options.cancel)) return CancelledError("stopped while waiting for a reader");
    // A listing that failed in the background fails the channel now, not when a reader comes.
    if (Status listed = items.listing_status(); !listed.ok()) return listed;
    std::this_thread::sleep_for(options.open_retry);
  }
}

// Large pipe buffers let the writer run ahead of a reader that reads in bursts. Over the per-user
// limit (pipe-user-pages-soft) the kernel refuses, so smaller sizes are tried; failing all is fine.
void GrowPipe(int fd) {
  for (int size = MaxPipeBufferBytes(); size >= (1 << 20); size /= 2) {
    if (::fcntl(fd, F_SETPIPE_SZ, size) >= 0) return;
  }
}

}  // namespace

int MaxPipeBufferBytes() {
  std::ifstream in("/proc/sys/fs/pipe-max-size");
  long size = 0;
  if (in >> size && size >= 4096 && size <= (1l << 30)) return static_cast<int>(size);
  return 1 << 20;
}

std::string FifoPath(const std::string& dir, const std::string& channel, uint64_t epoch) {
  return dir + "/" + channel + "_" + std::to_string(epoch);
}

void RemoveFifos(const std::string& dir, const std::string& channel) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (const dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (!IsEpochName(name, channel)) continue;
    std::string path = dir + "/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode)) ::unlink(path.c_str());
  }
  ::closedir(d);
}

Status PrepareFifos(const std::string& dir, const std::string& channel, uint64_t first_epoch) {
  RemoveFifos(dir, channel);
  return MakeFifo(FifoPath(dir, channel, first_epoch));
}

Status RunFifoChannel(const PipeItems& items, const FifoChannelOptions& options) {
  auto report = [&](const std::string& line) {
    if (options.on_report) {
      options.on_report(line);
    } else {
      std::fprintf(stderr, "trainfeed: pipe '%s': %s\n", options.channel.c_str(), line.c_str());
    }
  };
  const PrefetchOptions& p = options.prefetch;
  auto is_last = [&](uint64_t epoch) {
    return p.epoch_count && epoch + 1 >= p.first_epoch + *p.epoch_count;
  };
  EpochStreamer streamer(items, options.stream, p);
  std::optional<ResumeRecorder> resume;
  int fifo = -1;  // the epoch's, for the recorder
  Status resume_error;
  if (!options.state_file.empty()) {
    resume.emplace(items, p, !options.stream.gzip && !options.stream.recordio, options.state_file,
                   options.state_interval);
    streamer.OnWriting([&](const Piece& piece, uint64_t stream_begin) {
      if (Status s = resume->Writing(piece, stream_begin, fifo); !s.ok() && resume_error.ok()) {
        resume_error = s;
      }
    });
  }
  Status result;
  uint64_t epoch = p.first_epoch;
  result = MakeFifo(FifoPath(options.dir, options.channel, epoch));
  if (result.ok()) streamer.Start();
  while (result.ok() && !(p.epoch_count && epoch >= p.first_epoch + *p.epoch_count)) {
    const std::string path = FifoPath(options.dir, options.channel, epoch);
    Result<int> fd = WaitForReader(path, items, options);
    if (!fd.ok()) {
      result = fd.status();
      break;
    }
    auto opened = Steady::now();
    // The next epoch's FIFO appears as soon as this one is in use (contract §10).
    if (!is_last(epoch)) result = MakeFifo(FifoPath(options.dir, options.channel, epoch + 1));
    GrowPipe(*fd);
    fifo = *fd;
    if (resume && result.ok()) {
      const bool first = epoch == p.first_epoch;
      result = resume->StartEpoch(epoch, first ? p.first_position : 0, first ? p.first_offset : 0);
    }
    FifoWriter writer(*fd, options.cancel);
    Result<EpochStats> stats = result.ok() ? streamer.StreamEpoch(epoch, writer) : result;
    if (resume) {
      // What the reader took, before the close hides what is left in the pipe.
      using State = ResumeRecorder::EpochState;
      Status saved = resume->Save(*fd, writer.bytes_written(),
                                  !stats.ok()           ? State::kStreaming
                                       : stats->closed_early ? State::kReaderEnded
                                                             : State::kWritten);
      if (stats.ok() && !resume_error.ok()) stats = resume_error;
      if (stats.ok() && !saved.ok()) stats = saved;
    }
    ::close(*fd);
    ::unlink(path.c_str());
    if (!stats.ok()) {
      result = stats.status();
      break;
    }
    // The report counts from the open, so the first byte's delay includes planning this epoch.
    stats->seconds = std::chrono::duration<double>(Steady::now() - opened).count();
    report(DescribeEpoch(*stats));
    ++epoch;
  }
  streamer.Stop();
  RemoveFifos(options.dir, options.channel);
  if (!result.ok() && result.code() == ErrorCode::kCancelled && Cancelled(options.cancel)) {
    return CancelledError("pipe '" + options.channel + "' stopped at epoch " +
                          std::to_string(epoch));
  }
  if (!result.ok()) {
    return result.WithContext("pipe '" + options.channel + "' epoch " + std::to_string(epoch));
  }
  return OkStatus();
}

}  // namespace trainfeed
