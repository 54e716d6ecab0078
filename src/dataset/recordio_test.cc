#include "dataset/recordio.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "store/testing/string_sink.h"

namespace trainfeed {
namespace {

const std::string kMagic("\x0A\x23\xD7\xCE", 4);

std::string Frame(std::string_view payload) {
  StringSink sink;
  Status s = WriteRecordIO(payload, sink);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return sink.bytes;
}

std::string Hex(std::string_view bytes) {
  std::string out;
  char buf[4];
  for (unsigned char c : bytes) {
    std::snprintf(buf, sizeof(buf), "%02X ", c);
    out += buf;
  }
  if (!out.empty()) out.pop_back();
  return out;
}

std::vector<std::string> ReadAll(std::string_view data) {
  RecordIOReader reader(data);
  std::vector<std::string> records;
  for (;;) {
    auto next = reader.Next();
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    if (!next.ok() || !next->has_value()) break;
    records.push_back(std::move(**next));
  }
  EXPECT_EQ(reader.offset(), data.size());
  return records;
}

// Counts bytes without keeping them, for the 512 MiB records.
class CountingSink final : public ByteSink {
 public:
  Status Append(const char*, size_t size) override {
    bytes += size;
    ++appends;
    return OkStatus();
  }
  uint64_t bytes = 0;
  int appends = 0;
};

// Contract §9.1: payload "abcde" and the empty payload.
TEST(RecordIO, ContractSingleRecordExample) {
  EXPECT_EQ(Hex(Frame("abcde")), "0A 23 D7 CE 05 00 00 00 61 62 63 64 65 00 00 00");
  EXPECT_EQ(Hex(Frame("")), "0A 23 D7 CE 00 00 00 00");
  EXPECT_EQ(RecordIOFramedSize("abcde"), 16u);
  EXPECT_EQ(RecordIOFramedSize(""), 8u);
}

// Contract §9.2: 41 42 43 44 | magic | 45 46.
TEST(RecordIO, ContractMultipartExample) {
  std::string payload = "ABCD" + kMagic + "EF";
  EXPECT_EQ(Hex(Frame(payload)),
            "0A 23 D7 CE 04 00 00 20 41 42 43 44 "
            "0A 23 D7 CE 02 00 00 60 45 46 00 00");
  EXPECT_EQ(RecordIOFramedSize(payload), 24u);
  EXPECT_EQ(ReadAll(Frame(payload)), std::vector<std::string>{payload});
}

TEST(RecordIO, PaddingForLengthsOneToNine) {
  for (size_t n = 1; n <= 9; ++n) {
    std::string payload(n, 'x');
    std::string framed = Frame(payload);
    size_t pad = (4 - n % 4) % 4;
    ASSERT_EQ(framed.size(), 8 + n + pad) << n;
    EXPECT_EQ(framed.size() % 4, 0u) << n;
    EXPECT_EQ(static_cast<unsigned char>(framed[4]), n) << n;
    EXPECT_EQ(framed.substr(5, 3), std::string(3, '\0')) << n;  // cflag 0, small length
    EXPECT_EQ(framed.substr(8, n), payload) << n;
    EXPECT_EQ(framed.substr(8 + n), std::string(pad, '\0')) << n;
    EXPECT_EQ(RecordIOFramedSize(payload), framed.size()) << n;
    EXPECT_EQ(ReadAll(framed), std::vector<std::string>{payload}) << n;
  }
}

TEST(RecordIO, MagicAtOffsetZero) {
  std::string payload = kMagic + "xyz";
  EXPECT_EQ(Hex(Frame(payload)),
            "0A 23 D7 CE 00 00 00 20 "                // cflag 1, empty first part
            "0A 23 D7 CE 03 00 00 60 78 79 7A 00");  // cflag 3, "xyz" + 1 pad byte
  EXPECT_EQ(RecordIOFramedSize(payload), 20u);
  EXPECT_EQ(ReadAll(Frame(payload)), std::vector<std::string>{payload});
}

TEST(RecordIO, MagicAtTheVeryEnd) {
  std::string payload = "ABCD" + kMagic;
  EXPECT_EQ(Hex(Frame(payload)),
            "0A 23 D7 CE 04 00 00 20 41 42 43 44 "
            "0A 23 D7 CE 00 00 00 60");  // empty last part
  EXPECT_EQ(RecordIOFramedSize(payload), 20u);
  EXPECT_EQ(ReadAll(Frame(payload)), std::vector<std::string>{payload});

  EXPECT_EQ(Hex(Frame(kMagic)), "0A 23 D7 CE 00 00 00 20 0A 23 D7 CE 00 00 00 60");
  EXPECT_EQ(ReadAll(Frame(kMagic)), std::vector<std::string>{kMagic});
}

TEST(RecordIO, TwoAdjacentMagics) {
  std::string payload = "ABCD" + kMagic + kMagic + "E";
  EXPECT_EQ(Hex(Frame(payload)),
            "0A 23 D7 CE 04 00 00 20 41 42 43 44 "  // cflag 1
            "0A 23 D7 CE 00 00 00 40 "              // cflag 2, empty middle part
            "0A 23 D7 CE 01 00 00 60 45 00 00 00");  // cflag 3
  EXPECT_EQ(RecordIOFramedSize(payload), 32u);
  EXPECT_EQ(ReadAll(Frame(payload)), std::vector<std::string>{payload});
}

TEST(RecordIO, UnalignedMagicIsNotSplit) {
  for (size_t shift = 1; shift <= 3; ++shift) {
    std::string payload = std::string(shift, 'a') + kMagic + "tail";
    std::string framed = Frame(payload);
    // One cflag-0 part holding everything.
    EXPECT_EQ(static_cast<unsigned char>(framed[4]), payload.size()) << shift;
    EXPECT_EQ(framed.substr(5, 3), std::string(3, '\0')) << shift;
    EXPECT_EQ(framed.size(), RecordIOFramedSize(payload)) << shift;
    EXPECT_EQ(framed.substr(8, payload.size()), payload) << shift;
    EXPECT_EQ(ReadAll(framed), std::vector<std::string>{payload}) << shift;
  }
  // An unaligned magic right before an aligned one: only the aligned one splits.
  std::string payload = "a" + kMagic + "bcd" + kMagic;  // magics at 1 and 8
  std::string framed = Frame(payload);
  EXPECT_EQ(Hex(framed.substr(0, 8)), "0A 23 D7 CE 08 00 00 20");
  EXPECT_EQ(ReadAll(framed), std::vector<std::string>{payload});
}

TEST(RecordIO, RandomRoundTripThroughReader) {
  std::mt19937_64 rng(20240601);
  std::string stream;
  std::vector<std::string> payloads;
  uint64_t expected_size = 0;
  for (int i = 0; i < 500; ++i) {
    std::string payload(rng() % 300, '\0');
    for (char& c : payload) c = static_cast<char>(rng());
    // Plant magics at random (aligned and unaligned) offsets in a third of the payloads.
    if (i % 3 == 0) {
      for (int k = rng() % 5; k > 0 && payload.size() >= 4; --k) {
        payload.replace(rng() % (payload.size() - 3), 4, kMagic);
      }
    }
    expected_size += RecordIOFramedSize(payload);
    StringSink sink;
    ASSERT_TRUE(WriteRecordIO(payload, sink).ok());
    ASSERT_EQ(sink.bytes.size(), RecordIOFramedSize(payload)) << i;
    stream += sink.bytes;
    payloads.push_back(std::move(payload));
  }
  EXPECT_EQ(stream.size(), expected_size);
  std::vector<std::string> read = ReadAll(stream);
  ASSERT_EQ(read.size(), payloads.size());
  EXPECT_TRUE(read == payloads);
}

TEST(RecordIO, WriterDoesNotCopyThePayload) {
  // Header, payload slice and padding go out as separate appends pointing into the payload.
  class PointerSink final : public ByteSink {
   public:
    Status Append(const char* data, size_t size) override {
      pieces.emplace_back(data, size);
      return OkStatus();
    }
    std::vector<std::string_view> pieces;
  } sink;
  std::string payload = "ABCD" + kMagic + "EF";
  ASSERT_TRUE(WriteRecordIO(payload, sink).ok());
  ASSERT_EQ(sink.pieces.size(), 5u);  // header, "ABCD", header, "EF", padding
  EXPECT_EQ(sink.pieces[1].data(), payload.data());
  EXPECT_EQ(sink.pieces[3].data(), payload.data() + 8);
}

TEST(RecordIO, SinkErrorIsReturned) {
  class FailingSink final : public ByteSink {
   public:
    Status Append(const char*, size_t) override {
      return ++calls == 3 ? CancelledError("reader went away") : OkStatus();
    }
    int calls = 0;
  } sink;
  Status s = WriteRecordIO("ABCD" + kMagic + "EF", sink);
  EXPECT_EQ(s.code(), ErrorCode::kCancelled);
  EXPECT_EQ(sink.calls, 3);
}

TEST(RecordIO, PartSizeLimit) {
  EXPECT_TRUE(CheckRecordIOPartSize(0, "x").ok());
  EXPECT_TRUE(CheckRecordIOPartSize(kMaxRecordIOPartBytes, "x").ok());
  Status s = CheckRecordIOPartSize(kMaxRecordIOPartBytes + 1, "s3://b/big");
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "s3://b/big: record part of 536870912 bytes exceeds RecordIO's limit of 536870911 bytes");
  EXPECT_EQ(CheckRecordIOPartSize(uint64_t{1} << 40, "").code(), ErrorCode::kInvalidArgument);
}

// The real writer on 512 MiB payloads: an anonymous mapping that is never written reads as zeros
// from the shared zero page, so this costs address space, not memory.
TEST(RecordIO, TooLargeRecordIsRefusedBeforeWriting) {
  const size_t size = kMaxRecordIOPartBytes + 1;
  void* map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  ASSERT_NE(map, MAP_FAILED);
  std::string_view payload(static_cast<const char*>(map), size);

  CountingSink sink;
  Status s = WriteRecordIO(payload, sink, "s3://b/huge");
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("s3://b/huge: record part of 536870912 bytes"), std::string::npos)
      << s.message();
  EXPECT_EQ(sink.appends, 0);

  // An aligned magic in the middle splits it into two legal parts (this touches one page).
  std::memcpy(static_cast<char*>(map) + size / 2, kMagic.data(), 4);
  ASSERT_TRUE(WriteRecordIO(payload, sink, "s3://b/huge").ok());
  EXPECT_EQ(sink.bytes, RecordIOFramedSize(payload));
  EXPECT_EQ(sink.bytes, size + 8 + 4);  // two headers, the magic dropped, no padding
  munmap(map, size);
}

// ---- Reader errors -------------------------------------------------------------------------

Status ReadError(std::string_view data, uint64_t* offset = nullptr) {
  RecordIOReader reader(data);
  for (;;) {
    auto next = reader.Next();
    if (offset) *offset = reader.offset();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return OkStatus();
  }
}

TEST(RecordIOReader, EmptyInputHasNoRecords) {
  RecordIOReader reader("");
  auto next = reader.Next();
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
  EXPECT_EQ(reader.offset(), 0u);
}

TEST(RecordIOReader, EmptyRecordRoundTrips) {
  std::string data = Frame("") + Frame("a") + Frame("");
  EXPECT_EQ(ReadAll(data), (std::vector<std::string>{"", "a", ""}));
}

TEST(RecordIOReader, BadFramingNamesTheOffset) {
  std::string good = Frame("abcde");  // 16 bytes
  uint64_t offset = 0;

  Status s = ReadError(good + "\x0B\x23\xD7\xCE" + std::string(4, '\0'), &offset);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "RecordIO byte offset 16: bad magic 0xCED7230B");
  EXPECT_EQ(offset, 16u);  // stays at the start of the bad record

  s = ReadError(good + good.substr(0, 5));
  EXPECT_EQ(s.message(), "RecordIO byte offset 16: truncated header (5 of 8 bytes)");

  s = ReadError(good + good.substr(0, 14));
  EXPECT_EQ(s.message(), "RecordIO byte offset 16: truncated part: 5 bytes + padding announced, 6 left");

  std::string bad_pad = good;
  bad_pad[14] = 'x';
  s = ReadError(bad_pad);
  EXPECT_EQ(s.message(), "RecordIO byte offset 14: non-zero padding byte");

  // A continuation part where a record must start, and a record that never finishes.
  std::string multipart = Frame("ABCD" + kMagic + "EF");  // 12 + 12 bytes
  s = ReadError(good + multipart.substr(12));
  EXPECT_EQ(s.message(), "RecordIO byte offset 16: unexpected cflag 3 at the start of a record");
  s = ReadError(multipart.substr(0, 12) + good);
  EXPECT_EQ(s.message(), "RecordIO byte offset 12: unexpected cflag 0 inside a multipart record");
  s = ReadError(multipart.substr(0, 12));
  EXPECT_EQ(s.message(), "RecordIO byte offset 12: truncated header (0 of 8 bytes)");

  std::string flag7 = good;
  flag7[7] = '\xE0';
  s = ReadError(flag7);
  EXPECT_EQ(s.message(), "RecordIO byte offset 0: unexpected cflag 7 at the start of a record");

  std::string unaligned_first = std::string("\x0A\x23\xD7\xCE\x03\x00\x00\x20xyz", 11) + '\0' + multipart.substr(12);
  s = ReadError(unaligned_first);
  EXPECT_EQ(s.message(), "RecordIO byte offset 0: unaligned length of a non-final part");
}

// Every cut of a valid stream either ends exactly after a record or is refused; never a crash,
// never a short record passed off as complete.
TEST(RecordIOReader, EveryTruncationIsCaught) {
  std::vector<std::string> payloads = {"abcde", "ABCD" + kMagic + kMagic + "E", "", kMagic, "xyz"};
  std::string stream;
  std::vector<size_t> boundaries = {0};
  for (const auto& p : payloads) {
    stream += Frame(p);
    boundaries.push_back(stream.size());
  }
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    RecordIOReader reader(std::string_view(stream).substr(0, cut));
    size_t records = 0;
    Status status;
    for (;;) {
      auto next = reader.Next();
      if (!next.ok()) {
        status = next.status();
        break;
      }
      if (!next->has_value()) break;
      ASSERT_LT(records, payloads.size());
      EXPECT_TRUE(**next == payloads[records]) << cut;
      ++records;
    }
    bool at_boundary = std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
    EXPECT_EQ(status.ok(), at_boundary) << cut;
    EXPECT_EQ(reader.offset(), boundaries[records]) << cut;
  }
}

TEST(RecordIOReader, RandomBytesNeverCrash) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string data(rng() % 64, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    if (i % 2 == 0 && data.size() >= 4) data.replace(0, 4, kMagic);  // get past the first check
    RecordIOReader reader(data);
    for (int n = 0; n < 100; ++n) {
      auto next = reader.Next();
      if (!next.ok() || !next->has_value()) break;
    }
    EXPECT_LE(reader.offset(), data.size());
  }
}

}  // namespace
}  // namespace trainfeed
