// ObjectReader: serves read(offset, size) calls on one S3 object from a FUSE file handle, fetching
// lazily with ranged GETs.
//
// Reads that follow each other (sequential) grow a readahead window, fetched ahead of the reader
// as parallel ranged GETs; random reads are served with right-sized ranged GETs; a small forward
// seek is absorbed by the window instead of opening a new GET. All prefetched bytes held by all
// readers come out of one MemoryBudget: under pressure a reader prefetches less instead of
// growing memory. Every GET carries If-Match with the listed ETag: an object that changed under a
// reader fails the read (the caller maps it to EIO), never mixes bytes of two versions.
//
// Design.
//  - A chunk is one ranged GET's worth of bytes [begin, end) kept in memory, in one of three
//    phases: queued (a prefetch waiting for a pool thread), fetching, finished (bytes or an error).
//    A reader's chunks never overlap. A read copies from the chunks covering its range, waiting
//    for those still in flight; a range no chunk covers is fetched on the reading thread (a
//    "demand" chunk) in pieces of at most MemoryBudget::demand_reserve().
//  - The stream position is the end of the furthest read since the last random one. A read within
//    seek_absorb of it (either side: FUSE threads may deliver neighbouring reads out of order), or
//    starting inside a chunk already fetched or in flight, is sequential: the window becomes
//    initial_window on the first such read and doubles on each one after, up to max_window, and the
//    bytes [read end, read end + window) are queued on the FetchPool in parts of at most
//    min(part_size, window). Chunks ending seek_absorb or more behind the stream are freed. Any
//    other read is random: it drops every chunk outside its range (cancelling their GETs), resets
//    the window to zero and fetches max(size, min_random_read) bytes.
//  - Memory. Every chunk's bytes are taken from the MemoryBudget before its GET is issued and
//    given back when the chunk is freed. Prefetch uses TryAcquire, which only succeeds below
//    prefetch_limit() = limit - demand_reserve(); when it fails the reader stops prefetching and
//    halves its window. The bytes a read is waiting for use Acquire (blocking), and a demand chunk
//    stays cached after the read only if the total is still below prefetch_limit(). So bytes held
//    between reads never exceed prefetch_limit(), and the reserve above it is only ever held for
//    the duration of one GET by a thread that waits for nothing else: a blocked Acquire always
//    gets its turn, even when every other open file holds prefetched data it is not reading.
//  - Errors. A failed GET fails the read that needs its bytes (the store below already retried),
//    then the chunk is forgotten, so a later read of the same bytes asks the store again. A body
//    shorter than its range is kDataLoss; a changed ETag or size is kPreconditionFailed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "store/object_store.h"

namespace trainfeed {

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
  uint64_t initial_window = 1ull << 20;    // first readahead after a sequential read; 0: none
  uint64_t max_window = 64ull << 20;       // the window doubles up to this
  uint64_t part_size = 8ull << 20;         // readahead is fetched in ranged GETs of at most this
  uint64_t min_random_read = 64ull << 10;  // a random read fetches at least this much
  uint64_t seek_absorb = 1ull << 20;       // jumps up to this still count as sequential
};

// Counters shared by all readers of a mount (printed at unmount / on request).
struct ReadStats {
  std::atomic<uint64_t> reads{0};          // read() calls served
  std::atomic<uint64_t> bytes_served{0};   // bytes returned to readers
  std::atomic<uint64_t> gets{0};           // GET requests issued
  std::atomic<uint64_t> bytes_fetched{0};  // bytes received from the store
  std::atomic<uint64_t> wait_ns{0};        // time readers spent waiting for the network
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
