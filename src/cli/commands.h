// The trainfeed subcommands. Each turns its flags into component options, runs, prints one line
// per failure, and returns the process exit code (0 success, 1 failure, 2 bad usage).
#pragma once

#include <atomic>
#include <string>

#include "modes/fastfile/fuse_fs.h"
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

// Prints "trainfeed: error: <status>" to stderr. Returns 1.
int ReportError(const Status& status);

}  // namespace trainfeed
