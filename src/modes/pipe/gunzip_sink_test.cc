#include "modes/pipe/gunzip_sink.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>

#include "store/testing/string_sink.h"

namespace trainfeed {
namespace {

// One gzip member holding `data` (deflate with a gzip wrapper: 16 + 15 window bits).
std::string Gzip(std::string_view data, int level = Z_DEFAULT_COMPRESSION) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, data.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string RandomBytes(size_t n, uint64_t seed, int alphabet = 256) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() % alphabet);
  return s;
}

// Remembers the size of every append too.
class RecordingSink final : public ByteSink {
 public:
  Status Append(const char* data, size_t size) override {
    bytes.append(data, size);
    sizes.push_back(size);
    return OkStatus();
  }
  std::string bytes;
  std::vector<size_t> sizes;
};

Status Inflate(std::string_view gz, std::string* out, size_t feed = 64 * 1024) {
  RecordingSink sink;
  GunzipSink gunzip(sink, "s3://b/k.gz");
  Status s;
  for (size_t i = 0; i < gz.size() && s.ok(); i += feed) {
    s = gunzip.Append(gz.data() + i, std::min(feed, gz.size() - i));
  }
  if (s.ok()) s = gunzip.Finish();
  *out = std::move(sink.bytes);
  return s;
}

TEST(GunzipSink, RoundTripOfRandomData) {
  // Compressible (small alphabet) and incompressible data, several sizes around the chunk size.
  for (size_t n : {size_t{1}, size_t{1000}, GunzipSink::kGunzipChunkBytes - 1,
                   GunzipSink::kGunzipChunkBytes, size_t{3} << 20}) {
    for (int alphabet : {4, 256}) {
      std::string data = RandomBytes(n, n + alphabet, alphabet);
      RecordingSink sink;
      GunzipSink gunzip(sink, "s3://b/k.gz");
      std::string gz = Gzip(data);
      ASSERT_TRUE(gunzip.Append(gz.data(), gz.size()).ok()) << n;
      ASSERT_TRUE(gunzip.Finish().ok()) << n;
      ASSERT_EQ(sink.bytes.size(), data.size()) << n;
      EXPECT_TRUE(sink.bytes == data) << n << " " << alphabet;
      EXPECT_EQ(gunzip.bytes_in(), gz.size());
      EXPECT_EQ(gunzip.bytes_out(), data.size());
      for (size_t size : sink.sizes) EXPECT_LE(size, GunzipSink::kGunzipChunkBytes);
    }
  }
}

TEST(GunzipSink, OutputComesInFullChunks) {
  // Highly compressible: one Append inflates to many chunks, all full but the last.
  std::string data(10 * GunzipSink::kGunzipChunkBytes + 5, 'a');
  std::string gz = Gzip(data);
  RecordingSink sink;
  GunzipSink gunzip(sink, "x");
  ASSERT_TRUE(gunzip.Append(gz.data(), gz.size()).ok());
  ASSERT_TRUE(gunzip.Finish().ok());
  ASSERT_EQ(sink.sizes.size(), 11u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(sink.sizes[i], GunzipSink::kGunzipChunkBytes);
  EXPECT_EQ(sink.sizes[10], 5u);
  EXPECT_TRUE(sink.bytes == data);
}

TEST(GunzipSink, MultiMemberLikeGunzip) {
  std::string a = RandomBytes(70000, 1, 16), b = RandomBytes(3, 2), c = RandomBytes(500000, 3, 8);
  std::string gz = Gzip(a) + Gzip(b, 1) + Gzip("") + Gzip(c, 9);
  for (size_t feed : {size_t{7}, size_t{4096}, gz.size()}) {
    std::string out;
    Status s = Inflate(gz, &out, feed);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(out == a + b + c) << feed;
  }
}

TEST(GunzipSink, EmptyGzipMember) {
  std::string out = "unchanged";
  ASSERT_TRUE(Inflate(Gzip(""), &out).ok());
  EXPECT_EQ(out, "");
}

TEST(GunzipSink, TruncatedDataIsDataLoss) {
  std::string data = RandomBytes(200000, 9, 32);
  std::string gz = Gzip(data);
  // Cut in the header, inside the deflate data, and inside the 8-byte trailer.
  for (size_t cut : {size_t{1}, size_t{5}, gz.size() / 2, gz.size() - 4, gz.size() - 1}) {
    std::string out;
    Status s = Inflate(std::string_view(gz).substr(0, cut), &out);
    EXPECT_EQ(s.code(), ErrorCode::kDataLoss) << cut;
    EXPECT_EQ(s.message(), "s3://b/k.gz: truncated gzip data (ends after " + std::to_string(cut) +
                               " bytes)");
    EXPECT_LE(out.size(), data.size());
  }
  // A complete member followed by the start of a second one is still truncated.
  std::string out;
  EXPECT_EQ(Inflate(gz + gz.substr(0, 10), &out).code(), ErrorCode::kDataLoss);
  // No input at all is not a gzip stream either.
  EXPECT_EQ(Inflate("", &out).code(), ErrorCode::kDataLoss);
}

TEST(GunzipSink, GarbageIsNotGzipData) {
  std::string out;
  Status s = Inflate("hello, world\n", &out);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "s3://b/k.gz: not gzip data");
  EXPECT_EQ(out, "");

  // Right first byte, wrong second, fed one byte at a time.
  s = Inflate("\x1F\x8C rest", &out, 1);
  EXPECT_EQ(s.message(), "s3://b/k.gz: not gzip data");

  // A zlib (not gzip) stream.
  uLongf size = compressBound(5);
  std::string zlib(size, '\0');
  ASSERT_EQ(compress(reinterpret_cast<Bytef*>(zlib.data()), &size,
                     reinterpret_cast<const Bytef*>("hello"), 5),
            Z_OK);
  zlib.resize(size);
  EXPECT_EQ(Inflate(zlib, &out).code(), ErrorCode::kInvalidArgument);
}

TEST(GunzipSink, CorruptDataIsDataLoss) {
  std::string data = RandomBytes(100000, 4, 64);
  std::string gz = Gzip(data);

  std::string bad_crc = gz;
  bad_crc[gz.size() - 6] ^= 0x55;  // inside the CRC-32 of the trailer
  std::string out;
  Status s = Inflate(bad_crc, &out);
  EXPECT_EQ(s.code(), ErrorCode::kDataLoss);
  EXPECT_EQ(s.message(), "s3://b/k.gz: corrupt gzip data (incorrect data check)");

  std::string bad_method = gz;
  bad_method[2] = 7;  // compression method other than deflate
  s = Inflate(bad_method, &out);
  EXPECT_EQ(s.code(), ErrorCode::kDataLoss);
  EXPECT_NE(s.message().find("s3://b/k.gz: corrupt gzip data ("), std::string::npos) << s.message();

  // Bytes after a complete member that do not start another one.
  s = Inflate(gz + "junk", &out);
  EXPECT_EQ(s.code(), ErrorCode::kDataLoss);
  EXPECT_EQ(s.message(), "s3://b/k.gz: corrupt gzip data (trailing garbage at byte " +
                             std::to_string(gz.size()) + ")");
  EXPECT_TRUE(out == data);  // what came before the garbage was delivered
}

TEST(GunzipSink, OneByteAtATime) {
  std::string data = RandomBytes(300000, 5, 20);
  std::string gz = Gzip(data) + Gzip("tail");
  RecordingSink sink;
  GunzipSink gunzip(sink, "x");
  for (char c : gz) ASSERT_TRUE(gunzip.Append(&c, 1).ok());
  ASSERT_TRUE(gunzip.Finish().ok());
  EXPECT_TRUE(sink.bytes == data + "tail");
  EXPECT_EQ(gunzip.bytes_in(), gz.size());
  for (size_t size : sink.sizes) EXPECT_GT(size, 0u);  // never an empty append
}

TEST(GunzipSink, ErrorsOfTheNextSinkStopAndStick) {
  class FailingSink final : public ByteSink {
   public:
    Status Append(const char*, size_t) override {
      ++calls;
      return CancelledError("reader went away");
    }
    int calls = 0;
  } sink;
  GunzipSink gunzip(sink, "x");
  std::string gz = Gzip(std::string(3 * GunzipSink::kGunzipChunkBytes, 'z'));
  EXPECT_EQ(gunzip.Append(gz.data(), gz.size()).code(), ErrorCode::kCancelled);
  EXPECT_EQ(sink.calls, 1);  // stopped at the first failing chunk
  EXPECT_EQ(gunzip.Append(gz.data(), 1).code(), ErrorCode::kCancelled);
  EXPECT_EQ(gunzip.Finish().code(), ErrorCode::kCancelled);
  EXPECT_EQ(sink.calls, 1);
}

}  // namespace
}  // namespace trainfeed
