#include "dataset/recordio.h"

#include <algorithm>
#include <cstdio>

namespace trainfeed {

namespace {

// The magic as it appears in the byte stream (little-endian).
constexpr char kMagicBytes[4] = {'\x0A', '\x23', '\xD7', '\xCE'};
constexpr std::string_view kMagic(kMagicBytes, 4);
constexpr char kZeros[4] = {};

uint32_t Padding(uint64_t length) { return static_cast<uint32_t>((4 - length % 4) % 4); }

// Calls fn(offset) for every offset that is a multiple of 4 where the payload holds the magic, in
// ascending order. Searching for the first byte (memchr speed) beats testing every aligned word.
template <typename Fn>
void ForEachAlignedMagic(std::string_view payload, Fn&& fn) {
  size_t pos = 0;
  while ((pos = payload.find(kMagic, pos)) != std::string_view::npos) {
    if (pos % 4 == 0) fn(pos);
    // The magic cannot overlap itself (its last byte differs from its first), so the next
    // occurrence starts at least 4 bytes later; an unaligned hit may still be followed closely.
    pos += pos % 4 == 0 ? 4 : 1;
  }
}

void EncodeLittleEndian(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

uint32_t DecodeLittleEndian(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}

Status WritePart(std::string_view slice, uint32_t cflag, bool pad, ByteSink& out) {
  char header[kRecordIOHeaderBytes];
  EncodeLittleEndian(kRecordIOMagic, header);
  EncodeLittleEndian((cflag << 29) | static_cast<uint32_t>(slice.size()), header + 4);
  TF_RETURN_IF_ERROR(out.Append(header, sizeof(header)));
  if (!slice.empty()) TF_RETURN_IF_ERROR(out.Append(slice.data(), slice.size()));
  // Only the last part can end unaligned: every other part ends where an aligned magic starts.
  if (pad && Padding(slice.size()) > 0) TF_RETURN_IF_ERROR(out.Append(kZeros, Padding(slice.size())));
  return OkStatus();
}

std::string Where(std::string_view what) {
  return what.empty() ? std::string("RecordIO") : std::string(what);
}

}  // namespace

Status CheckRecordIOPartSize(uint64_t part_bytes, std::string_view what) {
  if (part_bytes <= kMaxRecordIOPartBytes) return OkStatus();
  return InvalidArgumentError(Where(what) + ": record part of " + std::to_string(part_bytes) +
                              " bytes exceeds RecordIO's limit of " +
                              std::to_string(kMaxRecordIOPartBytes) + " bytes");
}

Status WriteRecordIO(std::string_view payload, ByteSink& out, std::string_view what) {
  // A part can only be too long if the whole payload is; then check every part before writing,
  // so a refused record leaves nothing half-written behind.
  if (payload.size() > kMaxRecordIOPartBytes) {
    size_t part_start = 0;
    uint64_t longest = 0;
    ForEachAlignedMagic(payload, [&](size_t pos) {
      longest = std::max<uint64_t>(longest, pos - part_start);
      part_start = pos + 4;
    });
    longest = std::max<uint64_t>(longest, payload.size() - part_start);
    TF_RETURN_IF_ERROR(CheckRecordIOPartSize(longest, what));
  }

  size_t part_start = 0;
  Status status;
  ForEachAlignedMagic(payload, [&](size_t pos) {
    if (!status.ok()) return;
    status = WritePart(payload.substr(part_start, pos - part_start), part_start == 0 ? 1 : 2,
                       /*pad=*/false, out);
    part_start = pos + 4;
  });
  TF_RETURN_IF_ERROR(status);
  return WritePart(payload.substr(part_start), part_start == 0 ? 0 : 3, /*pad=*/true, out);
}

uint64_t RecordIOFramedSize(std::string_view payload) {
  uint64_t splits = 0;
  ForEachAlignedMagic(payload, [&](size_t) { ++splits; });
  return payload.size() + kRecordIOHeaderBytes + 4 * splits + Padding(payload.size());
}

Result<std::optional<std::string>> RecordIOReader::Next() {
  if (offset_ == data_.size()) return std::optional<std::string>();
  auto bad = [&](uint64_t at, const std::string& why) {
    return InvalidArgumentError("RecordIO byte offset " + std::to_string(at) + ": " + why);
  };
  std::string record;
  uint64_t pos = offset_;
  for (bool first = true;; first = false) {
    if (data_.size() - pos < kRecordIOHeaderBytes) {
      return bad(pos, "truncated header (" + std::to_string(data_.size() - pos) + " of 8 bytes)");
    }
    uint32_t magic = DecodeLittleEndian(data_.data() + pos);
    if (magic != kRecordIOMagic) {
      char hex[16];
      std::snprintf(hex, sizeof(hex), "0x%08X", magic);
      return bad(pos, std::string("bad magic ") + hex);
    }
    uint32_t lrec = DecodeLittleEndian(data_.data() + pos + 4);
    uint32_t cflag = lrec >> 29;
    uint64_t length = lrec & kMaxRecordIOPartBytes;
    bool valid_flag = first ? (cflag == 0 || cflag == 1) : (cflag == 2 || cflag == 3);
    if (!valid_flag) {
      return bad(pos, "unexpected cflag " + std::to_string(cflag) +
                          (first ? " at the start of a record" : " inside a multipart record"));
    }
    uint64_t body = pos + kRecordIOHeaderBytes;
    uint64_t padded = length + Padding(length);
    if (data_.size() - body < padded) {
      return bad(pos, "truncated part: " + std::to_string(length) + " bytes + padding announced, " +
                          std::to_string(data_.size() - body) + " left");
    }
    // A multipart record is split only at aligned magics, so only its last part may need padding.
    if (cflag == 1 || cflag == 2) {
      if (Padding(length) != 0) return bad(pos, "unaligned length of a non-final part");
    }
    for (uint64_t i = body + length; i < body + padded; ++i) {
      if (data_[i] != '\0') return bad(i, "non-zero padding byte");
    }
    record.append(data_.data() + body, length);
    pos = body + padded;
    if (cflag == 0 || cflag == 3) break;
    record.append(kMagic);
  }
  offset_ = pos;
  return std::optional<std::string>(std::move(record));
}

}  // namespace trainfeed
