#include "advise/recommend.h"

#include <gtest/gtest.h>

namespace trainfeed {
namespace {

constexpr uint64_t kGB = 1'000'000'000;

// A dataset of `objects` objects of `size` bytes each, all small or all large by that size.
DatasetStats Uniform(uint64_t objects, uint64_t size) {
  DatasetStats s;
  s.uri = "s3://b/data/";
  s.objects = objects;
  s.bytes = objects * size;
  if (size < kSmallFileBytes) {
    s.small_objects = objects;
    s.small_bytes = s.bytes;
  }
  s.sizes.Add(size);
  s.smallest = {"data/a", size};
  s.largest = {"data/z", size};
  s.listing_seconds = 0.5;
  return s;
}

// Round numbers so the expected times are easy to write down.
ReadRates Rates(double objects_per_second = 1000, double bytes_per_second = 100e6) {
  ReadRates r;
  r.objects_per_second = objects_per_second;
  r.object_latency_seconds = 0.02;
  r.bytes_per_second = bytes_per_second;
  r.measured = true;
  return r;
}

AdviseConstraints Disk(uint64_t bytes) {
  AdviseConstraints c;
  c.disk_free_bytes = bytes;
  return c;
}

std::string Name(const Advice& a) { return std::string(RecommendationName(a.recommendation)); }

TEST(RecommendTest, SmallDatasetThatFitsIsFile) {
  Advice a = Recommend(Uniform(1000, 100'000), Rates(), Disk(10 * kGB));
  EXPECT_EQ(Name(a), "File");
  EXPECT_EQ(a.rule, "file-fits");
  EXPECT_NE(a.reasons.find("1,000 objects"), std::string::npos) << a.reasons;
}

TEST(RecommendTest, DiskEdgeDecidesFile) {
  DatasetStats large = Uniform(10, 100'000'000);  // 1 GB of 100 MB files
  EXPECT_EQ(Name(Recommend(large, Rates(), Disk(large.bytes))), "File");
  Advice a = Recommend(large, Rates(), Disk(large.bytes - 1));
  EXPECT_EQ(Name(a), "FastFile");
  EXPECT_EQ(a.rule, "large-files-fastfile");
  EXPECT_NE(a.reasons.find("needs 953.7 MiB of local disk"), std::string::npos) << a.reasons;
}

TEST(RecommendTest, FileModeSizeEdgeIs100GB) {
  ReadRates fast = Rates(1000, 1e12);  // so the start-up rule never decides
  DatasetStats at = Uniform(100, kGB);
  ASSERT_EQ(at.bytes, kFileModeMaxBytes);
  EXPECT_EQ(Name(Recommend(at, fast, Disk(1000 * kGB))), "File");
  DatasetStats over = at;
  over.bytes += 1;
  Advice a = Recommend(over, fast, Disk(1000 * kGB));
  EXPECT_EQ(Name(a), "FastFile");
  EXPECT_NE(a.reasons.find("above File mode's ~100 GB"), std::string::npos) << a.reasons;
}

TEST(RecommendTest, StartupEdgeFollowsTrainingHours) {
  // Empty objects: File's start-up is objects / 1000 s; 10% of one hour is 360 s.
  AdviseConstraints c = Disk(1000 * kGB);
  c.training_hours = 1;
  EXPECT_EQ(Name(Recommend(Uniform(359'900, 0), Rates(), c)), "File");
  Advice a = Recommend(Uniform(360'100, 0), Rates(), c);
  EXPECT_EQ(Name(a), "pack-then-File");
  EXPECT_EQ(a.rule, "small-files-pack-file");
  EXPECT_NE(a.reasons.find("more than 10% of 1 h of training"), std::string::npos) << a.reasons;
}

TEST(RecommendTest, StartupEdgeWithoutTrainingHoursIsAnHour) {
  AdviseConstraints c = Disk(1000 * kGB);
  EXPECT_EQ(Name(Recommend(Uniform(3'600'000, 0), Rates(), c)), "File");
  EXPECT_EQ(Name(Recommend(Uniform(3'600'001, 0), Rates(), c)), "pack-then-File");
}

TEST(RecommendTest, ManySmallFilesEdgeIsHalfTheObjects) {
  DatasetStats s = Uniform(10, 100'000'000);
  AdviseConstraints c = Disk(1);  // File is out
  s.small_objects = 5;
  s.small_bytes = 5;
  EXPECT_EQ(Name(Recommend(s, Rates(), c)), "pack-then-FastFile");
  s.small_objects = 4;
  s.small_bytes = 4;
  EXPECT_EQ(Name(Recommend(s, Rates(), c)), "FastFile");
}

TEST(RecommendTest, SmallFilesPackedIntoFileWhenThePackedSetFits) {
  // 2 M files of 10 KB: 2,000 s of per-object start-up; packed, ~147 shards download in ~220 s.
  AdviseConstraints c = Disk(1000 * kGB);
  c.training_hours = 1;
  Advice a = Recommend(Uniform(2'000'000, 10'000), Rates(), c);
  EXPECT_EQ(Name(a), "pack-then-File");
  EXPECT_EQ(a.estimates.packed_objects, 147u);
  EXPECT_LT(a.estimates.packed_file.startup_seconds, 360);
  EXPECT_GT(a.estimates.file.startup_seconds, 2000);
}

TEST(RecommendTest, SmallFilesPackedIntoFastFileWhenEvenPackedTheyDoNotFit) {
  DatasetStats s = Uniform(5000, 1'000'000);  // 5 GB of 1 MB files
  // Room for the files themselves but not the tar headers: the packed set is what must fit.
  Advice a = Recommend(s, Rates(), Disk(s.bytes + 1000));
  EXPECT_EQ(Name(a), "File");
  s.listing_seconds = 0;
  a = Recommend(s, Rates(), Disk(s.bytes - 1));
  EXPECT_EQ(Name(a), "pack-then-FastFile");
  EXPECT_EQ(a.rule, "small-files-pack-fastfile");
  EXPECT_LT(a.estimates.packed_fastfile.epoch_seconds, a.estimates.fastfile.epoch_seconds);
}

TEST(RecommendTest, NoPackMeansFSxLustre) {
  AdviseConstraints c = Disk(1);
  c.no_pack = true;
  Advice a = Recommend(Uniform(5000, 1'000'000), Rates(), c);
  EXPECT_EQ(Name(a), "FSxLustre");
  EXPECT_EQ(a.rule, "small-files-no-pack-fsx");
  // --no-pack does not matter when File mode suits the data.
  c.disk_free_bytes = 1000 * kGB;
  EXPECT_EQ(Name(Recommend(Uniform(5000, 1'000'000), Rates(), c)), "File");
}

TEST(RecommendTest, SequentialOnlyLargeFilesArePipe) {
  AdviseConstraints c = Disk(1);
  c.sequential_only = true;
  Advice a = Recommend(Uniform(10, 200'000'000), Rates(), c);
  EXPECT_EQ(Name(a), "Pipe");
  EXPECT_EQ(a.rule, "large-files-sequential-pipe");
  // Small files still go to pack: AWS wants them serialised for Pipe too.
  EXPECT_EQ(Name(Recommend(Uniform(5000, 1'000'000), Rates(), c)), "pack-then-FastFile");
}

TEST(RecommendTest, InstanceCountIsReported) {
  AdviseConstraints c = Disk(10 * kGB);
  c.instance_count = 4;
  Advice a = Recommend(Uniform(1000, 1'000'000), Rates(), c);
  EXPECT_NE(a.reasons.find("With 4 instances"), std::string::npos) << a.reasons;
}

TEST(EstimateModesTest, FollowsTheDocumentedFormulas) {
  DatasetStats s = Uniform(2000, 500'000);  // 1 GB
  s.listing_seconds = 1.5;
  ModeEstimates e = EstimateModes(s, Rates(), s.bytes);
  EXPECT_DOUBLE_EQ(e.file.startup_seconds, 2000 / 1000.0 + 1e9 / 100e6);
  EXPECT_DOUBLE_EQ(e.file.epoch_seconds, 1e9 / kLocalDiskBytesPerSecond);
  EXPECT_EQ(e.file.disk_bytes, s.bytes);
  EXPECT_TRUE(e.file.fits_disk);
  EXPECT_DOUBLE_EQ(e.fastfile.startup_seconds, 1.5);
  EXPECT_DOUBLE_EQ(e.fastfile.epoch_seconds, 10 + 2000 * 0.02 / kFastFileReaders);
  EXPECT_EQ(e.fastfile.disk_bytes, 0u);
  EXPECT_DOUBLE_EQ(e.pipe.epoch_seconds, e.file.startup_seconds);
  EXPECT_EQ(e.packed_bytes, s.bytes + 2000 * kPackOverheadBytesPerObject);
  EXPECT_EQ(e.packed_objects, 7u);  // 1.002 GB / 150 MB, rounded up
  EXPECT_FALSE(e.packed_file.fits_disk);  // the headers do not fit in exactly s.bytes
  EXPECT_DOUBLE_EQ(e.packed_fastfile.startup_seconds, 1.5 / 2 * 1);  // 2 listing pages -> 1
}

TEST(RecommendTest, EveryValueHasItsDocumentedName) {
  EXPECT_EQ(RecommendationName(InputRecommendation::kFile), "File");
  EXPECT_EQ(RecommendationName(InputRecommendation::kFastFile), "FastFile");
  EXPECT_EQ(RecommendationName(InputRecommendation::kPipe), "Pipe");
  EXPECT_EQ(RecommendationName(InputRecommendation::kFSxLustre), "FSxLustre");
  EXPECT_EQ(RecommendationName(InputRecommendation::kPackThenFile), "pack-then-File");
  EXPECT_EQ(RecommendationName(InputRecommendation::kPackThenFastFile), "pack-then-FastFile");
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(1234567), "1,234,567");
}

}  // namespace
}  // namespace trainfeed
