#include "advise/dataset_stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "store/testing/fake_object_store.h"

namespace trainfeed {
namespace {

ObjectInfo Obj(std::string key, uint64_t size) {
  ObjectInfo info;
  info.key = std::move(key);
  info.size = size;
  return info;
}

DatasetStats Fold(const std::string& prefix, std::vector<ObjectInfo> objects) {
  std::sort(objects.begin(), objects.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  DatasetStatsBuilder builder(prefix);
  for (const ObjectInfo& o : objects) builder.Add(o);
  return builder.Finish();
}

TEST(SizeHistogramTest, BucketsAreEighthsOfAnOctave) {
  EXPECT_EQ(SizeHistogram::BucketOf(0), 0);
  EXPECT_EQ(SizeHistogram::BucketOf(1), 1);
  EXPECT_EQ(SizeHistogram::BucketOf(2), 1 + 8);
  EXPECT_EQ(SizeHistogram::BucketOf(3), 1 + 8 + 4);  // log2(1.5) = 0.585 -> 4/8
  EXPECT_EQ(SizeHistogram::BucketOf(1024), 1 + 80);
  EXPECT_EQ(SizeHistogram::BucketOf(2047), 1 + 80 + 7);
  EXPECT_EQ(SizeHistogram::BucketOf(~uint64_t{0}), 1 + 63 * 8 + 7);
}

TEST(SizeHistogramTest, EmptyAndSingle) {
  SizeHistogram h;
  EXPECT_EQ(h.Quantile(0.5), 0u);
  EXPECT_TRUE(h.Octaves().empty());
  h.Add(12345);
  for (double q : {0.0, 0.1, 0.5, 0.99, 1.0}) EXPECT_EQ(h.Quantile(q), 12345u) << q;
}

TEST(SizeHistogramTest, QuantilesWithinTheDocumentedErrorOfExact) {
  // Log-normal sizes spread over ~10 octaves, as real datasets are.
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(std::log(200'000.0), 2.0);
  std::vector<uint64_t> sizes;
  SizeHistogram h;
  for (int i = 0; i < 100'000; ++i) {
    uint64_t s = static_cast<uint64_t>(dist(rng)) + 1;
    sizes.push_back(s);
    h.Add(s);
  }
  std::sort(sizes.begin(), sizes.end());
  EXPECT_EQ(h.count(), sizes.size());
  EXPECT_EQ(h.min(), sizes.front());
  EXPECT_EQ(h.max(), sizes.back());
  for (double q : {0.01, 0.10, 0.25, 0.50, 0.90, 0.99, 0.999}) {
    uint64_t rank = static_cast<uint64_t>(std::ceil(q * sizes.size()));
    double exact = static_cast<double>(sizes[rank - 1]);
    double estimate = static_cast<double>(h.Quantile(q));
    EXPECT_LE(std::abs(estimate / exact - 1), SizeHistogram::kRelativeError)
        << "q=" << q << " exact=" << exact << " estimate=" << estimate;
  }
}

TEST(SizeHistogramTest, SmallSizesAreExact) {
  SizeHistogram h;
  for (uint64_t s = 0; s <= 10; ++s) h.Add(s);  // 11 values: 0..10
  EXPECT_EQ(h.Quantile(0.0), 0u);
  EXPECT_EQ(h.Quantile(0.05), 0u);  // rank 1
  EXPECT_EQ(h.Quantile(0.15), 1u);  // rank 2
  EXPECT_EQ(h.Quantile(0.25), 2u);  // rank 3
  EXPECT_EQ(h.Quantile(0.50), 5u);  // rank 6
  EXPECT_EQ(h.Quantile(1.0), 10u);
}

TEST(SizeHistogramTest, OctavesCoverEverySizeOnce) {
  SizeHistogram h;
  h.Add(0);
  h.Add(1000);     // [512, 1024)
  h.Add(1023);
  h.Add(5 << 20);  // [4 MiB, 8 MiB)
  std::vector<SizeHistogram::Octave> rows = h.Octaves();
  ASSERT_EQ(rows.size(), 1u + (22 - 9 + 1));  // empty row, then octaves 2^9 .. 2^22
  EXPECT_EQ(rows[0].to, 0u);
  EXPECT_EQ(rows[0].objects, 1u);
  EXPECT_EQ(rows[1].from, 512u);
  EXPECT_EQ(rows[1].to, 1024u);
  EXPECT_EQ(rows[1].objects, 2u);
  EXPECT_EQ(rows[1].bytes, 2023u);
  EXPECT_EQ(rows.back().from, 4u << 20);
  EXPECT_EQ(rows.back().objects, 1u);
  uint64_t total = 0;
  for (const auto& r : rows) total += r.objects;
  EXPECT_EQ(total, 4u);
}

TEST(DatasetStatsTest, CountsSharesExtremesAndFolderShape) {
  DatasetStats s = Fold("data/", {
                                     Obj("data/a/x1", 10),
                                     Obj("data/a/x2", 20),
                                     Obj("data/a/x3", 60'000'000),
                                     Obj("data/a/sub/deep/y", 5),
                                     Obj("data/b/", 0),  // folder marker: not an object
                                     Obj("data/b/z", 50'000'000),
                                     Obj("data/top", 1),
                                 });
  EXPECT_EQ(s.objects, 6u);
  EXPECT_EQ(s.bytes, 10u + 20 + 60'000'000 + 5 + 50'000'000 + 1);
  // 50 MB exactly is not small: the rule is "< 50 MB".
  EXPECT_EQ(s.small_objects, 4u);
  EXPECT_EQ(s.small_bytes, 36u);
  EXPECT_EQ(s.smallest.key, "data/top");
  EXPECT_EQ(s.largest.key, "data/a/x3");
  EXPECT_EQ(s.largest.size, 60'000'000u);
  // data/a/ holds x1, x2, x3 and sub/: 4 entries; data/ holds a/, b/, top: 3.
  EXPECT_EQ(s.widest_folder, "data/a/");
  EXPECT_EQ(s.widest_folder_entries, 4u);
  EXPECT_EQ(s.max_depth, 3);  // a/sub/deep/y
  EXPECT_TRUE(s.folder_prefix);
  EXPECT_EQ(s.small_sample.size(), 4u);
  ASSERT_EQ(s.largest_objects.size(), 6u);
  EXPECT_EQ(s.largest_objects[0].key, "data/a/x3");
  EXPECT_EQ(s.largest_objects[1].key, "data/b/z");
}

TEST(DatasetStatsTest, WidestFolderCountsSubfoldersOnce) {
  std::vector<ObjectInfo> objects;
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 3; ++j) {
      objects.push_back(Obj("r/f" + std::to_string(i) + "/o" + std::to_string(j), 1));
    }
  }
  DatasetStats s = Fold("r/", objects);
  EXPECT_EQ(s.widest_folder, "r/");
  EXPECT_EQ(s.widest_folder_entries, 5u);  // five sub-folders, not fifteen keys
  EXPECT_EQ(s.max_depth, 1);
}

TEST(DatasetStatsTest, PartialPrefixIsAFolderOnlyWhenEveryKeyIsBelowIt) {
  DatasetStats folder = Fold("d/train", {Obj("d/train/a", 1), Obj("d/train/b/c", 1)});
  EXPECT_TRUE(folder.folder_prefix);
  EXPECT_EQ(folder.widest_folder, "d/train/");
  EXPECT_EQ(folder.max_depth, 2);  // counted from d/: train/b/c
  DatasetStats partial = Fold("d/train", {Obj("d/train-01.csv", 1), Obj("d/train/a", 1)});
  EXPECT_FALSE(partial.folder_prefix);
  DatasetStats root = Fold("", {Obj("a", 1), Obj("b/c", 1)});
  EXPECT_TRUE(root.folder_prefix);
  EXPECT_EQ(root.widest_folder, "");
  EXPECT_EQ(root.widest_folder_entries, 2u);
}

TEST(DatasetStatsTest, ProbeSamplesStayBoundedAndUniform) {
  DatasetStatsBuilder builder("p/");
  const int n = 100'000;
  uint64_t sampled_first_half = 0;
  for (int i = 0; i < n; ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "p/%08d", i);
    builder.Add(Obj(key, 1000 + (i % 977) * 100'000));  // some of these are >= 50 MB
  }
  DatasetStats s = builder.Finish();
  EXPECT_EQ(s.objects, static_cast<uint64_t>(n));
  ASSERT_EQ(s.small_sample.size(), DatasetStatsBuilder::kProbeSmallSample);
  for (const KeyAndSize& k : s.small_sample) {
    EXPECT_LT(k.size, kSmallFileBytes);
    if (k.key < "p/00050000") ++sampled_first_half;
  }
  // A uniform sample of 64 lands about half in each half; all in one would mean a biased sample.
  EXPECT_GT(sampled_first_half, 12u);
  EXPECT_LT(sampled_first_half, 52u);
  ASSERT_EQ(s.largest_objects.size(), DatasetStatsBuilder::kProbeLargest);
  EXPECT_EQ(s.largest_objects.front().size, 1000u + 976 * 100'000);
  for (size_t i = 1; i < s.largest_objects.size(); ++i) {
    EXPECT_GE(s.largest_objects[i - 1].size, s.largest_objects[i].size);
  }
}

TEST(CollectDatasetStatsTest, ListsEveryPageAndFailsClearly) {
  FakeObjectStore store;
  store.CreateBucket("b");
  for (int i = 0; i < 2500; ++i) {  // three listing pages
    std::string key = "ds/" + std::to_string(i % 10) + "/o" + std::to_string(i);
    ASSERT_TRUE(store.PutRamp("b", key, i % 100).ok());
  }
  ASSERT_TRUE(store.PutRamp("b", "other/x", 1).ok());
  Result<DatasetStats> s = CollectDatasetStats(store, *ParseStoreUri("s3://b/ds/"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->objects, 2500u);
  // ds/ has 10 entries; each ds/N/ has 250, and the first of those wins the tie.
  EXPECT_EQ(s->widest_folder, "ds/0/");
  EXPECT_EQ(s->widest_folder_entries, 250u);
  EXPECT_EQ(s->max_depth, 1);
  EXPECT_EQ(s->uri, "s3://b/ds/");
  EXPECT_GE(store.list_calls(), 3);

  Result<DatasetStats> empty = CollectDatasetStats(store, *ParseStoreUri("s3://b/nothing/"));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(empty.status().message().find("no objects match s3://b/nothing/"), std::string::npos);

  Result<DatasetStats> missing = CollectDatasetStats(store, *ParseStoreUri("s3://nobucket/x/"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);

  std::atomic<bool> cancel{true};
  Result<DatasetStats> cancelled = CollectDatasetStats(store, *ParseStoreUri("s3://b/ds/"), &cancel);
  ASSERT_FALSE(cancelled.ok());
  EXPECT_EQ(cancelled.status().code(), ErrorCode::kCancelled);
}

}  // namespace
}  // namespace trainfeed
