// dmlc / MXNet RecordIO framing (contract §9): what Pipe mode's RecordWrapperType=RecordIO and
// `trainfeed pack` write, and a strict reader for tests and verification.
//
// A record is one or more parts, each `magic | lrec | payload slice | zero padding to 4 bytes`,
// with little-endian 32-bit headers and lrec = (cflag << 29) | length. A payload that holds the
// magic at a 4-byte-aligned offset is split there (the 4 bytes are dropped, and a reader puts them
// back): parts flagged 1, 2.., 3. Otherwise the record is one part with cflag 0, which is what
// every reader in the wild understands (§9.3), so splitting happens only when it must.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "store/object_store.h"

namespace trainfeed {

inline constexpr uint32_t kRecordIOMagic = 0xCED7230A;
// The 29-bit length field of one part.
inline constexpr uint64_t kMaxRecordIOPartBytes = (1ull << 29) - 1;
// magic + lrec.
inline constexpr uint64_t kRecordIOHeaderBytes = 8;

// Writes `payload` as one logical record to `out` (header(s), payload slices, zero padding)
// without copying the payload. cflag 0 unless an aligned magic occurs (then parts 1, 2.., 3 per
// §9.2). InvalidArgument (naming `what`) when a part would exceed kMaxRecordIOPartBytes; that is
// checked before the first byte goes out, so a refused record leaves `out` untouched.
// Errors of `out` are returned as they are.
Status WriteRecordIO(std::string_view payload, ByteSink& out, std::string_view what = "");

// Bytes WriteRecordIO would emit for `payload` (whether or not a part is too large):
// payload + 8 per part - 4 per split + padding of the last part.
uint64_t RecordIOFramedSize(std::string_view payload);

// The limit check WriteRecordIO applies to each part, on a length alone (so it can be tested
// without a 512 MiB buffer). InvalidArgument "WHAT: record part of N bytes exceeds RecordIO's
// limit of 536870911 bytes" when part_bytes > kMaxRecordIOPartBytes.
Status CheckRecordIOPartSize(uint64_t part_bytes, std::string_view what);

// Reads records back with dmlc semantics: parts are concatenated with the magic re-inserted
// between them. Stricter than dmlc (it is for tests, `pack --verify` and tools): the cflag
// sequence must be 0 or 1,2..,3, padding must be zero, and the data must end on a record
// boundary. `data` must outlive the reader. Not thread-safe.
class RecordIOReader {
 public:
  explicit RecordIOReader(std::string_view data) : data_(data) {}

  // The next record's payload; std::nullopt at the end of the data. InvalidArgument naming the
  // byte offset of the offending header or padding on bad framing; after an error the reader
  // stays at the start of the bad record.
  Result<std::optional<std::string>> Next();

  // Bytes consumed so far: the offset of the next record's first header.
  uint64_t offset() const { return offset_; }

 private:
  std::string_view data_;
  uint64_t offset_ = 0;
};

}  // namespace trainfeed
