// A Pipe-mode channel's FIFOs (contract §3.4): <dir>/<channel>_<epoch>, one per epoch.
//
// Lifecycle: _N exists before its reader comes; the writer waits (cancellably) for a reader to
// open it, creates _(N+1) at once, so a reader that polls for the next FIFO finds it early,
// streams epoch N, closes, and unlinks _N. A reader that closes early (EPIPE) ends that epoch;
// the next one follows as usual. Epochs go on until the limit, a cancel, or an error; on every
// way out the channel's FIFOs are unlinked. An error leaves the current epoch short, so nothing
// more is written after it (a FIFO cannot signal failure; the caller must make it loud).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "modes/pipe/epoch_streamer.h"

namespace trainfeed {

struct FifoChannelOptions {
  std::string dir;      // where the FIFOs go; must exist
  std::string channel;  // FIFO names are <channel>_<epoch>
  StreamOptions stream;
  PrefetchOptions prefetch;  // also the epochs: first_epoch, epoch_count
  // Stops the channel when it turns true: waits and writes end within milliseconds.
  const std::atomic<bool>* cancel = nullptr;
  // One line per epoch (DescribeEpoch), and one for each notable event. Default: stderr.
  std::function<void(const std::string&)> on_report;
  // Between attempts to open a FIFO nobody reads yet: short, since a reader's open blocks until
  // then, and this is most of the gap between epochs.
  std::chrono::microseconds open_retry{1000};
  // Resumable streaming (resume_point.h): keep the consumed point's token in this file; "" for
  // none. The stream starts where prefetch.first_epoch/first_position/first_offset say.
  std::string state_file;
  std::chrono::milliseconds state_interval{1000};
};

// <dir>/<channel>_<epoch>.
std::string FifoPath(const std::string& dir, const std::string& channel, uint64_t epoch);

// Removes FIFOs named <channel>_<number> that an earlier, killed run left in `dir`, then creates
// <channel>_<first_epoch>. AlreadyExists when something other than a FIFO has one of those names.
Status PrepareFifos(const std::string& dir, const std::string& channel, uint64_t first_epoch);

// Unlinks <channel>_<number> FIFOs in `dir`. Best effort.
void RemoveFifos(const std::string& dir, const std::string& channel);

// Streams epochs into the channel's FIFOs (creating the first one if missing) until
// options.prefetch.epoch_count epochs were delivered (OK), the cancel flag turned true
// (Cancelled), or an error (returned; it names the object). Every FIFO is removed on return.
Status RunFifoChannel(const PipeItems& items, const FifoChannelOptions& options);

// The pipe buffer size F_SETPIPE_SZ may set: /proc/sys/fs/pipe-max-size, else 1 MiB.
int MaxPipeBufferBytes();

}  // namespace trainfeed
