#include "advise/probe.h"

#include <gtest/gtest.h>

#include "store/testing/fake_object_store.h"

namespace trainfeed {
namespace {

class ProbeTest : public ::testing::Test {
 protected:
  void SetUp() override { store_.CreateBucket("b"); }

  DatasetStats Listed(const std::string& prefix) {
    Result<DatasetStats> s = CollectDatasetStats(store_, *ParseStoreUri("s3://b/" + prefix));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  }

  FakeObjectStore store_;
};

TEST_F(ProbeTest, ReadsWithinItsBoundsAndMeasuresPositiveRates) {
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(store_.PutRamp("b", "d/s" + std::to_string(i), 2000).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store_.PutRamp("b", "d/l" + std::to_string(i), 3 << 20).ok());
  DatasetStats stats = Listed("d/");
  ProbeOptions options;
  options.max_large_bytes = 4 << 20;  // of the 9 MiB: 4 parts of 1 MiB
  options.part_size = 1 << 20;
  options.concurrency = 8;
  int64_t gets_before = store_.get_calls();
  Result<ProbeResult> p = RunProbe(store_, "b", stats, options);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->small_gets, 64u);
  // The 3 MiB objects are small files too (< 50 MB): a sampled one is read as its first 1 MiB.
  bool explained = false;
  for (uint64_t k = 0; k <= 3; ++k) explained |= p->small_bytes == k * (1 << 20) + (64 - k) * 2000;
  EXPECT_TRUE(explained) << p->small_bytes;
  EXPECT_EQ(p->large_gets, 4u);
  EXPECT_EQ(p->large_bytes, 4u << 20);
  EXPECT_TRUE(p->large_measured);
  EXPECT_EQ(store_.get_calls() - gets_before, 68);
  EXPECT_TRUE(p->rates.measured);
  EXPECT_GT(p->rates.objects_per_second, 0);
  EXPECT_GT(p->rates.object_latency_seconds, 0);
  EXPECT_GT(p->rates.bytes_per_second, 0);
  EXPECT_EQ(p->note, "");
}

TEST_F(ProbeTest, LargeSmallFilesAreReadOnlyInPart) {
  ASSERT_TRUE(store_.PutRamp("b", "d/a", 3 << 20).ok());  // small (< 50 MB) but over 1 MiB
  DatasetStats stats = Listed("d/");
  ProbeOptions options;
  options.max_large_bytes = 0;
  Result<ProbeResult> p = RunProbe(store_, "b", stats, options);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->small_gets, 1u);
  EXPECT_EQ(p->small_bytes, 1u << 20);
}

TEST_F(ProbeTest, TinyObjectsOnlyKeepTheDefaultStreamingRate) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store_.PutRamp("b", "d/s" + std::to_string(i), 100).ok());
  Result<ProbeResult> p = RunProbe(store_, "b", Listed("d/"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->small_gets, 5u);
  EXPECT_FALSE(p->large_measured);
  EXPECT_EQ(p->rates.bytes_per_second, DefaultReadRates().bytes_per_second);
  EXPECT_NE(p->note.find("streaming rate not measured"), std::string::npos) << p->note;
}

TEST_F(ProbeTest, NoSmallObjectsProbesRequestsWithRangedHeads) {
  // PutRamp keeps bodies in memory, so a "large" object here is one at the 50 MB line.
  ASSERT_TRUE(store_.PutRamp("b", "d/big", kSmallFileBytes).ok());
  DatasetStats stats = Listed("d/");
  ASSERT_EQ(stats.small_objects, 0u);
  ProbeOptions options;
  options.max_large_bytes = 2 << 20;
  Result<ProbeResult> p = RunProbe(store_, "b", stats, options);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->small_gets, options.max_small_gets);
  EXPECT_EQ(p->small_bytes, options.max_small_gets * 4096);
  EXPECT_NE(p->note.find("4 KiB ranged GETs"), std::string::npos) << p->note;
}

TEST_F(ProbeTest, AnObjectGoneSinceTheListingFailsByName) {
  ASSERT_TRUE(store_.PutRamp("b", "d/a", 10).ok());
  DatasetStats stats = Listed("d/");
  ASSERT_TRUE(store_.Delete({"b", "d/a"}).ok());
  Result<ProbeResult> p = RunProbe(store_, "b", stats);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(p.status().message().find("probe GET mem://b/d/a"), std::string::npos)
      << p.status().ToString();
}

}  // namespace
}  // namespace trainfeed
