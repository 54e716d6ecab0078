#include "modes/fastfile/disk_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "modes/fastfile/object_reader.h"
#include "store/testing/fake_object_store.h"

namespace trainfeed {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kKiB = 1 << 10;
constexpr uint64_t kMiB = 1 << 20;

// Bytes of block `index` of a made-up object: differ per object, block and position.
std::string BlockBytes(uint64_t seed, uint64_t index, uint64_t length) {
  std::string out(length, '\0');
  for (uint64_t i = 0; i < length; ++i) {
    out[i] = static_cast<char>((seed * 131 + index * 31 + i) % 251);
  }
  return out;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "disk_cache_test.XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class DiskCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }

  std::unique_ptr<DiskCache> OpenCache(uint64_t max_bytes = 64 * kMiB,
                                       uint64_t block_size = 64 * kKiB) {
    DiskCacheOptions options;
    options.dir = dir_.path() + "/cache";
    options.max_bytes = max_bytes;
    options.block_size = block_size;
    Result<std::unique_ptr<DiskCache>> cache = DiskCache::Open(options);
    EXPECT_TRUE(cache.ok()) << cache.status().ToString();
    return cache.ok() ? std::move(*cache) : nullptr;
  }

  static bool Put(DiskCache& cache, const CachedObject& object, uint64_t index,
                  const std::string& bytes) {
    if (!cache.BeginWrite(object, index, bytes.size())) return false;
    return cache.Write(object, index, bytes.data(), bytes.size());
  }

  static std::string Get(DiskCache& cache, const CachedObject& object, uint64_t index,
                         uint64_t length) {
    std::string out(length, '\0');
    if (!cache.Read(object, index, out.data(), length)) return "<miss>";
    return out;
  }

  TempDir dir_;
  const CachedObject a_{"bucket", "data/a.bin", "etag-a"};
  const CachedObject b_{"bucket", "data/b.bin", "etag-b"};
};

TEST(Crc32cTest, MatchesTheStandardCheckValueInHardwareAndSoftware) {
  EXPECT_EQ(Crc32c(0, "123456789", 9), 0xe3069283u);
  EXPECT_EQ(Crc32cSoftware(0, "123456789", 9), 0xe3069283u);
  EXPECT_EQ(Crc32c(0, "", 0), 0u);
  // Continuing over a split gives the same as one pass, also across the 8-byte steps.
  std::string text = BlockBytes(3, 1, 1000);
  const uint32_t whole = Crc32cSoftware(0, text.data(), text.size());
  EXPECT_EQ(Crc32c(0, text.data(), text.size()), whole);
  EXPECT_EQ(Crc32c(Crc32c(0, text.data(), 333), text.data() + 333, 667), whole);
  EXPECT_EQ(Crc32cSoftware(Crc32cSoftware(0, text.data(), 5), text.data() + 5, 995), whole);
}

TEST_F(DiskCacheTest, WrittenBlockIsReadBackAndOthersMiss) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  const std::string bytes = BlockBytes(1, 0, 64 * kKiB);
  EXPECT_FALSE(cache->Contains(a_, 0));
  EXPECT_EQ(Get(*cache, a_, 0, bytes.size()), "<miss>");
  ASSERT_TRUE(Put(*cache, a_, 0, bytes));
  EXPECT_TRUE(cache->Contains(a_, 0));
  EXPECT_EQ(Get(*cache, a_, 0, bytes.size()), bytes);
  EXPECT_EQ(Get(*cache, a_, 1, bytes.size()), "<miss>");
  EXPECT_EQ(Get(*cache, b_, 0, bytes.size()), "<miss>");
  // A block is written once: a second writer is refused.
  EXPECT_FALSE(cache->BeginWrite(a_, 0, bytes.size()));
  // The short last block of an object too.
  const std::string tail = BlockBytes(1, 7, 1234);
  ASSERT_TRUE(Put(*cache, a_, 7, tail));
  EXPECT_EQ(Get(*cache, a_, 7, tail.size()), tail);
  EXPECT_EQ(cache->block_count(), 2u);
  EXPECT_TRUE(fs::exists(cache->PathFor(a_, 7)));
  // Two levels of fan-out under the folder.
  EXPECT_EQ(fs::path(cache->PathFor(a_, 7)).parent_path().parent_path().parent_path(),
            fs::path(dir_.path() + "/cache"));
}

TEST_F(DiskCacheTest, DifferentEtagIsAMiss) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  ASSERT_TRUE(Put(*cache, a_, 0, BlockBytes(1, 0, 4 * kKiB)));
  CachedObject changed = a_;
  changed.etag = "etag-a2";
  EXPECT_FALSE(cache->Contains(changed, 0));
  EXPECT_EQ(Get(*cache, changed, 0, 4 * kKiB), "<miss>");
  // Another length for the same block is not this block either.
  EXPECT_EQ(Get(*cache, a_, 0, 4 * kKiB - 1), "<miss>");
}

TEST_F(DiskCacheTest, EvictionKeepsTheTotalWithinTheSizeAndDropsTheLeastRecentlyUsed) {
  const uint64_t block = 64 * kKiB;
  auto cache = OpenCache(5 * block + 5 * kKiB, block);  // room for 5 blocks and their headers
  ASSERT_NE(cache, nullptr);
  for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(Put(*cache, a_, i, BlockBytes(1, i, block)));
  EXPECT_EQ(cache->block_count(), 5u);
  // Block 0 is used again, so block 1 is now the oldest.
  EXPECT_NE(Get(*cache, a_, 0, block), "<miss>");
  ASSERT_TRUE(Put(*cache, a_, 5, BlockBytes(1, 5, block)));
  EXPECT_EQ(cache->block_count(), 5u);
  EXPECT_FALSE(cache->Contains(a_, 1));
  EXPECT_FALSE(fs::exists(cache->PathFor(a_, 1)));
  EXPECT_TRUE(cache->Contains(a_, 0));
  for (uint64_t i = 6; i < 40; ++i) {
    ASSERT_TRUE(Put(*cache, a_, i, BlockBytes(1, i, block)));
    ASSERT_LE(cache->used_bytes(), cache->max_bytes());
  }
  EXPECT_EQ(cache->evictions(), 35u);
  // What the index counts is what is on disk.
  uint64_t on_disk = 0, files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_.path() + "/cache")) {
    if (e.is_regular_file() && e.path().extension() == ".blk") {
      on_disk += e.file_size();
      ++files;
    }
  }
  EXPECT_EQ(on_disk, cache->used_bytes());
  EXPECT_EQ(files, cache->block_count());
  // A block larger than the whole cache is never admitted.
  EXPECT_FALSE(cache->BeginWrite(a_, 100, 6 * block));
}

TEST_F(DiskCacheTest, CorruptedTruncatedOrForeignBlockFilesAreIgnoredAndRemoved) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  const std::string bytes = BlockBytes(2, 0, 64 * kKiB);
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(Put(*cache, a_, i, bytes));

  {  // one flipped bit in the data
    std::fstream f(cache->PathFor(a_, 0), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-100, std::ios::end);
    char c;
    f.read(&c, 1);
    f.seekp(-100, std::ios::end);
    c ^= 0x10;
    f.write(&c, 1);
  }
  // cut short
  fs::resize_file(cache->PathFor(a_, 1), 1000);
  // another block's file in this block's place (as a hash collision would leave it)
  ASSERT_TRUE(Put(*cache, b_, 1, bytes));
  fs::copy_file(cache->PathFor(a_, 2), cache->PathFor(b_, 1), fs::copy_options::overwrite_existing);

  EXPECT_EQ(Get(*cache, a_, 0, bytes.size()), "<miss>");
  EXPECT_EQ(Get(*cache, a_, 1, bytes.size()), "<miss>");
  EXPECT_EQ(Get(*cache, b_, 1, bytes.size()), "<miss>");
  EXPECT_EQ(cache->rejected(), 3u);
  EXPECT_FALSE(fs::exists(cache->PathFor(a_, 0)));
  EXPECT_FALSE(fs::exists(cache->PathFor(a_, 1)));
  EXPECT_FALSE(cache->Contains(a_, 0));
  EXPECT_EQ(Get(*cache, a_, 2, bytes.size()), bytes);  // the intact one still serves
  // Rejected blocks can be cached again.
  EXPECT_TRUE(Put(*cache, a_, 0, bytes));
  EXPECT_EQ(Get(*cache, a_, 0, bytes.size()), bytes);
}

TEST_F(DiskCacheTest, ReopeningRebuildsTheIndexFromTheFolder) {
  const uint64_t block = 64 * kKiB;
  {
    auto cache = OpenCache(64 * kMiB, block);
    ASSERT_NE(cache, nullptr);
    for (uint64_t i = 0; i < 6; ++i) ASSERT_TRUE(Put(*cache, a_, i, BlockBytes(1, i, block)));
    // A crash mid-write leaves a temporary file; someone else's file shares the folder.
    std::ofstream(cache->PathFor(a_, 0) + ".tmp.1.1") << "partial";
    std::ofstream(dir_.path() + "/cache/README") << "not ours";
  }
  {
    auto cache = OpenCache(64 * kMiB, block);
    ASSERT_NE(cache, nullptr);
    EXPECT_EQ(cache->block_count(), 6u);
    for (uint64_t i = 0; i < 6; ++i) EXPECT_EQ(Get(*cache, a_, i, block), BlockBytes(1, i, block));
    EXPECT_FALSE(fs::exists(cache->PathFor(a_, 0) + ".tmp.1.1"));
    EXPECT_TRUE(fs::exists(dir_.path() + "/cache/README"));
  }
  {  // a smaller size evicts at start
    auto cache = OpenCache(3 * block + 3 * kKiB, block);
    ASSERT_NE(cache, nullptr);
    EXPECT_EQ(cache->block_count(), 3u);
    EXPECT_LE(cache->used_bytes(), cache->max_bytes());
  }
  {  // another block size keys blocks differently: nothing of the old ones is served
    auto cache = OpenCache(64 * kMiB, 32 * kKiB);
    ASSERT_NE(cache, nullptr);
    EXPECT_EQ(Get(*cache, a_, 0, 32 * kKiB), "<miss>");
  }
}

TEST_F(DiskCacheTest, OneProcessAtATimeUsesAFolder) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  DiskCacheOptions options;
  options.dir = dir_.path() + "/cache";
  Result<std::unique_ptr<DiskCache>> second = DiskCache::Open(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kAlreadyExists);
  cache.reset();
  EXPECT_TRUE(DiskCache::Open(options).ok());
}

TEST_F(DiskCacheTest, WriteBacklogLimitsAdmission) {
  DiskCacheOptions options;
  options.dir = dir_.path() + "/cache";
  options.block_size = 64 * kKiB;
  options.write_backlog_bytes = 100 * kKiB;
  Result<std::unique_ptr<DiskCache>> cache = DiskCache::Open(options);
  ASSERT_TRUE(cache.ok());
  DiskCache& c = **cache;
  EXPECT_TRUE(c.BeginWrite(a_, 0, 64 * kKiB));
  EXPECT_FALSE(c.BeginWrite(a_, 1, 64 * kKiB));  // 128 KiB waiting would pass the limit
  c.AbandonWrite(a_, 0, 64 * kKiB);
  EXPECT_FALSE(c.Contains(a_, 0));
  EXPECT_TRUE(c.BeginWrite(a_, 1, 64 * kKiB));
  const std::string bytes = BlockBytes(4, 1, 64 * kKiB);
  EXPECT_TRUE(c.Write(a_, 1, bytes.data(), bytes.size()));
  EXPECT_TRUE(c.BeginWrite(a_, 2, 64 * kKiB));
  c.AbandonWrite(a_, 2, 64 * kKiB);
}

TEST_F(DiskCacheTest, ConcurrentReadersAndWritersSeeWholeBlocksOnly) {
  const uint64_t block = 16 * kKiB;
  auto cache = OpenCache(40 * block, block);  // small: eviction runs all the time
  ASSERT_NE(cache, nullptr);
  std::atomic<int> wrong{0}, hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::string out(block, '\0');
      for (int round = 0; round < 300; ++round) {
        const uint64_t index = static_cast<uint64_t>((round * 7 + t * 13) % 64);
        if (cache->Read(a_, index, out.data(), block)) {
          ++hits;
          if (out != BlockBytes(1, index, block)) ++wrong;
        } else if (cache->BeginWrite(a_, index, block)) {
          const std::string bytes = BlockBytes(1, index, block);
          cache->Write(a_, index, bytes.data(), bytes.size());
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(hits.load(), 0);
  EXPECT_EQ(cache->rejected(), 0u);
  EXPECT_LE(cache->used_bytes(), cache->max_bytes());
}

// ---- ObjectReader with a DiskCache -------------------------------------------------------------

class DiskCacheReaderTest : public DiskCacheTest {
 protected:
  void SetUp() override {
    DiskCacheTest::SetUp();
    fake_.CreateBucket("b");
    cache_ = OpenCache(256 * kMiB, kMiB);
    ASSERT_NE(cache_, nullptr);
  }

  ObjectInfo Put(const std::string& key, uint64_t size, uint64_t seed = 7) {
    EXPECT_TRUE(fake_.PutRamp("b", key, size, seed).ok());
    Result<ObjectInfo> info = fake_.Head({"b", key});
    EXPECT_TRUE(info.ok());
    return info.ok() ? *info : ObjectInfo{};
  }

  std::unique_ptr<ObjectReader> Open(const ObjectInfo& info, ReaderOptions options = {}) {
    options.cache = cache_.get();
    return std::make_unique<ObjectReader>(fake_, ObjectRef{"b", info.key}, info, pool_, budget_,
                                          stats_, options);
  }

  // Reads all of `reader` in `piece`-byte reads and compares with the ramp of `seed`.
  static bool ReadsWhole(ObjectReader& reader, const ObjectInfo& info, uint64_t seed,
                         uint64_t piece) {
    std::string buf(piece, '\0');
    for (uint64_t off = 0; off < info.size; off += piece) {
      Result<size_t> n = reader.Read(off, buf.data(), piece);
      if (!n.ok()) return false;
      if (std::string_view(buf.data(), *n) !=
          FakeObjectStore::RampBytes(seed, off, std::min(info.size, off + piece))) {
        return false;
      }
    }
    return true;
  }

  // Cache writes run on the pool after the reads returned: waits until `blocks` are cached.
  bool WaitForBlocks(uint64_t blocks) {
    for (int i = 0; i < 1000; ++i) {
      if (cache_->block_count() >= blocks) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  FakeObjectStore fake_;
  std::unique_ptr<DiskCache> cache_;
  MemoryBudget budget_{1ull << 30};
  ReadStats stats_;
  FetchPool pool_{4};  // last: stops before the cache, budget and stats its tasks use go away
};

TEST_F(DiskCacheReaderTest, SecondReaderIsServedFromTheCacheWithoutGets) {
  ObjectInfo info = Put("epoch", 20 * kMiB + 12345);
  ASSERT_TRUE(ReadsWhole(*Open(info), info, 7, 128 * kKiB));
  ASSERT_TRUE(WaitForBlocks(21));  // 20 whole blocks and the short last one
  EXPECT_EQ(stats_.cache_writes.load(), 21u);
  const uint64_t first_pass_bytes = static_cast<uint64_t>(fake_.get_bytes());
  EXPECT_EQ(first_pass_bytes, info.size);  // aligned chunks: each byte fetched once

  fake_.ResetCounters();
  stats_.cache_hits = 0;
  ASSERT_TRUE(ReadsWhole(*Open(info), info, 7, kMiB));
  EXPECT_EQ(fake_.get_calls(), 0);
  EXPECT_EQ(stats_.cache_hits.load(), 21u);
  EXPECT_EQ(stats_.cache_bytes.load(), info.size);

  // Random reads are served from it too.
  auto reader = Open(info);
  for (uint64_t off : {5 * kMiB + 17, uint64_t{77}, 19 * kMiB + 999, 3 * kMiB}) {
    std::string buf(300 * kKiB, '\0');
    Result<size_t> n = reader->Read(off, buf.data(), buf.size());
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(std::string_view(buf.data(), *n),
              FakeObjectStore::RampBytes(7, off, std::min(info.size, off + buf.size())));
  }
  EXPECT_EQ(fake_.get_calls(), 0);
}

TEST_F(DiskCacheReaderTest, RandomReadsFetchWholeBlocksSoTheyCanBeCached) {
  ObjectInfo info = Put("rand", 8 * kMiB + 5, 3);
  auto reader = Open(info);
  std::string buf(4 * kKiB, '\0');
  ASSERT_TRUE(reader->Read(5 * kMiB + 3, buf.data(), buf.size()).ok());
  EXPECT_EQ(fake_.get_bytes(), static_cast<int64_t>(kMiB));
  ASSERT_TRUE(WaitForBlocks(1));
  EXPECT_TRUE(cache_->Contains({"b", "rand", info.etag}, 5));
  reader.reset();
  fake_.ResetCounters();
  auto again = Open(info);
  ASSERT_TRUE(again->Read(5 * kMiB + 100, buf.data(), buf.size()).ok());
  EXPECT_EQ(std::string_view(buf),
            FakeObjectStore::RampBytes(3, 5 * kMiB + 100, 5 * kMiB + 100 + 4 * kKiB));
  EXPECT_EQ(fake_.get_calls(), 0);
}

TEST_F(DiskCacheReaderTest, ChangedObjectIsFetchedAgainNotServedFromTheCache) {
  ObjectInfo old_info = Put("changes", 4 * kMiB, 1);
  ASSERT_TRUE(ReadsWhole(*Open(old_info), old_info, 1, kMiB));
  ASSERT_TRUE(WaitForBlocks(4));
  ObjectInfo new_info = Put("changes", 4 * kMiB, 2);  // same size, new bytes, new ETag
  ASSERT_NE(new_info.etag, old_info.etag);
  fake_.ResetCounters();
  ASSERT_TRUE(ReadsWhole(*Open(new_info), new_info, 2, kMiB));
  EXPECT_GT(fake_.get_calls(), 0);
  EXPECT_EQ(fake_.get_bytes(), static_cast<int64_t>(new_info.size));
}

TEST_F(DiskCacheReaderTest, CorruptedBlockIsFetchedAgain) {
  ObjectInfo info = Put("corrupt", 4 * kMiB, 5);
  ASSERT_TRUE(ReadsWhole(*Open(info), info, 5, kMiB));
  ASSERT_TRUE(WaitForBlocks(4));
  const std::string path = cache_->PathFor({"b", "corrupt", info.etag}, 2);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5000, std::ios::end);
    f.write("garbage", 7);
  }
  fake_.ResetCounters();
  ASSERT_TRUE(ReadsWhole(*Open(info), info, 5, kMiB));
  EXPECT_EQ(fake_.get_calls(), 1);
  EXPECT_EQ(fake_.get_bytes(), static_cast<int64_t>(kMiB));
  EXPECT_EQ(cache_->rejected(), 1u);
}

TEST_F(DiskCacheReaderTest, ConcurrentReadersShareTheCache) {
  ObjectInfo info = Put("shared", 12 * kMiB + 77, 9);
  std::atomic<int> failures{0};
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        auto reader = Open(info);
        if (!ReadsWhole(*reader, info, 9, (t + 1) * 96 * kKiB)) ++failures;
      });
    }
    for (std::thread& t : threads) t.join();
    if (pass == 0) {
      ASSERT_TRUE(WaitForBlocks(13));
      fake_.ResetCounters();
    }
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(fake_.get_calls(), 0);
  EXPECT_LE(budget_.peak(), budget_.limit());
}

}  // namespace
}  // namespace trainfeed
