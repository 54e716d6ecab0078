// Resumable Pipe streaming: where a channel's reader got to, as a token a restarted `trainfeed
// pipe --resume TOKEN` starts from, so a restarted job does not re-read what it consumed.
//
// A point is (epoch, position in that epoch's order, byte offset within that item) plus a check of
// the item there (CRC-32C of its name and ETag): resuming against a changed dataset fails instead
// of skipping the wrong bytes. At the start of an item not listed yet, or at the epoch's end, the
// check is of the item before. Token: "e<epoch>.p<position>.b<offset>.<8 hex digits>".
//
// Consumed means given to the reader and read by it: what the writer wrote minus what still sits
// in the pipe. Bytes the reader took but had not yet used are the reader's to keep; bytes left in
// the pipe are streamed again. With RecordIO or Gzip the stream's bytes are not the object's, so
// a point is always an item boundary (offset 0): the first item not wholly consumed.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "modes/pipe/pipe_items.h"
#include "modes/pipe/prefetcher.h"

namespace trainfeed {

struct ResumePoint {
  uint64_t epoch = 0;
  uint64_t position = 0;  // in the epoch's order (this host's share)
  uint64_t offset = 0;    // bytes of that item already consumed
  uint32_t check = 0;     // ItemCheck of the item at `position` (see above); 0 at an epoch's start
};

std::string FormatResumeToken(const ResumePoint& point);
// InvalidArgument naming the token when it is not one FormatResumeToken writes.
Result<ResumePoint> ParseResumeToken(std::string_view token);

// CRC-32C of the item's name and ETag (of a text item, its text).
uint32_t ItemCheck(const PipeItems& items, uint64_t item);

// The writer's record of an epoch: which stream bytes came from which item, for as long as they
// may still sit in the pipe.
class ConsumedTracker {
 public:
  // `exact`: stream bytes are the items' bytes (no RecordIO, no Gzip).
  explicit ConsumedTracker(bool exact) : exact_(exact) {}
  // A new epoch starts at `position`, `offset` (0, 0 unless resumed), at stream byte 0.
  void StartEpoch(uint64_t epoch, uint64_t position, uint64_t offset);
  // The writer is about to write a piece of the item at `position`, starting `item_offset` bytes
  // into it (`size` of its bytes; `last`: the item's end), at byte `stream_begin` of the epoch's
  // stream. A piece may be cut short by a stop: its end is known only in exact streams (begin +
  // size) or once the next piece begins.
  void Writing(uint64_t position, uint64_t item_offset, uint64_t size, bool last,
               uint64_t stream_begin);
  // The last piece was written whole: the stream ends at `stream_end`.
  void Finished(uint64_t stream_end);
  // The point after `consumed` bytes of the current epoch's stream (the check is left 0).
  // Records before it are dropped: call with non-decreasing values.
  ResumePoint At(uint64_t consumed);

 private:
  struct Span {
    uint64_t stream_begin;
    std::optional<uint64_t> stream_end;  // unknown for a framed piece still being written
    uint64_t position, item_offset;
    bool last;
  };
  bool exact_;
  uint64_t epoch_ = 0;
  ResumePoint floor_;  // the point at the start of the oldest span kept
  std::deque<Span> spans_;
};

// One epoch's order, kept between calls of ItemAtPosition.
struct EpochOrderCache {
  std::optional<uint64_t> epoch;
  std::vector<uint64_t> order;
};

// The item index at `position` of `epoch`'s order for this host, if the epoch has one there.
// A shuffled (or multi-item-unit) order is computed whole, once per epoch with a cache.
// REQUIRES for those: items.listing_done().
std::optional<uint64_t> ItemAtPosition(const PipeItems& items, const PrefetchOptions& prefetch,
                                       uint64_t epoch, uint64_t position,
                                       EpochOrderCache* cache = nullptr);

// Keeps a channel's state file up to date: the token of the consumed point, written (atomically,
// by rename) at each epoch's start and end, at most every `interval` while streaming, and when the
// channel stops.
class ResumeRecorder {
 public:
  ResumeRecorder(const PipeItems& items, const PrefetchOptions& prefetch, bool exact,
                 std::string path, std::chrono::milliseconds interval);
  // A reader opened `epoch`'s FIFO, which starts at (position, offset).
  Status StartEpoch(uint64_t epoch, uint64_t position, uint64_t offset);
  // A piece is about to go into `fifo`, at byte `stream_begin` of the epoch's stream.
  Status Writing(const Piece& piece, uint64_t stream_begin, int fifo);
  enum class EpochState {
    kStreaming,    // stopped or failed mid-epoch
    kWritten,      // wholly written: once all is read, the point is the next epoch's start
    kReaderEnded,  // the reader closed it early, so the epoch is over for it
  };
  // Saves the point now: what the reader took of the `written` bytes of the epoch's stream (the
  // rest is still in `fifo`).
  Status Save(int fifo, uint64_t written, EpochState state);

 private:
  Status Write(ResumePoint point);

  const PipeItems& items_;
  const PrefetchOptions& prefetch_;
  std::string path_;
  std::chrono::milliseconds interval_;
  ConsumedTracker tracker_;
  uint64_t epoch_ = 0;
  std::chrono::steady_clock::time_point last_save_{};
  EpochOrderCache orders_;
};

}  // namespace trainfeed
