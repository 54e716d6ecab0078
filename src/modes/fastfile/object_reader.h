// ObjectReader: serves read(offset, size) calls on one S3 object from a FUSE file handle, fetching
// lazily with ranged GETs.
//
// Reads that continue each other form a run; a run that keeps reading into the bytes fetched
// ahead of it earns a growing readahead window, fetched ahead of the reader as parallel ranged
// GETs; random reads are served with right-sized ranged GETs. All prefetched bytes held by all
// readers come out of one MemoryBudget: under pressure a reader prefetches less instead of
// growing memory. Every GET carries If-Match with the listed ETag: an object that changed under a
// reader fails the read (the caller maps it to EIO), never mixes bytes of two versions. With a
// DiskCache, bytes come from local disk when it holds them, and what is fetched is written there.
//
// Design.
//  - A chunk is one ranged GET's worth of bytes [begin, end) kept in memory, in one of three
//    phases: queued (a prefetch waiting for a pool thread), fetching, finished (bytes or an error).
//    A reader's chunks never overlap. A read copies from the chunks covering its range, waiting
//    for those still in flight; a range no chunk covers is fetched on the reading thread (a
//    "demand" chunk) in pieces of at most MemoryBudget::demand_reserve().
//  - Runs. The stream position is the end of the furthest read of the current run. A read
//    continues the run when it starts at most seek_absorb behind the stream position (FUSE threads
//    deliver the kernel's neighbouring readahead requests out of order) and no further ahead than
//    seek_absorb past it or the end of what is already fetched or queued (a forward seek into the
//    readahead is absorbed). Any other read is random: it drops every chunk outside its range
//    (cancelling their GETs), starts a new run with no readahead and fetches
//    max(size, min_random_read) bytes.
//  - Readahead grows only when it is used, like Mountpoint for S3's prefetcher: the window doubles
//    (up to max_window) on each read that reaches into prefetched bytes, and a run with no window
//    yet gets one on its first read past the stream position. A run that began at offset 0 starts
//    with initial_window at once (whole-file reads are the common case; the kernel presumes the
//    same). A run that began anywhere else is presumed random until it proves otherwise: its
//    window never exceeds half of the bytes the run has read, so a reader that stops wastes at
//    most half of what it read. This is what keeps random reads cheap: the kernel turns one large
//    read(2) at a random offset into a burst of 128 KiB neighbouring requests, which used to look
//    like a fast sequential stream and launch up to max_window of readahead each time (fetching
//    3.7x the bytes served on random reads of a mounted file). The bytes [read end, read end +
//    window) are topped up once less than half the window is left ahead of the read, in GETs of
//    at most min(part_size, window). Chunks ending seek_absorb or more behind the stream are freed.
//  - Memory. Every chunk's bytes are taken from the MemoryBudget before its GET is issued and
//    given back when the chunk is freed. Prefetch uses TryAcquire, which only succeeds below
//    prefetch_limit() = limit - demand_reserve(); when it fails the reader stops prefetching and
//    halves its window. The bytes a read is waiting for use Acquire (blocking), and a demand chunk
//    stays cached after the read only if the total is still below prefetch_limit(). So bytes held
//    between reads never exceed prefetch_limit(), and the reserve above it is only ever held for
//    the duration of one GET by a thread that waits for nothing else: a blocked Acquire always
//    gets its turn, even when every other open file holds prefetched data it is not reading.
//  - Disk cache (ReaderOptions::cache). Chunks are widened to whole cache blocks (when a block
//    fits in the demand reserve), so every fetched block can be cached: a random read then costs
//    at least a block, the price of hitting the cache on the next pass. Fetching a chunk reads
//    the blocks the cache holds and GETs each run of missing ones. Fetched whole blocks (the short
//    last block of the object too) are written by a task on the FetchPool, never by the reading
//    thread; the task keeps the chunk's bytes (and their budget) until written, and the cache
//    skips blocks when its write backlog is full. Blocks are keyed by the ETag, so a changed
//    object never gets old bytes from the cache; without a listed ETag the cache is used once the
//    first response has fixed one.
//  - Errors. A failed GET fails the read that needs its bytes (the store below already retried),
//    then the chunk is forgotten, so a later read of the same bytes asks the store again. A body
//    shorter than its range is kDataLoss; a changed ETag or size is kPreconditionFailed. A cache
//    block that fails its checks is a miss.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "store/object_store.h"

namespace trainfeed {

class DiskCache;

// A byte ceiling shared by all open readers (--memory-limit).
class MemoryBudget {
 public:
  // `demand_reserve` is the part of the limit that prefetch may not use (see the file comment);
  // by default a quarter of the limit, at least 1 MiB (all of it for limits up to 1 MiB). It is
  // never below 64 KiB, or the whole limit when that is smaller.
  explicit MemoryBudget(uint64_t limit_bytes, uint64_t demand_reserve = kDefaultReserve);
  // Takes `bytes` for prefetch if the total stays within prefetch_limit() now; false otherwise
  // (the caller prefetches less).
  bool TryAcquire(uint64_t bytes);
  // Takes `bytes`, waiting until they fit under the limit. Used for the bytes a reader needs right
  // now; a single request larger than the limit is granted once nothing else is held, so it
  // cannot deadlock.
  void Acquire(uint64_t bytes);
  void Release(uint64_t bytes);
  // Whether bytes taken with Acquire may stay held after the read that needed them.
  bool WithinPrefetchLimit() const { return used() <= prefetch_limit(); }

  uint64_t used() const { return used_.load(); }
  uint64_t peak() const { return peak_.load(); }  // high-water mark of used()
  uint64_t limit() const { return limit_; }
  uint64_t demand_reserve() const { return reserve_; }
  uint64_t prefetch_limit() const { return limit_ - reserve_; }

  static constexpr uint64_t kDefaultReserve = ~uint64_t{0};

 private:
  void TakeLocked(uint64_t bytes);  // mu_ held

  const uint64_t limit_;
  const uint64_t reserve_;  // <= limit_
  std::atomic<uint64_t> used_{0};
  std::atomic<uint64_t> peak_{0};
  std::mutex mu_;
  std::condition_variable freed_;
};

struct ReaderOptions {
  // The first window of a run (at once for a run from offset 0, else at most half of what the run
  // read); 0: no readahead at all.
  uint64_t initial_window = 1ull << 20;
  uint64_t max_window = 64ull << 20;       // the window doubles up to this
  uint64_t part_size = 8ull << 20;         // readahead is fetched in ranged GETs of at most this
  uint64_t min_random_read = 64ull << 10;  // a random read fetches at least this much
  uint64_t seek_absorb = 1ull << 20;       // a read this close to the stream position continues it
  DiskCache* cache = nullptr;              // not owned; outlives the readers and their FetchPool
};

// Counters shared by all readers of a mount (printed at unmount / on request).
struct ReadStats {
  std::atomic<uint64_t> reads{0};          // read() calls served
  std::atomic<uint64_t> bytes_served{0};   // bytes returned to readers
  std::atomic<uint64_t> gets{0};           // GET requests issued
  std::atomic<uint64_t> bytes_fetched{0};  // bytes received from the store
  std::atomic<uint64_t> wait_ns{0};        // time readers spent waiting for the network
  std::atomic<uint64_t> cache_hits{0};     // disk cache blocks read
  std::atomic<uint64_t> cache_misses{0};   // disk cache blocks looked up, not there: fetched
  std::atomic<uint64_t> cache_bytes{0};    // bytes taken from the disk cache
  std::atomic<uint64_t> cache_writes{0};   // blocks written to the disk cache
  // Read latency histogram: bucket i counts reads that took < 2^i microseconds (last: the rest).
  static constexpr int kLatencyBuckets = 24;
  std::atomic<uint64_t> latency_us_log2[kLatencyBuckets] = {};
  void RecordLatency(uint64_t micros);
  // `p` is a percentile in [0, 100] (50, 99, 99.9). Returns the upper bound 2^i of the bucket
  // holding it; for the last, open-ended bucket its lower bound 2^(kLatencyBuckets - 2); 0 when
  // nothing was recorded.
  uint64_t LatencyPercentileMicros(double p) const;
};

// Runs fetches in the background on a fixed set of threads shared by all readers.
class FetchPool;

class ObjectReader {
 public:
  // `object` with the listed `info` (size, etag). `store`, `pool`, `budget` and `stats` outlive
  // the reader.
  ObjectReader(ObjectStore& store, ObjectRef object, ObjectInfo info, FetchPool& pool,
               MemoryBudget& budget, ReadStats& stats, ReaderOptions options = {});
  ~ObjectReader();  // cancels prefetches, waits for in-flight fetches, releases the budget
  ObjectReader(const ObjectReader&) = delete;
  ObjectReader& operator=(const ObjectReader&) = delete;

  // Copies up to `size` bytes at `offset` into `out`. Returns the count (short only at EOF; 0 at or
  // past EOF). Errors: kPreconditionFailed when the object changed (ETag), kDataLoss when the
  // store returned fewer bytes than asked, else the store's error; `out` may then hold part of
  // the bytes. Safe to call from several threads at once (FUSE may issue concurrent reads on one
  // handle), but not concurrently with the destructor.
  Result<size_t> Read(uint64_t offset, char* out, size_t size);

  // How far past its last read the current run fetches ahead (0: no readahead); for tests.
  uint64_t window() const;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with this reader's fetch tasks
};

class FetchPool {
 public:
  // A fetch to run: called once, with run=true on a pool thread, or with run=false (on the
  // cancelling thread) when it was cancelled before it started.
  using Task = std::function<void(bool run)>;

  explicit FetchPool(int threads);  // at least one thread
  // Runs no new task: queued ones are called with run=false; waits for running ones.
  ~FetchPool();
  FetchPool(const FetchPool&) = delete;
  FetchPool& operator=(const FetchPool&) = delete;

  // Queues `task` on behalf of `owner` (an opaque tag). False, without calling it, once the pool
  // is stopping.
  bool Submit(const void* owner, Task task);
  // Takes `owner`'s tasks that have not started off the queue and calls them with run=false.
  // Tasks already running are not waited for: the owner counts them itself.
  void CancelQueued(const void* owner);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace trainfeed
