#include "modes/pipe/resume_point.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>

#include "modes/fastfile/disk_cache.h"  // Crc32c

namespace trainfeed {

std::string FormatResumeToken(const ResumePoint& p) {
  char token[96];
  std::snprintf(token, sizeof(token), "e%llu.p%llu.b%llu.%08x",
                static_cast<unsigned long long>(p.epoch),
                static_cast<unsigned long long>(p.position),
                static_cast<unsigned long long>(p.offset), p.check);
  return token;
}

Result<ResumePoint> ParseResumeToken(std::string_view token) {
  auto bad = [&] {
    return InvalidArgumentError("resume token '" + std::string(token) +
                                "' is not e<epoch>.p<position>.b<offset>.<check>, as the state "
                                "file holds it");
  };
  ResumePoint p;
  const char* at = token.data();
  const char* end = token.data() + token.size();
  for (auto [tag, field] : {std::pair{'e', &p.epoch}, {'p', &p.position}, {'b', &p.offset}}) {
    if (at == end || *at != tag) return bad();
    auto [next, ec] = std::from_chars(at + 1, end, *field);
    if (ec != std::errc() || next == end || *next != '.') return bad();
    at = next + 1;
  }
  auto [next, ec] = std::from_chars(at, end, p.check, 16);
  if (ec != std::errc() || next != end || end - at != 8) return bad();
  return p;
}

uint32_t ItemCheck(const PipeItems& items, uint64_t index) {
  const PipeItem& item = items.items[index];
  if (item.is_text) return Crc32c(0, item.text.data(), item.text.size());
  std::string name = items.Describe(item) + "\n" + item.etag;
  return Crc32c(0, name.data(), name.size());
}

void ConsumedTracker::StartEpoch(uint64_t epoch, uint64_t position, uint64_t offset) {
  epoch_ = epoch;
  floor_ = {epoch, position, offset, 0};
  spans_.clear();
}

void ConsumedTracker::Writing(uint64_t position, uint64_t item_offset, uint64_t size, bool last,
                              uint64_t stream_begin) {
  if (!spans_.empty() && !spans_.back().stream_end) spans_.back().stream_end = stream_begin;
  std::optional<uint64_t> end;
  if (exact_) end = stream_begin + size;
  spans_.push_back({stream_begin, end, position, item_offset, last});
}

void ConsumedTracker::Finished(uint64_t stream_end) {
  if (!spans_.empty() && !spans_.back().stream_end) spans_.back().stream_end = stream_end;
}

ResumePoint ConsumedTracker::At(uint64_t consumed) {
  while (!spans_.empty() && spans_.front().stream_end && *spans_.front().stream_end <= consumed) {
    const Span& s = spans_.front();
    if (s.last) {
      floor_ = {epoch_, s.position + 1, 0, 0};
    } else if (exact_) {
      floor_ = {epoch_, s.position, s.item_offset + (*s.stream_end - s.stream_begin), 0};
    } else {
      floor_ = {epoch_, s.position, 0, 0};  // framed bytes: only whole items count
    }
    spans_.pop_front();
  }
  if (exact_ && !spans_.empty() && spans_.front().stream_begin < consumed) {
    const Span& s = spans_.front();
    return {epoch_, s.position, s.item_offset + (consumed - s.stream_begin), 0};
  }
  return floor_;
}

std::optional<uint64_t> ItemAtPosition(const PipeItems& items, const PrefetchOptions& prefetch,
                                       uint64_t epoch, uint64_t position, EpochOrderCache* cache) {
  // Listing order of one item per unit: computed from the position, even mid-listing.
  if (!prefetch.seed && items.unit_begin.empty()) {
    const uint64_t index = ListingOrderItem(position, prefetch.shard);
    if (index < items.items.size()) return index;
    return std::nullopt;
  }
  EpochOrderCache local;
  EpochOrderCache& c = cache ? *cache : local;
  if (c.epoch != epoch) {
    c.order = EpochItems(items, prefetch.seed, epoch, prefetch.shard);
    c.epoch = epoch;
  }
  if (position >= c.order.size()) return std::nullopt;
  return c.order[position];
}

ResumeRecorder::ResumeRecorder(const PipeItems& items, const PrefetchOptions& prefetch, bool exact,
                               std::string path, std::chrono::milliseconds interval)
    : items_(items),
      prefetch_(prefetch),
      path_(std::move(path)),
      interval_(interval),
      tracker_(exact) {}

Status ResumeRecorder::StartEpoch(uint64_t epoch, uint64_t position, uint64_t offset) {
  epoch_ = epoch;
  tracker_.StartEpoch(epoch, position, offset);
  return Write({epoch, position, offset, 0});
}

Status ResumeRecorder::Writing(const Piece& piece, uint64_t stream_begin, int fifo) {
  tracker_.Writing(piece.position, piece.offset, piece.size, piece.last, stream_begin);
  if (std::chrono::steady_clock::now() - last_save_ < interval_) return OkStatus();
  return Save(fifo, stream_begin, EpochState::kStreaming);
}

Status ResumeRecorder::Save(int fifo, uint64_t written, EpochState state) {
  int in_pipe = 0;
  // Bytes written but not yet read: the reader never saw them, so they count as not consumed.
  if (::ioctl(fifo, FIONREAD, &in_pipe) != 0) in_pipe = 0;
  const uint64_t unread = std::min<uint64_t>(static_cast<uint64_t>(std::max(in_pipe, 0)), written);
  if (state == EpochState::kWritten) tracker_.Finished(written);
  ResumePoint point = tracker_.At(written - unread);
  if ((state == EpochState::kWritten && unread == 0) || state == EpochState::kReaderEnded) {
    point = {epoch_ + 1, 0, 0, 0};
  }
  return Write(point);
}

Status ResumeRecorder::Write(ResumePoint point) {
  last_save_ = std::chrono::steady_clock::now();
  std::string where = "start of the epoch";
  if (point.position > 0 || point.offset > 0) {
    // The check pins the point to the item there; at an epoch's end there is none.
    std::optional<uint64_t> item =
        ItemAtPosition(items_, prefetch_, point.epoch, point.position, &orders_);
    if (item) {
      where = items_.Describe(*item);
    } else if (point.offset == 0) {
      // The point is just past the last item consumed: the epoch's end, or an item the
      // listing has not reached yet. The item before it pins the point instead.
      item = ItemAtPosition(items_, prefetch_, point.epoch, point.position - 1, &orders_);
      if (item) where = "after " + items_.Describe(*item);
    }
    if (item) point.check = ItemCheck(items_, *item);
  }
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << FormatResumeToken(point) << "\n# epoch " << point.epoch << ", position "
        << point.position << " (" << where << "), byte " << point.offset
        << "; resume with: trainfeed pipe ... --resume " << FormatResumeToken(point) << "\n";
    out.close();
    if (!out) return ErrnoToStatus(errno, "write the resume state '" + tmp + "'");
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    return ErrnoToStatus(errno, "rename the resume state to '" + path_ + "'");
  }
  return OkStatus();
}

}  // namespace trainfeed
