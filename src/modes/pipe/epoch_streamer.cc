#include "modes/pipe/epoch_streamer.h"

#include <cstdio>

#include "common/units.h"
#include "dataset/recordio.h"
#include "modes/pipe/gunzip_sink.h"

namespace trainfeed {

namespace {

using Steady = std::chrono::steady_clock;

double Since(Steady::time_point t) {
  return std::chrono::duration<double>(Steady::now() - t).count();
}

// Notes when the first byte was handed to the reader: before the write, since a large write
// returns only once the reader has taken most of it.
class FirstByteSink final : public ByteSink {
 public:
  explicit FirstByteSink(ByteSink& out) : out_(out) {}
  Status Append(const char* data, size_t size) override {
    if (size > 0 && !first_byte) first_byte = Steady::now();
    return out_.Append(data, size);
  }
  std::optional<Steady::time_point> first_byte;

 private:
  ByteSink& out_;
};

// An inflated payload held whole for RecordIO, refusing more than `max` bytes.
class PayloadSink final : public ByteSink {
 public:
  PayloadSink(uint64_t max, std::string what) : max_(max), what_(std::move(what)) {}
  Status Append(const char* data, size_t size) override {
    if (text.size() + size > max_) {
      return InvalidArgumentError(what_ + ": inflates to more than " + std::to_string(max_) +
                                  " bytes, which RecordIO wrapping must hold whole (raise "
                                  "--buffer-size)");
    }
    text.append(data, size);
    return OkStatus();
  }
  std::string text;

 private:
  uint64_t max_;
  std::string what_;
};

}  // namespace

std::string DescribeEpoch(const EpochStats& s) {
  char line[512];
  double mib_s = s.seconds > 0 ? static_cast<double>(s.bytes) / (1 << 20) / s.seconds : 0;
  std::string first = s.first_byte_seconds
                          ? std::to_string(static_cast<int64_t>(*s.first_byte_seconds * 1000)) + " ms"
                          : "never";
  // Below 10 ms nobody waited to speak of: not "starved".
  const char* verdict = s.starved_seconds > s.backpressure_seconds && s.starved_seconds >= 0.01
                            ? "training was starved of input"
                            : "input waited on training";
  std::snprintf(line, sizeof(line),
                "epoch %llu: %llu objects, %s in %s (%.1f MiB/s)%s; first byte %s after open; "
                "waited for data %s, for the reader %s: %s",
                static_cast<unsigned long long>(s.epoch), static_cast<unsigned long long>(s.items),
                FormatBytes(static_cast<double>(s.bytes)).c_str(), FormatDuration(s.seconds).c_str(),
                mib_s, s.closed_early ? " (the reader closed it early)" : "", first.c_str(),
                FormatDuration(s.starved_seconds).c_str(),
                FormatDuration(s.backpressure_seconds).c_str(), verdict);
  return line;
}

EpochStreamer::EpochStreamer(const PipeItems& items, StreamOptions options, PrefetchOptions prefetch)
    : items_(items), options_(options), prefetcher_(items, [&] {
        prefetch.whole_items = options.recordio && !options.gzip;
        return prefetch;
      }()) {}

Status EpochStreamer::WritePiece(const Piece& piece, ByteSink& out) {
  const PipeItem& item = items_.items[piece.item];
  if (item.is_text || !options_.gzip) {
    if (!options_.recordio) return out.Append(piece.data, piece.size);
    return WriteRecordIO(piece.bytes(), out, items_.Describe(item));
  }
  // Gzip: each object inflated on its own, pieces fed in order; RecordIO frames the whole result.
  if (piece.offset == 0) {
    gunzip_.reset();
    payload_.reset();
    if (options_.recordio) {
      payload_ = std::make_unique<PayloadSink>(options_.max_inflated_bytes, items_.Describe(item));
    }
    gunzip_ = std::make_unique<GunzipSink>(options_.recordio ? *payload_ : out, items_.Describe(item));
  }
  auto& gunzip = static_cast<GunzipSink&>(*gunzip_);
  TF_RETURN_IF_ERROR(gunzip.Append(piece.data, piece.size));
  if (!piece.last) return OkStatus();
  TF_RETURN_IF_ERROR(gunzip.Finish());
  Status s;
  if (options_.recordio) {
    s = WriteRecordIO(static_cast<PayloadSink&>(*payload_).text, out, items_.Describe(item));
  }
  gunzip_.reset();
  payload_.reset();
  return s;
}

Result<EpochStats> EpochStreamer::StreamEpoch(uint64_t epoch, PipeWriter& out) {
  EpochStats stats;
  stats.epoch = epoch;
  const auto start = Steady::now();
  const double blocked_before = out.blocked_seconds();
  const uint64_t bytes_before = out.bytes_written();
  FirstByteSink counted(out);
  gunzip_.reset();
  payload_.reset();
  for (;;) {
    auto wait = Steady::now();
    Result<Piece> next = prefetcher_.Next();
    stats.starved_seconds += Since(wait);
    if (!next.ok()) return next.status();
    Piece& piece = *next;
    if (piece.end_of_epoch) {
      if (piece.epoch != epoch) {
        return InternalError("pipe stream at epoch " + std::to_string(piece.epoch) +
                             ", expected " + std::to_string(epoch));
      }
      break;
    }
    if (piece.epoch != epoch || stats.closed_early) {  // left over from a skipped epoch
      prefetcher_.Release(piece);
      continue;
    }
    if (!piece.status.ok()) {
      prefetcher_.Release(piece);
      return piece.status;
    }
    if (on_writing_) on_writing_(piece, out.bytes_written() - bytes_before);
    Status s = WritePiece(piece, counted);
    prefetcher_.Release(piece);
    if (!s.ok()) {
      if (!out.reader_closed()) return s;
      stats.closed_early = true;
      gunzip_.reset();
      payload_.reset();
      prefetcher_.SkipRestOfEpoch(epoch);
      continue;
    }
    if (piece.last) ++stats.items;
  }
  stats.seconds = Since(start);
  stats.bytes = out.bytes_written() - bytes_before;
  stats.backpressure_seconds = out.blocked_seconds() - blocked_before;
  if (counted.first_byte) {
    stats.first_byte_seconds = std::chrono::duration<double>(*counted.first_byte - start).count();
  }
  return stats;
}

}  // namespace trainfeed
