// The trainfeed subcommands. Each turns its flags into component options, runs, prints one line
// per failure, and returns the process exit code (0 success, 1 failure, 2 bad usage).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "job/pipe_channel.h"
#include "modes/fastfile/fuse_fs.h"
#include "pack/packer.h"
#include "store/store_factory.h"
#include "transfer/downloader.h"
#include "transfer/uploader.h"

namespace trainfeed {

struct GlobalFlags {
  StoreOpenOptions store;
  int verbosity = 1;
  bool quiet = false;
};

// Set by SIGINT/SIGTERM; long commands stop cleanly when it turns true.
extern std::atomic<bool> g_interrupted;

int RunLs(const GlobalFlags& flags, const std::string& uri, bool recursive);
int RunDownload(const GlobalFlags& flags, const std::string& uri, const std::string& dir,
                const DownloadOptions& options);
int RunUpload(const GlobalFlags& flags, const std::string& dir, const std::string& uri,
              const UploadOptions& options);
int RunMakeBucket(const GlobalFlags& flags, const std::string& uri);
// FastFile mode: lists `uri` and mounts it read-only at `dir`. Without `foreground` it returns once
// the mount answers, leaving a daemon that serves it until SIGTERM or unmount; the exit code says
// whether the mount is up. With `listing_snapshot`, the listing is loaded from that file when it
// holds this endpoint's and URI's listing, else listed and saved there.
int RunMount(const GlobalFlags& flags, const std::string& uri, const std::string& dir,
             FastFileMountOptions options, bool foreground, std::string listing_snapshot = "");
// Lazily unmounts the trainfeed mount at `dir`; succeeds when nothing is mounted there.
int RunUnmount(const std::string& dir);

// `trainfeed advise`: what the dataset under `uri` looks like and which input mode suits it.
struct AdviseCommandOptions {
  std::string uri;
  std::optional<double> training_hours;
  std::optional<uint64_t> disk_free_bytes;  // else the free space of the current directory
  bool probe = false;                        // measure this machine's read rates
  bool json = false;
  bool no_pack = false;
  bool sequential_only = false;
  int instance_count = 1;
  std::string channel = "train";
  std::string pack_to;  // destination of `trainfeed pack`; default: next to the source
};
int RunAdvise(const GlobalFlags& flags, const AdviseCommandOptions& options);

// `trainfeed pack SRC DST`: packs the objects under `source` into shards with an index under
// `destination` (resuming an earlier run), or with `verify` checks a finished pack instead.
int RunPack(const GlobalFlags& flags, const std::string& source, const std::string& destination,
            PackOptions options, bool verify);

// Pipe mode: lists the channel, then streams it epoch after epoch into FIFOs <dir>/<name>_<N>
// until config.epochs, SIGINT/SIGTERM (exit 0) or an error (one line, exit 1, FIFOs removed).
int RunPipe(const GlobalFlags& flags, const PipeChannelConfig& config, const std::string& dir,
            const HostFlags& hosts);

// Prints "trainfeed: error: <status>" to stderr. Returns 1.
int ReportError(const Status& status);

}  // namespace trainfeed
