#include "modes/pipe/prefetcher.h"

#include <algorithm>
#include <cstring>

namespace trainfeed {

namespace {

// Pieces planned ahead at most: zero-byte items (empty objects, empty values) cost no budget,
// and without a cap an epoch of them would be planned without end.
constexpr size_t kMaxPiecesAhead = 1 << 16;

// 1 MiB arrives within a few milliseconds on a LAN; 8 MiB takes ~70 ms at 1 Gbit/s.
constexpr uint64_t kFirstPieceBytes = 1 << 20;

// Receives one GET into its place in a piece's buffer. Aborts when the prefetcher stops or the
// piece is dropped, so neither waits for a large transfer to finish.
class SliceSink final : public ByteSink {
 public:
  SliceSink(char* dest, uint64_t capacity, const std::atomic<bool>& stopping,
            const std::atomic<bool>& abandoned)
      : dest_(dest), capacity_(capacity), stopping_(stopping), abandoned_(abandoned) {}
  Status Append(const char* data, size_t size) override {
    if (stopping_.load(std::memory_order_relaxed) || abandoned_.load(std::memory_order_relaxed)) {
      return CancelledError("prefetch stopped");
    }
    if (size > capacity_ - received_) {
      return DataLossError("body longer than the " + std::to_string(capacity_) +
                           " bytes listed");
    }
    std::memcpy(dest_ + received_, data, size);
    received_ += size;
    return OkStatus();
  }
  uint64_t received() const { return received_; }

 private:
  char* dest_;
  uint64_t capacity_;
  uint64_t received_ = 0;
  const std::atomic<bool>& stopping_;
  const std::atomic<bool>& abandoned_;
};

}  // namespace

struct Prefetcher::PieceState {
  Piece piece;
  int tasks_left = 0;
  bool done = false;
  std::atomic<bool> abandoned{false};  // the reader skipped its epoch
};

Prefetcher::Prefetcher(const PipeItems& items, PrefetchOptions options)
    : items_(items), options_(std::move(options)) {
  options_.concurrency = std::max(options_.concurrency, 1);
  options_.budget_bytes = std::max<uint64_t>(options_.budget_bytes, 1);
  // A part must fit in the budget, or it could never be planned.
  options_.part_bytes = std::clamp<uint64_t>(options_.part_bytes, 1, options_.budget_bytes);
  gen_epoch_ = options_.first_epoch;
  // Virtual until written: glibc maps an allocation this large on its own, untouched.
  ring_ = std::make_unique_for_overwrite<char[]>(options_.budget_bytes);
}

Prefetcher::~Prefetcher() { Stop(); }

void Prefetcher::Start() {
  // A listing that streams in wakes workers waiting for its next page. Under mu_, so a planner
  // that just found the page missing is already waiting when the notice comes.
  items_.OnListingProgress([this] {
    std::lock_guard<std::mutex> lock(mu_);
    work_cv_.notify_all();
  });
  for (int i = 0; i < options_.concurrency; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

void Prefetcher::Stop() {
  items_.OnListingProgress({});
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_.store(true);
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

uint64_t Prefetcher::peak_held_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_held_;
}

void Prefetcher::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_.load()) {
    if (!tasks_.empty()) {
      Task task = tasks_.front();
      tasks_.pop_front();
      lock.unlock();
      Fetch(task);
      lock.lock();
      continue;
    }
    if (PlanNext(lock)) continue;
    work_cv_.wait(lock);
  }
}

bool Prefetcher::PlanNext(std::unique_lock<std::mutex>& lock) {
  if (gen_done_ || gen_computing_ || solo_ || pieces_.size() >= kMaxPiecesAhead) return false;
  if (!gen_have_order_) {
    if (options_.epoch_count && gen_epoch_ >= options_.first_epoch + *options_.epoch_count) {
      gen_done_ = true;
      return false;
    }
    const bool resumed = gen_epoch_ == options_.first_epoch;
    gen_pos_ = resumed ? options_.first_position : 0;
    gen_offset_ = resumed ? options_.first_offset : 0;
    gen_first_piece_ = true;
    gen_order_.clear();
    // A failed listing is followed as far as it got, then fails the epoch.
    gen_streamed_ = !items_.listing_done() || !items_.listing_status().ok();
    if (gen_streamed_) {
      // A shuffled order covers the whole list: wait for the listing to end.
      if (options_.seed && !items_.listing_done()) return false;
    } else {
      // A shuffled order of millions of items takes a while: not under the lock.
      gen_computing_ = true;
      uint64_t epoch = gen_epoch_;
      lock.unlock();
      std::vector<uint64_t> order = EpochItems(items_, options_.seed, epoch, options_.shard);
      lock.lock();
      gen_computing_ = false;
      gen_order_ = std::move(order);
    }
    gen_have_order_ = true;
  }
  auto state = std::make_unique<PieceState>();
  Piece& p = state->piece;
  p.epoch = gen_epoch_;
  // The item at gen_pos_ of the epoch's order; none at the epoch's end.
  std::optional<uint64_t> next_item;
  if (skip_epoch_ == gen_epoch_) {
    // The reader ended it early: straight to the end marker.
  } else if (!gen_streamed_) {
    if (gen_pos_ < gen_order_.size()) next_item = gen_order_[gen_pos_];
  } else {
    const bool listed_all = items_.listing_done();  // before size(): then size() is final
    const uint64_t index = ListingOrderItem(gen_pos_, options_.shard);
    if (!options_.seed && index < items_.items.size()) {  // shuffled: only the failure is left
      next_item = index;
    } else if (!listed_all) {
      return false;  // the listing's next page wakes the workers
    } else if (Status listed = items_.listing_status(); !listed.ok()) {
      // Delivered at its position, as a failed GET is; nothing is planned after it.
      p.position = gen_pos_;
      p.last = true;
      p.status = std::move(listed);
      state->done = true;
      gen_done_ = true;
      pieces_.push_back(std::move(state));
      ready_cv_.notify_all();
      return true;
    }
  }
  if (!next_item) {
    p.end_of_epoch = true;
    p.position = gen_pos_;
    state->done = true;
    ++gen_epoch_;
    gen_have_order_ = false;
    gen_order_.clear();
    pieces_.push_back(std::move(state));
    ready_cv_.notify_all();
    return true;
  }
  const uint64_t index = *next_item;
  const PipeItem& item = items_.items[index];
  const uint64_t item_size = item.is_text ? item.text.size() : item.size;
  uint64_t size = options_.whole_items ? item_size
                                       : std::min(options_.part_bytes, item_size - gen_offset_);
  // An epoch's first bytes come from a short GET, so the reader's first byte does not wait for
  // a whole part of a large object.
  if (!options_.whole_items && gen_first_piece_) size = std::min(size, kFirstPieceBytes);
  gen_first_piece_ = false;
  p.position = gen_pos_;
  p.item = index;
  p.offset = gen_offset_;
  p.last = gen_offset_ + size == item_size;
  if (options_.whole_items && size > options_.budget_bytes) {
    // Never fetched: RecordIO needs the payload whole, and it cannot fit.
    p.status = InvalidArgumentError(
        items_.Describe(item) + ": " + std::to_string(size) +
        " bytes do not fit in the pipe buffer of " + std::to_string(options_.budget_bytes) +
        " bytes, and RecordIO wrapping needs each object whole (raise --buffer-size)");
    p.last = true;
    state->done = true;
  } else {
    p.data = ReserveRing(size, &p.reserved);
    if (p.data == nullptr) return false;  // wait for Release
    p.size = size;
    if (item.is_text) {
      std::memcpy(p.data, item.text.data() + gen_offset_, size);
      state->done = true;
    } else if (size == 0) {
      state->done = true;  // an empty object: nothing to GET
    } else {
      for (uint64_t off = 0; off < size; off += options_.part_bytes) {
        tasks_.push_back({state.get(), gen_offset_ + off, std::min(options_.part_bytes, size - off)});
        ++state->tasks_left;
      }
    }
  }
  gen_offset_ += p.status.ok() ? size : item_size - gen_offset_;
  if (gen_offset_ >= item_size) {
    ++gen_pos_;
    gen_offset_ = 0;
  }
  bool done = state->done;
  // The stream's first GET runs alone while short: with 32 large GETs beside it on a busy
  // server and two cores, the reader's first byte took 2-4x as long (60-130 ms against 30).
  if (!first_planned_) {
    first_planned_ = true;
    if (!done && size <= kFirstPieceBytes) solo_ = state.get();
  }
  const int new_tasks = state->tasks_left;
  pieces_.push_back(std::move(state));
  if (done) ready_cv_.notify_all();
  // This worker takes one task; one woken worker per task takes the others or, finding none,
  // plans the next piece, which wakes the next: a chain that ends when the budget is full.
  for (int i = 0; i < new_tasks; ++i) work_cv_.notify_one();
  return true;
}

void Prefetcher::Fetch(const Task& task) {
  PieceState* state = task.piece;
  const PipeItem& item = items_.items[state->piece.item];
  char* dest = state->piece.data + (task.item_offset - state->piece.offset);
  SliceSink sink(dest, task.size, stopping_, state->abandoned);
  GetRequest request;
  request.object = item.object;
  if (task.item_offset != 0 || task.size != item.size) {
    request.range = ByteRange{task.item_offset, task.item_offset + task.size};
  }
  request.if_match = item.etag;
  Status status;
  if (!state->abandoned.load()) {
    Result<GetResult> got = items_.stores[item.store]->Get(request, sink);
    status = got.status();
    if (status.ok() && sink.received() != task.size) {
      status = DataLossError("short body: " + std::to_string(sink.received()) + " of " +
                             std::to_string(task.size) + " bytes");
    }
    if (!status.ok()) {
      std::string what = "GET " + items_.Describe(item);
      if (request.range) {
        what += " bytes " + std::to_string(request.range->begin) + "-" +
                std::to_string(request.range->end - 1);
      }
      // The stores usually name the object already; say it once.
      if (status.message().find(items_.Describe(item)) == std::string::npos) {
        status = status.WithContext(what);
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  Complete(state, std::move(status));
}

void Prefetcher::Complete(PieceState* state, Status status) {
  if (!status.ok() && state->piece.status.ok()) state->piece.status = std::move(status);
  if (--state->tasks_left == 0) {
    state->done = true;
    ready_cv_.notify_all();
    if (state == solo_) {
      solo_ = nullptr;
      work_cv_.notify_all();
    }
  }
}

Result<Piece> Prefetcher::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (stopping_.load()) return CancelledError("prefetch stopped");
    if (!pieces_.empty() && pieces_.front()->done) {
      std::unique_ptr<PieceState> state = std::move(pieces_.front());
      pieces_.pop_front();
      if (pieces_.size() + 1 >= kMaxPiecesAhead) work_cv_.notify_all();
      if (state->abandoned.load()) {
        ReleaseRing(state->piece.reserved);
        work_cv_.notify_all();
        continue;
      }
      return std::move(state->piece);
    }
    if (pieces_.empty() && gen_done_) {
      return InternalError("read past the last epoch of the pipe stream");
    }
    ready_cv_.wait(lock);
  }
}

void Prefetcher::Release(const Piece& piece) {
  if (piece.reserved == 0) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ReleaseRing(piece.reserved);
  }
  // One worker: it plans what now fits, and each plan wakes the next (PlanNext). Waking all 32
  // per piece cost ~30 context switches per small object on two cores.
  work_cv_.notify_one();
}

char* Prefetcher::ReserveRing(uint64_t size, uint64_t* reserved) {
  const uint64_t capacity = options_.budget_bytes;
  // Empty: start over at the ring's start, so any piece up to the budget fits.
  if (held_ == 0) ring_head_ = 0;
  // The piece must be contiguous: a tail too short is skipped.
  const uint64_t skip = ring_head_ + size > capacity ? capacity - ring_head_ : 0;
  if (held_ + skip + size > capacity) return nullptr;
  char* data = ring_.get() + (ring_head_ + skip) % capacity;
  ring_head_ = (ring_head_ + skip + size) % capacity;
  held_ += skip + size;
  peak_held_ = std::max(peak_held_, held_);
  *reserved = skip + size;
  return data;
}

void Prefetcher::ReleaseRing(uint64_t reserved) { held_ -= reserved; }

void Prefetcher::SkipRestOfEpoch(uint64_t epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  skip_epoch_ = epoch;
  // Planned pieces of the epoch sit at the front: everything before them was consumed.
  for (auto& state : pieces_) {
    if (state->piece.epoch != epoch || state->piece.end_of_epoch) break;
    state->abandoned.store(true);
  }
  // Queued GETs of dropped pieces never start.
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    if (it->piece->abandoned.load()) {
      Complete(it->piece, OkStatus());
      it = tasks_.erase(it);
    } else {
      ++it;
    }
  }
  // The planner jumps to the epoch's end marker (PlanNext looks at skip_epoch_).
  if (gen_epoch_ == epoch) gen_offset_ = 0;
  ready_cv_.notify_all();
}

}  // namespace trainfeed
