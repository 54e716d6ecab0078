#include "modes/fastfile/object_reader.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "modes/fastfile/disk_cache.h"

namespace trainfeed {

namespace {

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > ~uint64_t{0} - b ? ~uint64_t{0} : a + b;
}

uint64_t ElapsedNanos(std::chrono::steady_clock::time_point since) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - since)
          .count());
}

// The smallest demand GET. The reserve is at least this (or the whole limit when smaller), so
// a piece never needs more than the reserve, which is what guarantees it is eventually granted.
constexpr uint64_t kMinDemandPiece = 64 << 10;

uint64_t Reserve(uint64_t limit, uint64_t requested) {
  constexpr uint64_t kMiB = 1 << 20;
  if (requested == MemoryBudget::kDefaultReserve) {
    // A quarter of the limit leaves room for the reads of 64 busy files without starving
    // readahead; small limits keep at least 1 MiB, one large FUSE read.
    requested = limit <= kMiB ? limit : std::max(limit / 4, kMiB);
  }
  return std::min(limit, std::max(requested, kMinDemandPiece));
}

}  // namespace

// ---- MemoryBudget ------------------------------------------------------------------------------

MemoryBudget::MemoryBudget(uint64_t limit_bytes, uint64_t demand_reserve)
    : limit_(limit_bytes), reserve_(Reserve(limit_bytes, demand_reserve)) {}

void MemoryBudget::TakeLocked(uint64_t bytes) {
  uint64_t now = used_.load() + bytes;
  used_.store(now);
  if (now > peak_.load()) peak_.store(now);
}

bool MemoryBudget::TryAcquire(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t used = used_.load();
  if (used > prefetch_limit() || bytes > prefetch_limit() - used) return false;
  TakeLocked(bytes);
  return true;
}

void MemoryBudget::Acquire(uint64_t bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  freed_.wait(lock, [&] {
    uint64_t used = used_.load();
    return used == 0 || (used <= limit_ && bytes <= limit_ - used);
  });
  TakeLocked(bytes);
}

void MemoryBudget::Release(uint64_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  used_.store(used_.load() - bytes);
  // Waiters want different amounts; each rechecks its own.
  freed_.notify_all();
}

// ---- ReadStats ---------------------------------------------------------------------------------

void ReadStats::RecordLatency(uint64_t micros) {
  // Bucket i holds [2^(i-1), 2^i): the bit width of the value.
  int bucket = std::min(static_cast<int>(std::bit_width(micros)), kLatencyBuckets - 1);
  latency_us_log2[bucket].fetch_add(1, std::memory_order_relaxed);
}

uint64_t ReadStats::LatencyPercentileMicros(double p) const {
  uint64_t counts[kLatencyBuckets];
  uint64_t total = 0;
  for (int i = 0; i < kLatencyBuckets; ++i) {
    counts[i] = latency_us_log2[i].load(std::memory_order_relaxed);
    total += counts[i];
  }
  if (total == 0) return 0;
  double rank = std::ceil(std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(total));
  uint64_t want = std::clamp<uint64_t>(static_cast<uint64_t>(rank), 1, total);
  uint64_t seen = 0;
  for (int i = 0; i < kLatencyBuckets - 1; ++i) {
    seen += counts[i];
    if (seen >= want) return uint64_t{1} << i;
  }
  return uint64_t{1} << (kLatencyBuckets - 2);
}

// ---- FetchPool ---------------------------------------------------------------------------------

struct FetchPool::Impl {
  struct Queued {
    const void* owner;
    Task task;
  };

  void Loop() {
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mu);
        ready.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;  // the destructor cancels what is still queued
        task = std::move(queue.front().task);
        queue.pop_front();
      }
      task(true);
    }
  }

  std::mutex mu;
  std::condition_variable ready;
  std::deque<Queued> queue;  // Guarded by mu.
  bool stopping = false;     // Guarded by mu.
  std::vector<std::thread> threads;
};

FetchPool::FetchPool(int threads) : impl_(std::make_unique<Impl>()) {
  for (int i = 0; i < std::max(threads, 1); ++i) {
    impl_->threads.emplace_back([this] { impl_->Loop(); });
  }
}

FetchPool::~FetchPool() {
  std::deque<Impl::Queued> cancelled;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    cancelled.swap(impl_->queue);
  }
  impl_->ready.notify_all();
  // Owners may be waiting for these; tell them instead of dropping the tasks silently.
  for (Impl::Queued& q : cancelled) q.task(false);
  for (std::thread& t : impl_->threads) t.join();
}

bool FetchPool::Submit(const void* owner, Task task) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping) return false;
    impl_->queue.push_back({owner, std::move(task)});
  }
  impl_->ready.notify_one();
  return true;
}

void FetchPool::CancelQueued(const void* owner) {
  std::vector<Task> cancelled;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto& q = impl_->queue;
    for (auto it = q.begin(); it != q.end();) {
      if (it->owner == owner) {
        cancelled.push_back(std::move(it->task));
        it = q.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Outside the lock: the tasks take their owner's lock, and owners submit under theirs.
  for (Task& task : cancelled) task(false);
}

// ---- ObjectReader ------------------------------------------------------------------------------

namespace {

// One ranged GET's bytes. The budget for [begin, end) is taken before the chunk is made and given
// back when the last reference goes, so whoever still copies out of a dropped chunk keeps it
// accounted for.
struct Chunk {
  enum class Phase { kQueued, kFetching, kDone, kFailed };

  Chunk(uint64_t b, uint64_t e, Phase p, bool ahead, MemoryBudget& budget)
      : begin(b), end(e), prefetched(ahead), phase(p), budget_(budget) {}
  ~Chunk() { budget_.Release(size()); }
  Chunk(const Chunk&) = delete;
  Chunk& operator=(const Chunk&) = delete;

  uint64_t size() const { return end - begin; }
  bool finished() const { return phase == Phase::kDone || phase == Phase::kFailed; }

  const uint64_t begin, end;
  const bool prefetched;  // readahead, not fetched for a read: reading it grows the window
  Phase phase;          // Guarded by State::mu.
  Status status;        // Guarded by State::mu; the error when kFailed.
  int pins = 0;         // Guarded by State::mu: reads waiting for this chunk's GET.
  bool demand = false;  // Guarded by State::mu: fetched by a read, not yet judged worth keeping.
  // Set when a chunk nobody reads leaves the map: a queued fetch skips its GET, a running one
  // stops at the next piece of body.
  std::atomic<bool> abandoned{false};
  // Written only by the fetching thread before the phase becomes kDone (under State::mu, which
  // readers take before looking), and read-only after.
  std::unique_ptr<char[]> data;

 private:
  MemoryBudget& budget_;
};

}  // namespace

struct ObjectReader::State : std::enable_shared_from_this<ObjectReader::State> {
  State(ObjectStore& store_in, ObjectRef object_in, ObjectInfo info_in, FetchPool& pool_in,
        MemoryBudget& budget_in, ReadStats& stats_in, ReaderOptions options_in)
      : store(store_in),
        object(std::move(object_in)),
        info(std::move(info_in)),
        pool(pool_in),
        budget(budget_in),
        stats(stats_in),
        options(options_in),
        piece_cap(std::max(budget_in.demand_reserve(), kMinDemandPiece)),
        // Widening chunks to whole blocks must not make a demand piece outgrow the reserve.
        block(options_in.cache != nullptr && options_in.cache->block_size() <= piece_cap
                  ? options_in.cache->block_size()
                  : 0),
        etag(info.etag) {}

  Result<size_t> Read(uint64_t offset, char* out, size_t size, uint64_t* wait_ns);
  // Classifies the read [offset, end), frees or drops chunks and queues readahead accordingly.
  // Returns how far a missing piece of this read may be fetched (past `end` for random reads).
  uint64_t PlanLocked(uint64_t offset, uint64_t end);
  // Queues readahead so that [end, end + window) is covered, once less than half of it is.
  void TopUpLocked(uint64_t end);
  void PrefetchLocked(uint64_t from, uint64_t to);
  // Whether a prefetched chunk overlaps [offset, end).
  bool ReachesPrefetchLocked(uint64_t offset, uint64_t end) const;
  // Copies the bytes from `pos` up to the end of the chunk holding them (at most `end`) into
  // `dst`, fetching that chunk first if nothing covers `pos`. Returns the new position.
  Result<uint64_t> Step(uint64_t pos, uint64_t end, uint64_t fetch_end, char* dst,
                        uint64_t* wait_ns);
  void RunPrefetch(std::shared_ptr<Chunk> chunk, bool run);
  // Fills `chunk` from the disk cache and ranged GETs. No lock held.
  Status Fetch(Chunk& chunk, const std::string& expected_etag);
  // GETs [from, to) of the object into `chunk`'s buffer. No lock held.
  Status FetchRange(Chunk& chunk, uint64_t from, uint64_t to, const std::string& expected_etag);
  // Queues the disk cache writes of the whole blocks in a chunk that was just fetched.
  void CacheLocked(const std::shared_ptr<Chunk>& chunk);

  using ChunkMap = std::map<uint64_t, std::shared_ptr<Chunk>>;
  std::shared_ptr<Chunk> FindLocked(uint64_t pos) const;
  uint64_t NextBeginLocked(uint64_t pos) const;
  uint64_t PrevEndLocked(uint64_t pos) const;  // end of the last chunk beginning at or before pos
  ChunkMap::iterator DropLocked(ChunkMap::iterator it);
  void EraseLocked(const Chunk& chunk);
  void FinishLocked(Chunk& chunk, Status status);
  std::string Name() const { return store.Describe(object); }
  uint64_t BlockDown(uint64_t pos) const { return block == 0 ? pos : pos - pos % block; }
  uint64_t BlockUp(uint64_t pos) const {
    if (block == 0 || pos % block == 0) return pos;
    return std::min(info.size, SaturatingAdd(BlockDown(pos), block));
  }

  ObjectStore& store;
  const ObjectRef object;
  const ObjectInfo info;
  FetchPool& pool;
  MemoryBudget& budget;
  ReadStats& stats;
  const ReaderOptions options;
  const uint64_t piece_cap;  // largest demand GET: what the budget keeps free for reads
  const uint64_t block;      // chunks are aligned to this (the cache's blocks); 0: not aligned

  std::mutex mu;
  std::condition_variable changed;  // a chunk finished, or a task ended
  ChunkMap chunks;                  // Guarded by mu. By begin; never overlapping.
  std::string etag;                 // Guarded by mu. The listed ETag, or the first one seen.
  bool started = false;             // Guarded by mu. A run exists (some read was planned).
  bool run_from_start = false;      // Guarded by mu. The run began at offset 0.
  uint64_t stream_pos = 0;          // Guarded by mu. End of the furthest read of the run.
  uint64_t run_bytes = 0;           // Guarded by mu. Bytes the run read (seeks skipped: not).
  uint64_t window = 0;              // Guarded by mu. Readahead; 0 until the run earns some.
  int tasks = 0;                    // Guarded by mu. Fetch tasks queued or running.
  bool closing = false;             // Guarded by mu.
};

namespace {

// Receives one GET's body into [from, to) of a chunk and checks that it comes from the version
// the reader opened.
class ChunkSink final : public ByteSink {
 public:
  ChunkSink(Chunk& chunk, uint64_t from, uint64_t to, std::string expected_etag,
            uint64_t expected_size, std::function<std::string(const std::string&)> adopt_etag,
            std::string name)
      : chunk_(chunk),
        dst_(chunk.data.get() + (from - chunk.begin)),
        capacity_(to - from),
        expected_etag_(std::move(expected_etag)),
        expected_size_(expected_size),
        adopt_etag_(std::move(adopt_etag)),
        name_(std::move(name)) {}

  Status Begin(const GetResult& meta) override {
    if (!meta.etag.empty()) {
      // Without a listed ETag the first response fixes the version for the rest of the reads.
      if (expected_etag_.empty()) expected_etag_ = adopt_etag_(meta.etag);
      if (meta.etag != expected_etag_) {
        return PreconditionFailedError(name_ + " changed since it was opened (ETag " +
                                       expected_etag_ + " -> " + meta.etag + ")");
      }
    }
    if (meta.object_size != expected_size_) {
      return PreconditionFailedError(name_ + " changed since it was opened (" +
                                     std::to_string(expected_size_) + " -> " +
                                     std::to_string(meta.object_size) + " bytes)");
    }
    return OkStatus();
  }

  Status Append(const char* data, size_t size) override {
    if (chunk_.abandoned.load(std::memory_order_relaxed)) {
      return CancelledError("readahead of " + name_ + " no longer needed");
    }
    if (size > capacity_ - received_) {
      return DataLossError("GET " + name_ + " [" + std::to_string(chunk_.begin) + ", " +
                           std::to_string(chunk_.end) + ") returned more bytes than asked for");
    }
    std::memcpy(dst_ + received_, data, size);
    received_ += size;
    return OkStatus();
  }

  uint64_t received() const { return received_; }

 private:
  Chunk& chunk_;
  char* const dst_;
  const uint64_t capacity_;
  std::string expected_etag_;
  const uint64_t expected_size_;
  std::function<std::string(const std::string&)> adopt_etag_;
  const std::string name_;
  uint64_t received_ = 0;
};

}  // namespace

std::shared_ptr<Chunk> ObjectReader::State::FindLocked(uint64_t pos) const {
  auto it = chunks.upper_bound(pos);
  if (it == chunks.begin()) return nullptr;
  --it;
  return it->second->end > pos ? it->second : nullptr;
}

uint64_t ObjectReader::State::NextBeginLocked(uint64_t pos) const {
  auto it = chunks.upper_bound(pos);
  return it == chunks.end() ? info.size : it->first;
}

uint64_t ObjectReader::State::PrevEndLocked(uint64_t pos) const {
  auto it = chunks.upper_bound(pos);
  return it == chunks.begin() ? 0 : std::prev(it)->second->end;
}

bool ObjectReader::State::ReachesPrefetchLocked(uint64_t offset, uint64_t end) const {
  auto it = chunks.upper_bound(offset);
  if (it != chunks.begin()) --it;
  for (; it != chunks.end() && it->first < end; ++it) {
    if (it->second->end > offset && it->second->prefetched) return true;
  }
  return false;
}

ObjectReader::State::ChunkMap::iterator ObjectReader::State::DropLocked(ChunkMap::iterator it) {
  Chunk& chunk = *it->second;
  // A chunk some read is waiting on stays alive (and keeps its GET) through that read's reference.
  if (chunk.pins == 0) chunk.abandoned.store(true, std::memory_order_relaxed);
  return chunks.erase(it);
}

void ObjectReader::State::EraseLocked(const Chunk& chunk) {
  auto it = chunks.find(chunk.begin);
  if (it != chunks.end() && it->second.get() == &chunk) chunks.erase(it);
}

void ObjectReader::State::FinishLocked(Chunk& chunk, Status status) {
  chunk.phase = status.ok() ? Chunk::Phase::kDone : Chunk::Phase::kFailed;
  chunk.status = std::move(status);
  changed.notify_all();
}

uint64_t ObjectReader::State::PlanLocked(uint64_t offset, uint64_t end) {
  const uint64_t absorb = options.seek_absorb;
  // The furthest byte fetched or queued: a forward seek up to there lands in the readahead.
  const uint64_t fetched_end = chunks.empty() ? 0 : chunks.rbegin()->second->end;
  const bool continues =
      started && SaturatingAdd(offset, absorb) >= stream_pos &&
      offset <= std::max(SaturatingAdd(stream_pos, absorb), fetched_end);
  if (!continues) {
    // Random: nothing fetched for the old position will be read soon.
    for (auto it = chunks.begin(); it != chunks.end();) {
      if (it->second->end <= offset || it->second->begin >= end) {
        it = DropLocked(it);
      } else {
        ++it;
      }
    }
    started = true;
    run_from_start = offset == 0;
    stream_pos = end;
    run_bytes = end - offset;
    window = 0;
    if (run_from_start && options.initial_window > 0) {
      window = options.initial_window;
      TopUpLocked(end);
      return end;
    }
    return std::min(info.size,
                    SaturatingAdd(offset, std::max(end - offset, options.min_random_read)));
  }

  // Bytes past the stream position are progress; re-reads and skipped bytes are not.
  const uint64_t progress_from = std::max(offset, stream_pos);
  const uint64_t fresh = end > progress_from ? end - progress_from : 0;
  run_bytes += fresh;
  stream_pos = std::max(stream_pos, end);
  if (options.initial_window > 0) {
    // A run that did not start at offset 0 has to show it is sequential: its readahead stays
    // within half of what it read, so a burst of neighbouring reads that stops soon (one large
    // read(2) at a random offset) fetches at most 1.5 times what it read.
    const uint64_t cap = run_from_start ? options.max_window
                                        : std::min(options.max_window, run_bytes / 2);
    if (ReachesPrefetchLocked(offset, end)) {
      // The reader is consuming readahead: give it more.
      window = std::min(cap, std::max(window >= options.max_window / 2 ? options.max_window
                                                                        : window * 2,
                                      options.initial_window));
    } else if (window == 0 && fresh > 0) {
      window = std::min(cap, options.initial_window);
    }
  }
  // Free what the stream has passed, keeping seek_absorb behind it for reads delivered late.
  const uint64_t passed = std::min(offset, stream_pos - std::min(stream_pos, absorb));
  while (!chunks.empty() && chunks.begin()->second->end <= passed) DropLocked(chunks.begin());
  TopUpLocked(end);
  return end;
}

void ObjectReader::State::TopUpLocked(uint64_t end) {
  if (window == 0) return;
  uint64_t covered = end;
  while (covered < info.size) {
    std::shared_ptr<Chunk> have = FindLocked(covered);
    if (have == nullptr) break;
    covered = have->end;
  }
  // Topping up only below half a window keeps GETs large instead of one per read.
  if (covered >= info.size || covered - end >= window / 2) return;
  // Right after the read, readahead starts at the next block boundary: the read's own fetch is
  // widened to it, so the block it ends in is whole in one chunk and can be cached.
  const uint64_t from = covered == end ? BlockUp(end) : covered;
  PrefetchLocked(from, std::min(info.size, SaturatingAdd(end, window)));
}

void ObjectReader::State::PrefetchLocked(uint64_t from, uint64_t to) {
  uint64_t pos = from;
  to = BlockUp(to);
  while (pos < to) {
    if (std::shared_ptr<Chunk> have = FindLocked(pos)) {
      pos = have->end;
      continue;
    }
    // Parts grow with the window, so a young stream does not fetch part_size bytes it may skip.
    // A remainder under half a part joins the part before it rather than being a GET of its own.
    const uint64_t part = std::min(options.part_size, window);
    const uint64_t part_end =
        std::min({to - pos <= part + part / 2 ? to : BlockUp(pos + part), NextBeginLocked(pos)});
    if (!budget.TryAcquire(part_end - pos)) {
      // Memory is short: keep what is in flight and grow more slowly.
      window = std::max(window / 2, std::min(window, options.initial_window));
      return;
    }
    auto chunk = std::make_shared<Chunk>(pos, part_end, Chunk::Phase::kQueued, true, budget);
    chunks.emplace(pos, chunk);
    ++tasks;
    bool queued = pool.Submit(this, [self = shared_from_this(), chunk](bool run) mutable {
      self->RunPrefetch(std::move(chunk), run);
    });
    if (!queued) {  // the pool is shutting down
      --tasks;
      chunks.erase(pos);
      return;
    }
    pos = part_end;
  }
}

void ObjectReader::State::RunPrefetch(std::shared_ptr<Chunk> chunk, bool run) {
  Status status;
  std::string expected;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!run) {
      status = CancelledError("readahead of " + Name() + " cancelled");
    } else if (closing || chunk->abandoned.load(std::memory_order_relaxed)) {
      status = CancelledError("readahead of " + Name() + " no longer needed");
    } else {
      chunk->phase = Chunk::Phase::kFetching;
      expected = etag;
    }
  }
  if (status.ok()) status = Fetch(*chunk, expected);
  std::lock_guard<std::mutex> lock(mu);
  const bool fetched = status.ok();
  FinishLocked(*chunk, std::move(status));
  if (fetched) CacheLocked(chunk);
  // Drop this task's reference before reporting the task done, so that once the destructor sees
  // no tasks, every byte of this reader is back in the budget (but for cache writes, which the
  // FetchPool runs or cancels before the budget goes away).
  chunk.reset();
  --tasks;
  changed.notify_all();
}

Status ObjectReader::State::Fetch(Chunk& chunk, const std::string& expected_etag) {
  chunk.data = std::make_unique_for_overwrite<char[]>(chunk.size());
  DiskCache* cache = options.cache;
  // Without an ETag yet nothing names the version: the first GET fixes it.
  if (cache == nullptr || expected_etag.empty()) {
    return FetchRange(chunk, chunk.begin, chunk.end, expected_etag);
  }
  const CachedObject key{object.bucket, object.key, expected_etag};
  const uint64_t bs = cache->block_size();
  std::unique_ptr<char[]> scratch;  // for blocks the chunk holds only part of
  uint64_t pos = chunk.begin;
  while (pos < chunk.end) {
    if (chunk.abandoned.load(std::memory_order_relaxed)) {
      return CancelledError("readahead of " + Name() + " no longer needed");
    }
    const uint64_t index = pos / bs;
    const uint64_t block_begin = index * bs;
    const uint64_t block_end = std::min(info.size, block_begin + bs);
    const uint64_t upto = std::min(block_end, chunk.end);
    if (cache->Contains(key, index)) {
      char* dst = chunk.data.get() + (pos - chunk.begin);
      bool hit;
      if (block_begin == pos && block_end == upto) {
        hit = cache->Read(key, index, dst, block_end - block_begin);
      } else {
        if (!scratch) scratch = std::make_unique_for_overwrite<char[]>(bs);
        hit = cache->Read(key, index, scratch.get(), block_end - block_begin);
        if (hit) std::memcpy(dst, scratch.get() + (pos - block_begin), upto - pos);
      }
      if (hit) {
        stats.cache_hits.fetch_add(1, std::memory_order_relaxed);
        stats.cache_bytes.fetch_add(upto - pos, std::memory_order_relaxed);
        pos = upto;
        continue;
      }
    }
    // One GET for this block and every following one the cache does not hold.
    stats.cache_misses.fetch_add(1, std::memory_order_relaxed);
    uint64_t get_end = upto;
    while (get_end < chunk.end && !cache->Contains(key, get_end / bs)) {
      stats.cache_misses.fetch_add(1, std::memory_order_relaxed);
      get_end = std::min(chunk.end, get_end + bs);
    }
    TF_RETURN_IF_ERROR(FetchRange(chunk, pos, get_end, expected_etag));
    pos = get_end;
  }
  return OkStatus();
}

Status ObjectReader::State::FetchRange(Chunk& chunk, uint64_t from, uint64_t to,
                                       const std::string& expected_etag) {
  ChunkSink sink(
      chunk, from, to, expected_etag, info.size,
      [this](const std::string& seen) {
        std::lock_guard<std::mutex> lock(mu);
        if (etag.empty()) etag = seen;
        return etag;
      },
      Name());
  stats.gets.fetch_add(1, std::memory_order_relaxed);
  Result<GetResult> result =
      store.Get(GetRequest{object, ByteRange{from, to}, expected_etag}, sink);
  stats.bytes_fetched.fetch_add(sink.received(), std::memory_order_relaxed);
  if (!result.ok()) return result.status();
  if (sink.received() != to - from) {
    return DataLossError("GET " + Name() + " [" + std::to_string(from) + ", " +
                         std::to_string(to) + ") returned " + std::to_string(sink.received()) +
                         " of " + std::to_string(to - from) + " bytes");
  }
  return OkStatus();
}

void ObjectReader::State::CacheLocked(const std::shared_ptr<Chunk>& chunk) {
  DiskCache* cache = options.cache;
  if (cache == nullptr || etag.empty()) return;
  const uint64_t bs = cache->block_size();
  CachedObject key{object.bucket, object.key, etag};
  // Whole blocks only: a block that begins or ends outside the chunk is not all here. Blocks
  // already cached (or being written) are refused by BeginWrite.
  std::vector<uint64_t> blocks;
  for (uint64_t index = (chunk->begin + bs - 1) / bs; index * bs < chunk->end; ++index) {
    const uint64_t block_end = std::min(info.size, index * bs + bs);
    if (block_end > chunk->end) break;
    if (cache->BeginWrite(key, index, block_end - index * bs)) blocks.push_back(index);
  }
  if (blocks.empty()) return;
  const uint64_t size = info.size;
  ReadStats* counters = &stats;
  // Not this reader's task: closing the file neither cancels nor waits for it. The chunk keeps
  // its bytes (and budget) alive until written; the pool, which goes before the budget, runs or
  // cancels it.
  auto task = [cache, counters, chunk, key = std::move(key), blocks, bs, size](bool run) {
    for (uint64_t index : blocks) {
      const uint64_t begin = index * bs;
      const uint64_t length = std::min(size, begin + bs) - begin;
      if (run && cache->Write(key, index, chunk->data.get() + (begin - chunk->begin), length)) {
        counters->cache_writes.fetch_add(1, std::memory_order_relaxed);
      } else if (!run) {
        cache->AbandonWrite(key, index, length);
      }
    }
  };
  if (!pool.Submit(cache, task)) task(false);
}

Result<uint64_t> ObjectReader::State::Step(uint64_t pos, uint64_t end, uint64_t fetch_end,
                                           char* dst, uint64_t* wait_ns) {
  std::unique_lock<std::mutex> lock(mu);
  std::shared_ptr<Chunk> chunk = FindLocked(pos);
  if (chunk != nullptr) {
    ++chunk->pins;
    if (!chunk->finished()) {
      auto start = std::chrono::steady_clock::now();
      changed.wait(lock, [&] { return chunk->finished(); });
      *wait_ns += ElapsedNanos(start);
    }
  } else {
    // Nothing covers pos: fetch it on this thread, widened to whole cache blocks where free. The
    // budget is taken with no lock and no pin held, so this thread holds nothing anyone waits
    // for while it waits.
    const uint64_t want_begin = std::max(BlockDown(pos), PrevEndLocked(pos));
    const uint64_t want_end = std::min(
        BlockUp(std::min(fetch_end, SaturatingAdd(pos, piece_cap))), NextBeginLocked(pos));
    lock.unlock();
    auto start = std::chrono::steady_clock::now();
    budget.Acquire(want_end - want_begin);
    lock.lock();
    if (FindLocked(pos) != nullptr) {  // another read fetched it meanwhile
      budget.Release(want_end - want_begin);
      *wait_ns += ElapsedNanos(start);
      return pos;
    }
    const uint64_t chunk_begin = std::max(want_begin, PrevEndLocked(pos));
    const uint64_t chunk_end = std::min(want_end, NextBeginLocked(pos));
    budget.Release((want_end - want_begin) - (chunk_end - chunk_begin));
    chunk = std::make_shared<Chunk>(chunk_begin, chunk_end, Chunk::Phase::kFetching, false,
                                    budget);
    chunk->pins = 1;
    chunk->demand = true;
    chunks.emplace(chunk_begin, chunk);
    const std::string expected = etag;
    lock.unlock();
    Status status = Fetch(*chunk, expected);
    lock.lock();
    const bool fetched = status.ok();
    FinishLocked(*chunk, std::move(status));
    if (fetched) CacheLocked(chunk);
    *wait_ns += ElapsedNanos(start);
  }

  // Finished: the pin (which only keeps a GET from being cancelled) is no longer needed, and
  // our reference keeps the bytes alive even if another read drops the chunk from the map.
  --chunk->pins;
  if (chunk->phase == Chunk::Phase::kFailed) {
    // Delivered once; a later read of these bytes asks the store again.
    EraseLocked(*chunk);
    return chunk->status;
  }
  lock.unlock();
  const uint64_t n = std::min(chunk->end, end) - pos;
  std::memcpy(dst, chunk->data.get() + (pos - chunk->begin), n);
  lock.lock();
  if (chunk->demand) {
    // Bytes taken with Acquire stay cached only while the total leaves the reserve free.
    chunk->demand = false;
    if (!budget.WithinPrefetchLimit()) EraseLocked(*chunk);
  }
  return pos + n;
}

Result<size_t> ObjectReader::State::Read(uint64_t offset, char* out, size_t size,
                                         uint64_t* wait_ns) {
  if (size == 0 || offset >= info.size) return size_t{0};
  const uint64_t end = offset + std::min<uint64_t>(size, info.size - offset);
  uint64_t fetch_end;
  {
    std::lock_guard<std::mutex> lock(mu);
    fetch_end = PlanLocked(offset, end);
  }
  for (uint64_t pos = offset; pos < end;) {
    TF_ASSIGN_OR_RETURN(pos, Step(pos, end, fetch_end, out + (pos - offset), wait_ns));
  }
  return static_cast<size_t>(end - offset);
}

ObjectReader::ObjectReader(ObjectStore& store, ObjectRef object, ObjectInfo info, FetchPool& pool,
                           MemoryBudget& budget, ReadStats& stats, ReaderOptions options) {
  options.part_size = std::max<uint64_t>(options.part_size, 1);
  options.max_window = std::max(options.max_window, options.initial_window);
  state_ = std::make_shared<State>(store, std::move(object), std::move(info), pool, budget, stats,
                                   options);
}

ObjectReader::~ObjectReader() {
  State& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.closing = true;
    // No read runs now, so nothing is pinned: every GET in flight can stop early.
    for (auto it = s.chunks.begin(); it != s.chunks.end();) it = s.DropLocked(it);
  }
  s.pool.CancelQueued(&s);
  std::unique_lock<std::mutex> lock(s.mu);
  s.changed.wait(lock, [&] { return s.tasks == 0; });
}

uint64_t ObjectReader::window() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->window;
}

Result<size_t> ObjectReader::Read(uint64_t offset, char* out, size_t size) {
  const auto start = std::chrono::steady_clock::now();
  uint64_t wait_ns = 0;
  Result<size_t> result = state_->Read(offset, out, size, &wait_ns);
  ReadStats& stats = state_->stats;
  stats.reads.fetch_add(1, std::memory_order_relaxed);
  if (result.ok()) stats.bytes_served.fetch_add(*result, std::memory_order_relaxed);
  stats.wait_ns.fetch_add(wait_ns, std::memory_order_relaxed);
  stats.RecordLatency(ElapsedNanos(start) / 1000);
  return result;
}

}  // namespace trainfeed
