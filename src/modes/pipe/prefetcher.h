// Pipe mode's prefetch pipeline: many GETs in flight, pieces delivered strictly in stream order,
// and all fetched-but-unwritten bytes within one byte budget, whatever the dataset's size.
//
// The stream is epoch after epoch: each epoch's items in EpochItems order, followed by an
// end-of-epoch marker. A planner (run under the lock by whichever worker is free) walks that
// stream and cuts it into pieces: small objects whole, large ones in ranged parts of part_bytes
// (or each item whole, for RecordIO). A piece's bytes are reserved from the budget when it is
// planned, in stream order, so the next piece the consumer needs can always be planned once the
// consumer releases what it holds: no deadlock, and memory stays at the budget. Pieces are fetched
// by `concurrency` workers, each part of a large item into its place in the item's buffer.
//
// Every piece's bytes live in one ring of budget_bytes, allocated once. Pieces are reserved and
// released in stream order, so a ring is all the allocator needed; and its pages are faulted in
// once. A fresh buffer per 8 MiB part cost a page fault and a page clear per 4 KiB, about a third
// of the process's CPU at 500 MiB/s, and freed arenas held RSS well above the budget.
// Because the planner runs ahead across the epoch boundary, the next epoch's first items are
// already fetched while the reader finishes the current one.
//
// Errors travel with the data: a failed GET becomes a piece whose status is set, delivered at its
// position, so the consumer stops exactly there.
//
// Thread-safe: one consumer thread calls Next/Release/SkipRestOfEpoch; Stop from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/status.h"
#include "modes/pipe/pipe_items.h"

namespace trainfeed {

struct PrefetchOptions {
  // Fetched bytes not yet released by the consumer, in flight included. 256 MiB keeps 32 GETs of
  // 8 MiB busy with room to spare for the reader's bursts.
  uint64_t budget_bytes = 256ull << 20;
  // Workers, hence GETs in flight.
  int concurrency = 32;
  // Objects above this are fetched as parallel ranged GETs of this size: the part size the
  // downloader uses, large enough for full speed per connection.
  uint64_t part_bytes = 8ull << 20;
  // Deliver each item as one piece (RecordIO frames a whole payload). An item larger than the
  // budget then fails at its position instead of being fetched.
  bool whole_items = false;
  std::optional<int64_t> seed;  // ShuffleConfig.Seed
  HostShard shard;
  uint64_t first_epoch = 0;
  // Where first_epoch starts: a position in its order and a byte offset into that item (a
  // resumed stream; see resume_point.h). The offset must be 0 with whole_items.
  uint64_t first_position = 0;
  uint64_t first_offset = 0;
  // Epochs first_epoch .. first_epoch + epoch_count - 1; unlimited when unset.
  std::optional<uint64_t> epoch_count;
};

// A contiguous slice of one item's bytes, or an epoch's end marker.
struct Piece {
  uint64_t epoch = 0;
  bool end_of_epoch = false;  // after the epoch's last piece; `position` is its item count
  uint64_t position = 0;      // of the item in the epoch's order
  uint64_t item = 0;          // index into PipeItems::items
  uint64_t offset = 0;        // of `data` within the item
  bool last = false;          // the item's last piece
  char* data = nullptr;  // in the prefetcher's ring: valid until Release()
  uint64_t size = 0;
  Status status;  // a failed fetch: the piece's bytes are not valid and the epoch must end
  uint64_t reserved = 0;  // ring bytes Release() gives back: size, plus any skipped ring tail
  std::string_view bytes() const { return {data, size}; }
};

class Prefetcher {
 public:
  // `items` must outlive the prefetcher.
  Prefetcher(const PipeItems& items, PrefetchOptions options);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Starts the workers; they begin fetching at once.
  void Start();
  // Blocks until the next piece in stream order is complete. Cancelled once Stop() was called;
  // Internal when called again after a limited stream's last end marker.
  Result<Piece> Next();
  // Returns a piece's bytes to the budget. Call once per piece from Next(), after writing it, in
  // the order Next() returned them.
  void Release(const Piece& piece);
  // The reader ended `epoch` early: its remaining pieces are dropped (in-flight GETs aborted) and
  // Next() continues with the epoch's end marker.
  void SkipRestOfEpoch(uint64_t epoch);
  // Aborts in-flight GETs and joins the workers. Idempotent.
  void Stop();

  // Most bytes ever held at once; for tests and the report.
  uint64_t peak_held_bytes() const;

 private:
  struct PieceState;
  struct Task {
    PieceState* piece;
    uint64_t item_offset;  // where in the item this GET starts
    uint64_t size;
  };

  void WorkerLoop();
  // Plans the next piece of the stream if the budget allows. Returns false when nothing could be
  // planned (budget full, stream exhausted, or another worker computing an epoch's order).
  // REQUIRES: mu_ held (it may be released and re-acquired while an epoch's order is computed).
  bool PlanNext(std::unique_lock<std::mutex>& lock);
  void Fetch(const Task& task);
  void Complete(PieceState* piece, Status status);
  // Reserves `size` contiguous ring bytes at the head, or returns nullptr when the budget is
  // full. *reserved is what Release() must give back (a ring tail too short for `size` is
  // skipped and charged to this piece). REQUIRES: mu_ held; size <= budget_bytes.
  char* ReserveRing(uint64_t size, uint64_t* reserved);
  // REQUIRES: mu_ held.
  void ReleaseRing(uint64_t reserved);

  const PipeItems& items_;
  PrefetchOptions options_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // tasks, budget or stop for the workers
  std::condition_variable ready_cv_;  // a piece completed, for the consumer
  // Pieces planned and not yet taken by Next(), in stream order. Guarded by mu_, like every
  // member below.
  std::deque<std::unique_ptr<PieceState>> pieces_;
  std::deque<Task> tasks_;
  std::unique_ptr<char[]> ring_;  // budget_bytes, touched only as pieces fill it
  uint64_t ring_head_ = 0;        // offset of the next reservation
  uint64_t held_ = 0;             // reserved ring bytes, from the oldest unreleased piece on
  uint64_t peak_held_ = 0;
  // The planner's position in the stream.
  uint64_t gen_epoch_ = 0;
  std::vector<uint64_t> gen_order_;
  bool gen_have_order_ = false;
  // The epoch follows a listing still streaming in: positions map to items by ListingOrderItem,
  // and its end is known only once the listing is.
  bool gen_streamed_ = false;
  bool gen_computing_ = false;  // a worker is computing gen_order_ outside the lock
  bool gen_done_ = false;       // a limited stream is fully planned
  uint64_t gen_pos_ = 0;        // position in the epoch's order
  uint64_t gen_offset_ = 0;     // within the item at gen_pos_
  bool gen_first_piece_ = true;  // the next piece is the epoch's first
  bool first_planned_ = false;
  PieceState* solo_ = nullptr;  // the stream's first piece, fetched before anything else
  std::optional<uint64_t> skip_epoch_;  // the reader ended it early: plan nothing more of it
};

}  // namespace trainfeed
