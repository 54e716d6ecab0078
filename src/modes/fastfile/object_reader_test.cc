#include "modes/fastfile/object_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/testing/fake_object_store.h"
#include "store/testing/fault_injecting_object_store.h"

namespace trainfeed {
namespace {

constexpr uint64_t kKiB = 1 << 10;
constexpr uint64_t kMiB = 1 << 20;

// Passes every call through to `target` and keeps the GET requests, for checks on ranges and
// If-Match.
class RecordingStore final : public ObjectStore {
 public:
  explicit RecordingStore(ObjectStore& target) : target_(target) {}

  Result<ListPage> List(const ListRequest& request) override { return target_.List(request); }
  Result<ObjectInfo> Head(const ObjectRef& object) override { return target_.Head(object); }
  Result<GetResult> Get(const GetRequest& request, ByteSink& sink) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      gets_.push_back(request);
    }
    return target_.Get(request, sink);
  }
  Result<std::string> Put(const ObjectRef& object, std::string_view body) override {
    return target_.Put(object, body);
  }
  Status Delete(const ObjectRef& object) override { return target_.Delete(object); }
  Result<std::string> CreateMultipartUpload(const ObjectRef& object) override {
    return target_.CreateMultipartUpload(object);
  }
  Result<std::string> UploadPart(const ObjectRef& object, const std::string& upload_id,
                                 int part_number, std::string_view body) override {
    return target_.UploadPart(object, upload_id, part_number, body);
  }
  Result<std::string> CompleteMultipartUpload(const ObjectRef& object, const std::string& upload_id,
                                              const std::vector<CompletedPart>& parts) override {
    return target_.CompleteMultipartUpload(object, upload_id, parts);
  }
  Status AbortMultipartUpload(const ObjectRef& object, const std::string& upload_id) override {
    return target_.AbortMultipartUpload(object, upload_id);
  }
  std::string Describe(const ObjectRef& object) const override { return target_.Describe(object); }

  // Sorted by range begin: readahead runs on pool threads, in any order.
  std::vector<GetRequest> Gets() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<GetRequest> out = gets_;
    std::sort(out.begin(), out.end(), [](const GetRequest& a, const GetRequest& b) {
      return a.range.value_or(ByteRange{}).begin < b.range.value_or(ByteRange{}).begin;
    });
    return out;
  }

 private:
  ObjectStore& target_;
  mutable std::mutex mu_;
  std::vector<GetRequest> gets_;  // Guarded by mu_.
};

class ObjectReaderTest : public ::testing::Test {
 protected:
  void SetUp() override { fake_.CreateBucket("b"); }

  ObjectInfo Put(const std::string& key, uint64_t size, uint64_t seed = 7) {
    EXPECT_TRUE(fake_.PutRamp("b", key, size, seed).ok());
    Result<ObjectInfo> info = fake_.Head({"b", key});
    EXPECT_TRUE(info.ok());
    return info.ok() ? *info : ObjectInfo{};
  }

  std::unique_ptr<ObjectReader> Open(ObjectStore& store, const ObjectInfo& info,
                                     ReaderOptions options = {}) {
    return std::make_unique<ObjectReader>(store, ObjectRef{"b", info.key}, info, pool_, budget_,
                                          stats_, options);
  }

  // The bytes a successful read returns (empty and a test failure on error).
  static std::string ReadAt(ObjectReader& reader, uint64_t offset, size_t size) {
    std::string buf(size, '\0');
    Result<size_t> n = reader.Read(offset, buf.data(), size);
    EXPECT_TRUE(n.ok()) << "read at " << offset << ": " << n.status().ToString();
    buf.resize(n.ok() ? *n : 0);
    return buf;
  }

  static ErrorCode ReadError(ObjectReader& reader, uint64_t offset, size_t size) {
    std::string buf(size, '\0');
    Result<size_t> n = reader.Read(offset, buf.data(), size);
    return n.status().code();
  }

  // What a correct read of a PutRamp object returns.
  static std::string Expected(uint64_t seed, uint64_t object_size, uint64_t offset, uint64_t size) {
    if (offset >= object_size) return "";
    return FakeObjectStore::RampBytes(seed, offset, std::min(object_size, offset + size));
  }

  FakeObjectStore fake_;
  MemoryBudget budget_{1ull << 30};
  ReadStats stats_;
  FetchPool pool_{4};  // last: stops before the budget and stats it uses go away
};

// ---- Sequential readahead ----------------------------------------------------------------------

TEST_F(ObjectReaderTest, SequentialReadsAreByteIdenticalWithFewGets) {
  ObjectInfo info = Put("seq", 40 * kMiB);
  auto reader = Open(fake_, info);
  for (uint64_t off = 0; off < info.size; off += kMiB) {
    ASSERT_EQ(ReadAt(*reader, off, kMiB), Expected(7, info.size, off, kMiB)) << "at " << off;
  }
  EXPECT_EQ(stats_.reads.load(), 40u);
  EXPECT_EQ(stats_.bytes_served.load(), 40 * kMiB);
  // The window doubles from 1 MiB to parts of 8 MiB: 8 GETs, not 40.
  EXPECT_LE(fake_.get_calls(), 10);
  EXPECT_EQ(stats_.gets.load(), static_cast<uint64_t>(fake_.get_calls()));
  EXPECT_EQ(stats_.bytes_fetched.load(), 40 * kMiB);  // each byte once
  reader.reset();
  EXPECT_EQ(budget_.used(), 0u);
}

TEST_F(ObjectReaderTest, WindowDoublesAsReadsConsumeTheReadahead) {
  ObjectInfo info = Put("grow", 40 * kMiB);
  RecordingStore store(fake_);
  auto reader = Open(store, info);
  for (uint64_t off = 0; off < info.size; off += kMiB) {
    ASSERT_EQ(ReadAt(*reader, off, kMiB).size(), kMiB);
  }
  std::vector<uint64_t> sizes;
  uint64_t next = 0;
  for (const GetRequest& get : store.Gets()) {
    ASSERT_TRUE(get.range.has_value());
    EXPECT_EQ(get.range->begin, next) << "GETs overlap or leave a gap";
    next = get.range->end;
    sizes.push_back(get.range->size() / kMiB);
  }
  EXPECT_EQ(next, info.size);
  // The first read's own bytes and the initial window; then each read into the readahead doubles
  // the window (2, 4, 8, 16, 32, 64 MiB), topped up once less than half of it is left, in parts
  // of at most 8 MiB (a remainder under half a part joins the part before it).
  EXPECT_EQ(sizes, (std::vector<uint64_t>{1, 1, 2, 3, 5, 9, 8, 9, 2}));
}

TEST_F(ObjectReaderTest, SequentialReadsFromTheStartReachTheMaxWindow) {
  ObjectInfo info = Put("seqmax", 160 * kMiB);
  RecordingStore store(fake_);
  auto reader = Open(store, info);
  std::vector<uint64_t> windows;
  for (uint64_t off = 0; off < info.size; off += kMiB) {
    ASSERT_EQ(ReadAt(*reader, off, kMiB), Expected(7, info.size, off, kMiB)) << "at " << off;
    if (windows.empty() || windows.back() != reader->window()) windows.push_back(reader->window());
  }
  EXPECT_EQ(windows, (std::vector<uint64_t>{kMiB, 2 * kMiB, 4 * kMiB, 8 * kMiB, 16 * kMiB,
                                            32 * kMiB, 64 * kMiB}));
  std::vector<GetRequest> gets = store.Gets();
  for (const GetRequest& get : gets) EXPECT_LE(get.range->size(), 12 * kMiB);
  EXPECT_LE(gets.size(), 160u / 8 + 6);
  EXPECT_EQ(stats_.bytes_fetched.load(), info.size);
}

TEST_F(ObjectReaderTest, ARunFromARandomOffsetEarnsItsWindowByReading) {
  ObjectInfo info = Put("mid", 64 * kMiB);
  RecordingStore store(fake_);
  ReaderOptions options;
  options.max_window = 8 * kMiB;
  auto reader = Open(store, info, options);
  const uint64_t start = 10 * kMiB + 4096;
  uint64_t max_window = 0;
  for (uint64_t off = start; off < start + 40 * kMiB; off += 128 * kKiB) {
    ASSERT_EQ(ReadAt(*reader, off, 128 * kKiB), Expected(7, info.size, off, 128 * kKiB));
    // Never more readahead than half of what the run has read.
    const uint64_t read = off + 128 * kKiB - start;
    ASSERT_LE(reader->window(), read / 2) << "at " << off;
    max_window = std::max(max_window, reader->window());
  }
  EXPECT_EQ(max_window, options.max_window);
}

// The FUSE requests of one read(2) with a cold page cache: the pages it covers, in requests of at
// most 128 KiB (the kernel's readahead unit), and after a read larger than that one more 128 KiB
// of asynchronous readahead.
std::vector<ByteRange> KernelRequests(uint64_t offset, uint64_t size, uint64_t object_size) {
  constexpr uint64_t kPage = 4096, kUnit = 128 * kKiB;
  std::vector<ByteRange> out;
  if (offset >= object_size) return out;
  uint64_t begin = offset / kPage * kPage;
  uint64_t end = std::min(object_size, (offset + size + kPage - 1) / kPage * kPage);
  if (end - begin > kUnit) end = std::min(object_size, end + kUnit);
  for (uint64_t pos = begin; pos < end; pos += kUnit) {
    out.push_back({pos, std::min(end, pos + kUnit)});
  }
  return out;
}

// The bytes of every GET `store` saw, once no new one has started for 100 ms: readahead still
// queued when the reads returned counts too.
uint64_t SettledGetBytes(const RecordingStore& store) {
  size_t seen = store.Gets().size();
  for (int quiet = 0, i = 0; quiet < 10 && i < 300; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const size_t now = store.Gets().size();
    quiet = now == seen ? quiet + 1 : 0;
    seen = now;
  }
  uint64_t bytes = 0;
  for (const GetRequest& get : store.Gets()) bytes += get.range->size();
  return bytes;
}

TEST_F(ObjectReaderTest, RandomReadsWithKernelNeighboursFetchAboutWhatTheyServe) {
  // The real-mount test's pattern: seeded seeks to odd offsets of a 64 MiB object and reads of a
  // few bytes to 3 MiB, each arriving as the kernel's burst of 128 KiB neighbouring requests.
  // Doubling the window on each of them used to fetch several times what was served.
  ObjectInfo info = Put("random-kernel", 64 * kMiB + 12345);
  RecordingStore store(fake_);
  auto reader = Open(store, info);
  std::mt19937_64 rng(7);
  const uint64_t sizes[] = {1, 3, 4095, 4097, 65537, kMiB, 3 * kMiB + 1};
  uint64_t served = 0;
  for (int i = 0; i < 450; ++i) {
    const uint64_t offset = (rng() % (info.size + 100)) | 1;
    const uint64_t size = sizes[rng() % 7];
    for (const ByteRange& r : KernelRequests(offset, size, info.size)) {
      ASSERT_EQ(ReadAt(*reader, r.begin, r.size()), Expected(7, info.size, r.begin, r.size()));
      served += r.size();
    }
  }
  const uint64_t requested = SettledGetBytes(store);
  const double ratio = static_cast<double>(requested) / static_cast<double>(served);
  EXPECT_LE(ratio, 1.5) << requested << " bytes asked for to serve " << served;
  EXPECT_LE(stats_.bytes_fetched.load(), requested);  // cancelled readahead stops early
  std::printf("random reads: GETs asked for %.2fx the bytes served\n", ratio);
}

TEST_F(ObjectReaderTest, ABurstOfNeighbouringReadsThatStopsFetchesAtMostHalfMore) {
  ObjectInfo info = Put("burst", 64 * kMiB);
  RecordingStore store(fake_);
  auto reader = Open(store, info);
  uint64_t served = 0;
  for (const ByteRange& r : KernelRequests(20 * kMiB + 12345, 3 * kMiB + 1, info.size)) {
    served += ReadAt(*reader, r.begin, r.size()).size();
  }
  const uint64_t requested = SettledGetBytes(store);
  EXPECT_LE(requested, served + served / 2);
  EXPECT_GE(requested, served);
}

TEST_F(ObjectReaderTest, BackwardOrFarForwardSeekResetsTheWindow) {
  ObjectInfo info = Put("seeks", 64 * kMiB);
  RecordingStore store(fake_);
  auto reader = Open(store, info);
  for (uint64_t off = 0; off < 8 * kMiB; off += kMiB) ReadAt(*reader, off, kMiB);
  // (Readahead of those reads may still be starting its GETs, so look at ranges, not counts.)
  auto gets_in = [&](uint64_t begin, uint64_t end) {
    std::vector<ByteRange> out;
    for (const GetRequest& get : store.Gets()) {
      if (get.range->begin >= begin && get.range->begin < end) out.push_back(*get.range);
    }
    return out;
  };
  const uint64_t min_random = ReaderOptions{}.min_random_read;
  // Back by more than seek_absorb: one GET of min_random_read, no readahead.
  const uint64_t back = 2 * kMiB + 1;
  ASSERT_EQ(ReadAt(*reader, back, 4 * kKiB), Expected(7, info.size, back, 4 * kKiB));
  // Reading on inside that GET needs nothing more: a run from a seek has not earned readahead.
  ASSERT_EQ(ReadAt(*reader, back + 4 * kKiB, 4 * kKiB),
            Expected(7, info.size, back + 4 * kKiB, 4 * kKiB));
  std::vector<ByteRange> there = gets_in(back, back + kMiB);
  ASSERT_EQ(there.size(), 1u);
  EXPECT_EQ(there[0].size(), min_random);
  // Forward, past everything still fetched: the same.
  const uint64_t ahead = 50 * kMiB + 1;
  ASSERT_EQ(ReadAt(*reader, ahead, 4 * kKiB), Expected(7, info.size, ahead, 4 * kKiB));
  there = gets_in(ahead, ahead + kMiB);
  ASSERT_EQ(there.size(), 1u);
  EXPECT_EQ(there[0].begin, ahead);
  EXPECT_EQ(there[0].size(), min_random);
}

TEST_F(ObjectReaderTest, SmallReadsAreServedFromChunks) {
  ObjectInfo info = Put("small", 20 * kMiB + 17);
  auto reader = Open(fake_, info);
  uint64_t reads = 0;
  for (uint64_t off = 0; off < info.size; off += 128 * kKiB, ++reads) {
    ASSERT_EQ(ReadAt(*reader, off, 128 * kKiB), Expected(7, info.size, off, 128 * kKiB));
  }
  EXPECT_LT(static_cast<uint64_t>(fake_.get_calls()) * 10, reads);
}

TEST_F(ObjectReaderTest, SmallForwardSeekIssuesNoGet) {
  ObjectInfo info = Put("seek", 2 * kMiB);
  ReaderOptions options;
  options.initial_window = 4 * kMiB;  // the first readahead reaches the end of the object
  options.seek_absorb = 256 * kKiB;
  auto reader = Open(fake_, info, options);
  ASSERT_EQ(ReadAt(*reader, 0, 64 * kKiB), Expected(7, info.size, 0, 64 * kKiB));
  // A jump within seek_absorb waits for the readahead already in flight...
  ASSERT_EQ(ReadAt(*reader, 64 * kKiB + 200 * kKiB, 64 * kKiB),
            Expected(7, info.size, 264 * kKiB, 64 * kKiB));
  EXPECT_EQ(fake_.get_calls(), 2);  // the first read's bytes, and the readahead
  // ... and so does a longer one that lands in bytes already fetched.
  ASSERT_EQ(ReadAt(*reader, 1500 * kKiB, 100 * kKiB),
            Expected(7, info.size, 1500 * kKiB, 100 * kKiB));
  EXPECT_EQ(fake_.get_calls(), 2);
}

// ---- Random access -----------------------------------------------------------------------------

TEST_F(ObjectReaderTest, RandomReadsAtOddOffsetsAreByteIdentical) {
  ObjectInfo info = Put("random", 5 * kMiB + 123, 11);
  auto reader = Open(fake_, info);
  std::mt19937_64 rng(20240611);
  std::uniform_int_distribution<uint64_t> offset(0, info.size + 1000);
  std::uniform_int_distribution<size_t> size(1, 512 * kKiB);
  for (int i = 0; i < 300; ++i) {
    uint64_t off = offset(rng);
    size_t n = size(rng);
    ASSERT_EQ(ReadAt(*reader, off, n), Expected(11, info.size, off, n)) << off << "+" << n;
  }
}

TEST_F(ObjectReaderTest, PrefetchLimitZeroFetchesOnlyWhatReadsNeed) {
  ObjectInfo info = Put("tight", 8 * kMiB);
  MemoryBudget tight(2 * kMiB, 2 * kMiB);  // all reserve: no room for readahead
  auto reader =
      std::make_unique<ObjectReader>(fake_, ObjectRef{"b", info.key}, info, pool_, tight, stats_);
  for (uint64_t off = 0; off < info.size; off += kMiB) {
    ASSERT_EQ(ReadAt(*reader, off, kMiB), Expected(7, info.size, off, kMiB));
  }
  EXPECT_EQ(fake_.get_calls(), 8);
  EXPECT_LE(tight.peak(), tight.limit());
  reader.reset();
  EXPECT_EQ(tight.used(), 0u);
}

// ---- End of file -------------------------------------------------------------------------------

TEST_F(ObjectReaderTest, ReadAcrossEofReturnsShortCount) {
  ObjectInfo info = Put("eof", kMiB + 10);
  auto reader = Open(fake_, info);
  EXPECT_EQ(ReadAt(*reader, kMiB, 4096), Expected(7, info.size, kMiB, 10));
  EXPECT_EQ(ReadAt(*reader, kMiB - 5, 4096), Expected(7, info.size, kMiB - 5, 15));
}

TEST_F(ObjectReaderTest, ReadAtOrPastEofReturnsZeroWithoutGet) {
  ObjectInfo info = Put("eof0", 1000);
  auto reader = Open(fake_, info);
  char buf[64];
  Result<size_t> at = reader->Read(1000, buf, sizeof(buf));
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(*at, 0u);
  Result<size_t> past = reader->Read(5000, buf, sizeof(buf));
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(*past, 0u);
  Result<size_t> none = reader->Read(10, buf, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
  EXPECT_EQ(fake_.get_calls(), 0);
}

TEST_F(ObjectReaderTest, EmptyObjectReadsZeroWithoutGet) {
  ObjectInfo info = Put("empty", 0);
  auto reader = Open(fake_, info);
  char buf[64];
  Result<size_t> n = reader->Read(0, buf, sizeof(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(fake_.get_calls(), 0);
  EXPECT_EQ(stats_.reads.load(), 1u);
}

// ---- Integrity ---------------------------------------------------------------------------------

TEST_F(ObjectReaderTest, EveryGetCarriesTheListedEtag) {
  ObjectInfo info = Put("etag", 12 * kMiB);
  RecordingStore store(fake_);
  auto reader = Open(store, info);
  for (uint64_t off = 0; off < info.size; off += 3 * kMiB) ReadAt(*reader, off, kMiB);
  std::vector<GetRequest> gets = store.Gets();
  ASSERT_FALSE(gets.empty());
  for (const GetRequest& get : gets) {
    EXPECT_EQ(get.if_match, info.etag);
    EXPECT_EQ(get.object.key, "etag");
    ASSERT_TRUE(get.range.has_value());
    EXPECT_LE(get.range->end, info.size);
  }
}

TEST_F(ObjectReaderTest, ChangedObjectFailsAndNeverMixesVersions) {
  ObjectInfo info = Put("changing", 16 * kMiB, 1);
  auto reader = Open(fake_, info);
  ASSERT_EQ(ReadAt(*reader, 0, kMiB), Expected(1, info.size, 0, kMiB));
  ASSERT_EQ(ReadAt(*reader, kMiB, kMiB), Expected(1, info.size, kMiB, kMiB));
  ASSERT_TRUE(fake_.PutRamp("b", "changing", 16 * kMiB, 2).ok());  // same size, new bytes

  // Reading on: every read either returns the old version's bytes (fetched before the change)
  // or fails with PreconditionFailed; none returns new bytes, and the end is never reached.
  bool failed = false;
  for (uint64_t off = 2 * kMiB; off < info.size; off += kMiB) {
    std::string buf(kMiB, '\0');
    Result<size_t> n = reader->Read(off, buf.data(), buf.size());
    if (!n.ok()) {
      EXPECT_EQ(n.status().code(), ErrorCode::kPreconditionFailed) << n.status().ToString();
      failed = true;
      continue;
    }
    ASSERT_EQ(buf, Expected(1, info.size, off, kMiB)) << "at " << off;
  }
  EXPECT_TRUE(failed);
}

TEST_F(ObjectReaderTest, ReadSpanningCachedAndChangedBytesFailsAsAWhole) {
  ObjectInfo info = Put("span", 4 * kMiB, 1);
  ReaderOptions options;
  options.initial_window = 0;  // only what reads ask for
  auto reader = Open(fake_, info, options);
  ASSERT_EQ(ReadAt(*reader, 0, 64 * kKiB), Expected(1, info.size, 0, 64 * kKiB));
  ASSERT_TRUE(fake_.PutRamp("b", "span", 4 * kMiB, 2).ok());
  // The first half is cached from the old version; the rest would come from the new one.
  EXPECT_EQ(ReadError(*reader, 32 * kKiB, 128 * kKiB), ErrorCode::kPreconditionFailed);
}

TEST_F(ObjectReaderTest, WithoutListedEtagTheFirstResponsePinsTheVersion) {
  ObjectInfo info = Put("noetag", 4 * kMiB, 1);
  info.etag.clear();
  ReaderOptions options;
  options.initial_window = 0;  // only what reads ask for
  auto reader = Open(fake_, info, options);
  ASSERT_EQ(ReadAt(*reader, 0, 64 * kKiB), Expected(1, info.size, 0, 64 * kKiB));
  ASSERT_TRUE(fake_.PutRamp("b", "noetag", 4 * kMiB, 2).ok());
  EXPECT_EQ(ReadError(*reader, 3 * kMiB, 64 * kKiB), ErrorCode::kPreconditionFailed);
}

TEST_F(ObjectReaderTest, ChangedSizeFailsEvenWithoutEtag) {
  ObjectInfo info = Put("resized", 4 * kMiB, 1);
  info.etag.clear();
  ASSERT_TRUE(fake_.PutRamp("b", "resized", 5 * kMiB, 1).ok());
  auto reader = Open(fake_, info);
  EXPECT_EQ(ReadError(*reader, 0, 64 * kKiB), ErrorCode::kPreconditionFailed);
}

TEST_F(ObjectReaderTest, ShortBodyIsDataLossAndIsNotCached) {
  ObjectInfo info = Put("short", 4 * kMiB);
  FaultInjectingObjectStore store(fake_, [](const FaultContext& c) -> std::optional<Fault> {
    if (c.method == StoreMethod::kGet && c.method_call_index == 0) return Fault::ShortBody(100);
    return std::nullopt;
  });
  ReaderOptions options;
  options.initial_window = 0;
  auto reader = Open(store, info, options);
  EXPECT_EQ(ReadError(*reader, 0, 64 * kKiB), ErrorCode::kDataLoss);
  EXPECT_EQ(ReadAt(*reader, 0, 64 * kKiB), Expected(7, info.size, 0, 64 * kKiB));
}

TEST_F(ObjectReaderTest, PrefetchErrorReachesTheReadThatNeedsThoseBytes) {
  ObjectInfo info = Put("flaky", 16 * kMiB);
  bool failed_once = false;
  FaultInjectingObjectStore store(fake_, [&](const FaultContext& c) -> std::optional<Fault> {
    if (c.method == StoreMethod::kGet && c.range && c.range->begin == 2 * kMiB && !failed_once) {
      failed_once = true;  // hook calls are serialized
      return Fault::ErrorAfterBytes(1000, UnavailableError("connection reset"));
    }
    return std::nullopt;
  });
  auto reader = Open(store, info);
  ASSERT_EQ(ReadAt(*reader, 0, kMiB), Expected(7, info.size, 0, kMiB));
  ASSERT_EQ(ReadAt(*reader, kMiB, kMiB), Expected(7, info.size, kMiB, kMiB));
  EXPECT_EQ(ReadError(*reader, 2 * kMiB, kMiB), ErrorCode::kUnavailable);
  // Delivered once: reading the same bytes again asks the store again.
  EXPECT_EQ(ReadAt(*reader, 2 * kMiB, kMiB), Expected(7, info.size, 2 * kMiB, kMiB));
  for (uint64_t off = 3 * kMiB; off < info.size; off += kMiB) {
    ASSERT_EQ(ReadAt(*reader, off, kMiB), Expected(7, info.size, off, kMiB));
  }
}

TEST_F(ObjectReaderTest, StoreErrorOfARandomReadIsReturned) {
  ObjectInfo info = Put("gone", kMiB);
  auto reader = Open(fake_, info);
  ASSERT_TRUE(fake_.Delete({"b", "gone"}).ok());
  EXPECT_EQ(ReadError(*reader, 100, 10), ErrorCode::kNotFound);
}

// ---- Memory ------------------------------------------------------------------------------------

TEST_F(ObjectReaderTest, SixteenReadersStayWithinASmallBudget) {
  constexpr int kReaders = 16;
  constexpr uint64_t kSize = 6 * kMiB + 4321;
  MemoryBudget budget(8 * kMiB);
  std::vector<ObjectInfo> infos;
  for (int i = 0; i < kReaders; ++i) infos.push_back(Put("m" + std::to_string(i), kSize, i));

  std::atomic<bool> done{false};
  std::atomic<uint64_t> max_seen{0};
  std::thread sampler([&] {
    while (!done.load()) {
      uint64_t used = budget.used();
      if (used > max_seen.load()) max_seen.store(used);
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int i = 0; i < kReaders; ++i) {
    threads.emplace_back([&, i] {
      ObjectReader reader(fake_, ObjectRef{"b", infos[i].key}, infos[i], pool_, budget, stats_);
      // Half read sequentially in FUSE-sized pieces, half jump around.
      std::mt19937_64 rng(i);
      const size_t piece = i % 2 == 0 ? 128 * kKiB : 1 * kMiB;
      for (int round = 0; round < 2; ++round) {
        for (uint64_t off = 0; off < kSize; off += piece) {
          uint64_t at = i % 4 == 3 ? rng() % kSize : off;
          std::string buf(piece, '\0');
          Result<size_t> n = reader.Read(at, buf.data(), piece);
          if (!n.ok()) {
            ++mismatches;
            continue;
          }
          buf.resize(*n);
          if (buf != Expected(i, kSize, at, piece)) ++mismatches;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  done = true;
  sampler.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_LE(max_seen.load(), budget.limit());
  EXPECT_LE(budget.peak(), budget.limit());
  EXPECT_EQ(budget.used(), 0u);
}

TEST_F(ObjectReaderTest, IdleReadersHoldingReadaheadDoNotBlockOthers) {
  // Files read a little and then left open hold all the readahead the budget allows; a read of
  // another file still gets its bytes from the reserve, also when it is larger than the reserve.
  MemoryBudget budget(8 * kMiB);
  ReaderOptions options;
  options.initial_window = 4 * kMiB;
  std::vector<std::unique_ptr<ObjectReader>> idle;
  for (int i = 0; i < 8; ++i) {
    ObjectInfo info = Put("idle" + std::to_string(i), 16 * kMiB, i);
    idle.push_back(std::make_unique<ObjectReader>(fake_, ObjectRef{"b", info.key}, info, pool_,
                                                  budget, stats_, options));
    ASSERT_EQ(ReadAt(*idle.back(), 0, kMiB), Expected(i, info.size, 0, kMiB));
  }
  EXPECT_GE(budget.used(), budget.prefetch_limit() - kMiB);  // nearly all prefetch may take
  ObjectInfo info = Put("busy", 24 * kMiB, 9);
  ObjectReader busy(fake_, ObjectRef{"b", info.key}, info, pool_, budget, stats_, options);
  for (uint64_t off = 0; off < info.size; off += 3 * kMiB) {
    ASSERT_EQ(ReadAt(busy, off, 3 * kMiB), Expected(9, info.size, off, 3 * kMiB));
  }
  ASSERT_EQ(ReadAt(busy, 7, 5 * kMiB), Expected(9, info.size, 7, 5 * kMiB));
  EXPECT_LE(budget.peak(), budget.limit());
  idle.clear();
}

TEST_F(ObjectReaderTest, ConsumedChunksAreFreed) {
  ObjectInfo info = Put("free", 64 * kMiB);
  auto reader = Open(fake_, info);
  for (uint64_t off = 0; off < info.size; off += kMiB) {
    ASSERT_EQ(ReadAt(*reader, off, kMiB).size(), kMiB);
    // At most: the window ahead, a part of slack and the part being read.
    EXPECT_LE(budget_.used(), ReaderOptions{}.max_window + 2 * ReaderOptions{}.part_size);
  }
  // The readahead stopped at the end; what is left is the part just read (up to a part and a half:
  // a remainder joins the part before it).
  EXPECT_LE(budget_.used(), ReaderOptions{}.part_size * 3 / 2);
}

TEST_F(ObjectReaderTest, DestroyingAReaderWithPrefetchesInFlightIsSafe) {
  ObjectInfo info = Put("abandon", 32 * kMiB);
  fake_.set_get_chunk_size(4 * kKiB);  // long GETs, so some are cut short mid-body
  FetchPool one(1);                    // and some wait in the queue
  ReaderOptions options;
  options.initial_window = 16 * kMiB;
  options.part_size = kMiB;
  for (int i = 0; i < 50; ++i) {
    {
      ObjectReader reader(fake_, ObjectRef{"b", info.key}, info, i % 2 ? one : pool_, budget_,
                          stats_, options);
      uint64_t off = static_cast<uint64_t>(i % 5) * kMiB;
      ASSERT_EQ(ReadAt(reader, off, 64 * kKiB), Expected(7, info.size, off, 64 * kKiB));
    }
    ASSERT_EQ(budget_.used(), 0u) << "iteration " << i;
  }
}

// ---- Concurrency -------------------------------------------------------------------------------

TEST_F(ObjectReaderTest, ConcurrentReadsOnOneReaderAreCorrect) {
  ObjectInfo info = Put("shared", 16 * kMiB + 99, 3);
  auto reader = Open(fake_, info);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      const uint64_t begin = static_cast<uint64_t>(t) * 4 * kMiB;
      for (uint64_t off = begin; off < begin + 4 * kMiB + 99;) {
        size_t n = 1 + rng() % (300 * kKiB);
        std::string buf(n, '\0');
        Result<size_t> got = reader->Read(off, buf.data(), n);
        if (!got.ok()) {
          ++mismatches;
          break;
        }
        buf.resize(*got);
        if (buf != Expected(3, info.size, off, n)) ++mismatches;
        off += n;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(ObjectReaderTest, ConcurrentReadsOfTheSameBytesAreCorrect) {
  ObjectInfo info = Put("same", 8 * kMiB, 5);
  auto reader = Open(fake_, info);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (uint64_t off = 0; off < info.size; off += 256 * kKiB) {
        std::string buf(256 * kKiB, '\0');
        Result<size_t> got = reader->Read(off, buf.data(), buf.size());
        if (!got.ok() || buf != Expected(5, info.size, off, 256 * kKiB)) ++mismatches;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(stats_.reads.load(), 4u * 32u);
}

// ---- Stats -------------------------------------------------------------------------------------

TEST_F(ObjectReaderTest, StatsCountReadsAndLatency) {
  ObjectInfo info = Put("stats", 2 * kMiB);
  auto reader = Open(fake_, info);
  ReadAt(*reader, 0, kMiB);
  ReadAt(*reader, kMiB, kMiB);
  ReadAt(*reader, 2 * kMiB, kMiB);  // EOF
  EXPECT_EQ(stats_.reads.load(), 3u);
  EXPECT_EQ(stats_.bytes_served.load(), 2 * kMiB);
  EXPECT_EQ(stats_.gets.load(), 2u);
  EXPECT_EQ(stats_.bytes_fetched.load(), 2 * kMiB);
  uint64_t recorded = 0;
  for (const auto& bucket : stats_.latency_us_log2) recorded += bucket.load();
  EXPECT_EQ(recorded, 3u);
  EXPECT_GT(stats_.LatencyPercentileMicros(100), 0u);
}

TEST(ReadStatsTest, LatencyPercentilesUseLog2Buckets) {
  ReadStats stats;
  EXPECT_EQ(stats.LatencyPercentileMicros(50), 0u);
  for (int i = 0; i < 90; ++i) stats.RecordLatency(100);  // bucket [64, 128)
  for (int i = 0; i < 9; ++i) stats.RecordLatency(3000);  // [2048, 4096)
  stats.RecordLatency(0);                                 // [0, 1)
  EXPECT_EQ(stats.LatencyPercentileMicros(0), 1u);
  EXPECT_EQ(stats.LatencyPercentileMicros(50), 128u);
  EXPECT_EQ(stats.LatencyPercentileMicros(91), 128u);
  EXPECT_EQ(stats.LatencyPercentileMicros(99), 4096u);
  EXPECT_EQ(stats.LatencyPercentileMicros(100), 4096u);
  stats.RecordLatency(~uint64_t{0});  // the open-ended last bucket
  EXPECT_EQ(stats.LatencyPercentileMicros(100), uint64_t{1} << (ReadStats::kLatencyBuckets - 2));
  EXPECT_EQ(stats.latency_us_log2[1].load(), 0u);
  stats.RecordLatency(1);
  EXPECT_EQ(stats.latency_us_log2[1].load(), 1u);
}

// ---- MemoryBudget ------------------------------------------------------------------------------

TEST(MemoryBudgetTest, PrefetchStopsAtThePrefetchLimit) {
  MemoryBudget budget(400 * kKiB, 100 * kKiB);
  EXPECT_EQ(budget.prefetch_limit(), 300 * kKiB);
  EXPECT_TRUE(budget.TryAcquire(280 * kKiB));
  EXPECT_FALSE(budget.TryAcquire(40 * kKiB));
  EXPECT_TRUE(budget.TryAcquire(20 * kKiB));
  EXPECT_TRUE(budget.WithinPrefetchLimit());
  budget.Acquire(80 * kKiB);  // demand may use the reserve
  EXPECT_EQ(budget.used(), 380 * kKiB);
  EXPECT_FALSE(budget.WithinPrefetchLimit());
  EXPECT_FALSE(budget.TryAcquire(1));
  budget.Release(380 * kKiB);
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(budget.peak(), 380 * kKiB);
}

TEST(MemoryBudgetTest, ReserveDefaultsToAQuarterAndKeepsRoomForOneRead) {
  EXPECT_EQ(MemoryBudget(256 * kMiB).demand_reserve(), 64 * kMiB);
  EXPECT_EQ(MemoryBudget(2 * kMiB).demand_reserve(), kMiB);
  EXPECT_EQ(MemoryBudget(512 * kKiB).demand_reserve(), 512 * kKiB);
  EXPECT_EQ(MemoryBudget(100, 10).demand_reserve(), 100u);
  EXPECT_EQ(MemoryBudget(100 * kMiB, 0).demand_reserve(), 64 * kKiB);
  EXPECT_EQ(MemoryBudget(100 * kMiB, 200 * kMiB).demand_reserve(), 100 * kMiB);
}

TEST(MemoryBudgetTest, AcquireWaitsForRelease) {
  MemoryBudget budget(100);
  budget.Acquire(80);
  std::atomic<bool> acquired{false};
  std::thread waiter([&] {
    budget.Acquire(50);
    acquired = true;
  });
  // 80 + 50 > 100: cannot have been granted before the release below.
  EXPECT_FALSE(acquired.load());
  budget.Release(80);
  waiter.join();
  EXPECT_TRUE(acquired.load());
  EXPECT_EQ(budget.used(), 50u);
  EXPECT_LE(budget.peak(), 100u);
}

TEST(MemoryBudgetTest, RequestLargerThanTheLimitIsGrantedWhenNothingIsHeld) {
  MemoryBudget budget(100);
  budget.Acquire(10);
  std::thread waiter([&] { budget.Acquire(500); });
  budget.Release(10);
  waiter.join();
  EXPECT_EQ(budget.used(), 500u);
  budget.Release(500);
}

// ---- FetchPool ---------------------------------------------------------------------------------

TEST(FetchPoolTest, RunsEveryTask) {
  std::atomic<int> ran{0};
  {
    FetchPool pool(3);
    std::vector<std::promise<void>> done(20);
    for (auto& d : done) {
      ASSERT_TRUE(pool.Submit(nullptr, [&ran, &d](bool run) {
        if (run) ++ran;
        d.set_value();
      }));
    }
    for (auto& d : done) d.get_future().wait();
  }
  EXPECT_EQ(ran.load(), 20);
}

TEST(FetchPoolTest, CancelQueuedCancelsOnlyThatOwnersWaitingTasks) {
  FetchPool pool(1);
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::promise<void> started;
  int owner_a = 0, owner_b = 0;
  // Occupies the only thread until the gate opens.
  ASSERT_TRUE(pool.Submit(&owner_b, [&, open](bool) {
    started.set_value();
    open.wait();
  }));
  started.get_future().wait();
  std::vector<int> calls;  // 1: ran, 0: cancelled; written by one thread at a time
  std::mutex mu;
  std::promise<void> b_done;
  ASSERT_TRUE(pool.Submit(&owner_a, [&](bool run) {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back(run ? 1 : 0);
  }));
  ASSERT_TRUE(pool.Submit(&owner_b, [&](bool run) {
    {
      std::lock_guard<std::mutex> lock(mu);
      calls.push_back(run ? 11 : 10);
    }
    b_done.set_value();
  }));
  pool.CancelQueued(&owner_a);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(calls, std::vector<int>{0});
  }
  gate.set_value();
  b_done.get_future().wait();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(calls, (std::vector<int>{0, 11}));
}

TEST(FetchPoolTest, DestructorCancelsQueuedTasksAndWaitsForRunningOnes) {
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::promise<void> started;
  std::atomic<int> ran{0}, cancelled{0};
  std::thread opener;
  {
    FetchPool pool(1);
    ASSERT_TRUE(pool.Submit(nullptr, [&, open](bool) {
      started.set_value();
      open.wait();
      ++ran;
    }));
    started.get_future().wait();
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(pool.Submit(nullptr, [&](bool run) { ++(run ? ran : cancelled); }));
    }
    // The destructor cancels the five queued tasks, then waits for the running one; the gate
    // opens once they are cancelled.
    opener = std::thread([&] {
      while (cancelled.load() < 5) std::this_thread::yield();
      gate.set_value();
    });
  }
  opener.join();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(cancelled.load(), 5);
}

}  // namespace
}  // namespace trainfeed
