// Pipe-mode channels (contract §3.4): the glue between a channel's description (a job spec's
// channel, or `trainfeed pipe` flags) and the streaming engine in modes/pipe.
//
// LoadPipeItems reads what the channel holds before any FIFO is offered: the S3Prefix listing, or
// the (augmented) manifest plus a HEAD of every object it names (their sizes and ETags let the
// prefetcher plan ranged parts and pin versions). A prefix listing's later pages and a
// ManifestFile's later HEADs stream in while the channel runs, unless it is shuffled. PipeChannelStream runs one channel for
// `trainfeed train` on a thread of the runner, not a child process as FastFile does: the engine
// needs no signal handling or clean process of its own, shares the listing already in memory, and
// stops within milliseconds of a flag, so the runner can end it whenever the command ends.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "cluster/host_identity.h"
#include "job/job_spec.h"
#include "modes/pipe/fifo_channel.h"
#include "store/store_factory.h"

namespace trainfeed {

struct PipeChannelConfig {
  std::string name;
  S3DataSourceSpec source;
  std::string compression_type = "None";     // None | Gzip
  std::string record_wrapper_type = "None";  // None | RecordIO
  std::optional<int64_t> shuffle_seed;
  // Fetched bytes held at once (with Gzip + RecordIO, half for prefetch, half for one inflated
  // payload).
  uint64_t buffer_bytes = 256ull << 20;
  int concurrency = 32;
  std::optional<uint64_t> epochs;  // unlimited when unset
  uint64_t first_epoch = 0;
  // Resumable streaming (modes/pipe/resume_point.h), `trainfeed pipe` only: where to keep the
  // consumed point, and a token to start from ("" for none of either).
  std::string state_file;
  std::string resume_token;
};

// A job spec channel in Pipe mode.
PipeChannelConfig PipeConfigForChannel(const ChannelSpec& channel);

// Everything the channel streams, with its stores open. NotFound (naming the channel and URI) for
// an empty channel or a missing bucket or object; InvalidArgument for a bad manifest line.
// `concurrency` HEADs run at once for manifests. A listing failing after its first page fails
// the epoch at that position (a streamed listing's pages come while the channel runs).
Result<std::unique_ptr<PipeItems>> LoadPipeItems(const PipeChannelConfig& config,
                                                 const StoreOpenOptions& store);

// The engine's options for this host. NotFound when ShardedByS3Key leaves this host nothing.
// With a resume token, the stream starts at its point once the token is checked against the
// items (InvalidArgument when it does not fit them: the data changed).
Result<FifoChannelOptions> FifoOptionsFor(const PipeChannelConfig& config, const PipeItems& items,
                                          const HostIdentity& hosts, const std::string& dir);

// One Pipe channel of a training job. Stop() runs in the destructor, so the FIFOs never outlive
// the job on any return path.
class PipeChannelStream {
 public:
  // `dir` is input/data; the FIFOs are <dir>/<name>_<epoch>. `log` receives one line per epoch and
  // the channel's failure.
  PipeChannelStream(PipeChannelConfig config, std::string dir,
                    std::function<void(const std::string&)> log);
  ~PipeChannelStream();
  PipeChannelStream(const PipeChannelStream&) = delete;
  PipeChannelStream& operator=(const PipeChannelStream&) = delete;

  // Lists the channel and creates <name>_0 (call before the command starts), then streams on a
  // thread. Errors name the channel.
  Status Start(const StoreOpenOptions& store, const HostIdentity& hosts);
  // True once the stream failed (it stopped; the reader got a short epoch).
  bool failed() const { return failed_.load(); }
  // Stops streaming, joins, removes the FIFOs. The channel's error, if it failed; OK otherwise.
  Status Stop();

  const std::string& name() const { return config_.name; }

 private:
  PipeChannelConfig config_;
  std::string dir_;
  std::function<void(const std::string&)> log_;
  std::unique_ptr<PipeItems> items_;
  std::atomic<bool> cancel_{false};
  std::atomic<bool> failed_{false};
  Status error_;  // written by the thread before failed_ turns true
  std::thread thread_;
};

}  // namespace trainfeed
