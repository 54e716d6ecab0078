// One Pipe-mode epoch's bytes: pieces from the Prefetcher, in order, turned into the stream the
// reader sees (contract §3.4, §9, §10):
//   RecordWrapperType=None:     the items' bytes back to back;
//   RecordWrapperType=RecordIO: each item as one dmlc RecordIO record;
//   CompressionType=Gzip:       each object inflated first (then wrapped); text items as they are.
// Also the per-epoch accounting: how long the writer waited for data (the reader was starved) and
// for the reader (back-pressure), and when the first byte went out.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "modes/pipe/pipe_items.h"
#include "modes/pipe/prefetcher.h"

namespace trainfeed {

// Where an epoch goes: a FIFO in production, memory in tests.
class PipeWriter : public ByteSink {
 public:
  // True once the reader went away (EPIPE): the epoch ended early; not an error.
  virtual bool reader_closed() const = 0;
  // Seconds spent waiting for the reader to make room.
  virtual double blocked_seconds() const = 0;
  // Bytes the reader was given (also those of a write the reader cut short).
  virtual uint64_t bytes_written() const = 0;
};

struct StreamOptions {
  bool gzip = false;
  bool recordio = false;
  // Gzip + RecordIO: an inflated payload is held whole to be framed; larger ones fail, naming
  // the object. The channel splits its buffer between this and the prefetch budget.
  uint64_t max_inflated_bytes = 128ull << 20;
};

struct EpochStats {
  uint64_t epoch = 0;
  uint64_t items = 0;  // objects and values streamed whole
  uint64_t bytes = 0;  // written to the reader
  double seconds = 0;
  double starved_seconds = 0;       // waiting for data from the store
  double backpressure_seconds = 0;  // waiting for the reader
  std::optional<double> first_byte_seconds;  // from the start of StreamEpoch
  bool closed_early = false;                 // the reader closed before the end
};

// "epoch 0: 120 objects, 1.2 GiB in 3.4s (360 MiB/s); first byte 2 ms after open; waited for data
// 0.1s, for the reader 2.9s: input waited on training".
std::string DescribeEpoch(const EpochStats& stats);

class EpochStreamer {
 public:
  // `items` must outlive the streamer. Prefetching starts in Start().
  EpochStreamer(const PipeItems& items, StreamOptions options, PrefetchOptions prefetch);
  void Start() { prefetcher_.Start(); }
  // Streams the next epoch of the stream, which must be `epoch`, into `out`. OK at its end or when
  // the reader closed early (stats.closed_early; the rest of the epoch is dropped). Otherwise the
  // first error, naming the object (a failed GET, corrupt gzip, a RecordIO payload too large),
  // with nothing more written; the stream cannot continue after that.
  Result<EpochStats> StreamEpoch(uint64_t epoch, PipeWriter& out);
  void Stop() { prefetcher_.Stop(); }
  // Called before each piece is written, with the epoch's stream length so far (for resuming).
  void OnWriting(std::function<void(const Piece& piece, uint64_t stream_begin)> callback) {
    on_writing_ = std::move(callback);
  }
  uint64_t peak_prefetched_bytes() const { return prefetcher_.peak_held_bytes(); }

 private:
  Status WritePiece(const Piece& piece, ByteSink& out);

  const PipeItems& items_;
  StreamOptions options_;
  Prefetcher prefetcher_;
  std::unique_ptr<ByteSink> gunzip_;   // the object being inflated
  std::unique_ptr<ByteSink> payload_;  // its inflated bytes, when RecordIO needs them whole
  std::function<void(const Piece&, uint64_t)> on_writing_;
};

}  // namespace trainfeed
