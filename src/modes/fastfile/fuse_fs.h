// FastFile mode's file system: a FileTree mounted read-only with the libfuse3 low-level API, each
// open file served by its own ObjectReader (lazy ranged GETs pinned to the listed ETag).
//
// The tree never changes while mounted, so the kernel is told to cache everything it can: entries
// and attributes for an hour, negative lookups too (Python imports probe many missing names),
// file pages across opens (keep_cache) and folder listings (cache_readdir). Node ids are the inode
// numbers and live as long as the tree, so forget has nothing to free. Reads become EIO when the
// store fails or the object changed since it was listed; each open file logs its first failure
// as one line naming the object. Every open file draws prefetch memory from one MemoryBudget
// (--memory-limit) and issues GETs on one FetchPool (--read-threads).
//
// Only fuse_fs.cc includes libfuse headers.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"
#include "modes/fastfile/object_reader.h"
#include "modes/fastfile/tree.h"
#include "store/object_store.h"

namespace trainfeed {

struct FastFileMountOptions {
  std::string mountpoint;  // an existing directory, absolute
  std::string bucket;      // the bucket of every key in the tree ("" for file://)
  // Prefetched bytes held by all open files together; readers prefetch less when it is reached.
  uint64_t memory_limit_bytes = 512ull << 20;
  // Threads running GETs for all open files (the FetchPool). GETs wait on the network, not the
  // CPU, so this is a concurrency knob rather than a core count.
  int read_threads = 16;
  bool allow_other = false;  // let other users read the mount (non-root: user_allow_other)
  // Local disk cache (--cache, --cache-size): the caller opens a DiskCache on cache_dir (absolute;
  // "" for none) and hands it to every reader as reader.cache.
  std::string cache_dir;
  uint64_t cache_size_bytes = 10ull << 30;
  ReaderOptions reader;
  // Called once from a helper thread: OK when the mount answers a stat(), else why it does not.
  // A daemonizing caller tells its waiting parent here.
  std::function<void(const Status&)> on_ready;
  // Set by the caller's own signal handler before Serve took over the signals: checked once the
  // handlers are in place, so a SIGTERM that arrived during the listing still unmounts at once.
  const std::atomic<bool>* cancel = nullptr;
};

// Mounts `tree` (listed from `store`) at options.mountpoint and serves it until the file system
// is unmounted (fusermount3 -u, umount, UnmountFastFile) or the process gets SIGINT, SIGTERM or
// SIGHUP; then unmounts lazily (a busy mount never keeps the process alive) and prints the
// counters line to stderr. SIGUSR1 prints the counters line without unmounting.
// Call from the main thread before it starts any other thread: Serve blocks those signals in
// every thread it starts, handles them on the calling thread, and restores the previous signal
// handling before it returns. OK after a clean unmount; the error when mounting failed.
Status ServeFastFileMount(ObjectStore& store, const FileTree& tree,
                          const FastFileMountOptions& options);

// Whether a trainfeed file system is mounted at `dir`, live or with its process gone (reads then
// fail with ENOTCONN). Reads /proc/self/mountinfo; never touches the mount itself, so a dead mount
// cannot hang the call.
Result<bool> IsFastFileMounted(const std::string& dir);

// Detaches the trainfeed mount at `dir` (lazy unmount: umount2 MNT_DETACH as root, fusermount3 -u
// -z otherwise), also a dead one. OK when nothing is mounted there; InvalidArgument when what is
// mounted there is not trainfeed, so a mistyped path never unmounts something else.
Status UnmountFastFile(const std::string& dir);

// One line of counters: reads and bytes served, GETs and bytes fetched, over-fetch ratio, read
// latency p50/p99 (upper bounds of power-of-two buckets), time readers waited for the network,
// the disk cache's hits, misses and blocks written once it has any, and with `budget` the memory
// in use and its peak.
std::string FormatReadStats(const ReadStats& stats, const MemoryBudget* budget = nullptr);

}  // namespace trainfeed
