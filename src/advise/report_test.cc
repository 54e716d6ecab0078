#include "advise/report.h"

#include <gtest/gtest.h>

namespace trainfeed {
namespace {

DatasetStats SomeStats(const std::string& prefix) {
  DatasetStatsBuilder builder(prefix);
  ObjectInfo o;
  for (int i = 0; i < 100; ++i) {
    o.key = prefix + (prefix.empty() || prefix.back() == '/' ? "" : "/") + "f" + std::to_string(100 + i);
    o.size = 1000 * (i + 1);
    builder.Add(o);
  }
  DatasetStats s = builder.Finish();
  s.uri = "s3://b/" + prefix;
  s.listing_seconds = 0.25;
  return s;
}

struct Fixture {
  explicit Fixture(const std::string& uri, InputRecommendation r)
      : stats(SomeStats(ParseStoreUri(uri)->key)) {
    output.source = *ParseStoreUri(uri);
    output.pack_destination = DefaultPackDestination(output.source);
    output.stats = &stats;
    output.rates = DefaultReadRates();
    output.constraints.disk_free_bytes = 1ull << 30;
    output.disk_free_source = "--disk-free";
    output.advice = Recommend(stats, output.rates, output.constraints);
    output.advice.recommendation = r;
  }
  DatasetStats stats;
  AdviseOutput output;
};

TEST(AdviseReportTest, JsonHasTheDocumentedShape) {
  Fixture f("s3://b/data/train/", InputRecommendation::kFile);
  nlohmann::ordered_json j = AdviseJson(f.output);
  EXPECT_EQ(j["recommendation"], "File");
  EXPECT_EQ(j["uri"], "s3://b/data/train/");
  EXPECT_TRUE(j["reasons"].is_string());
  EXPECT_EQ(j["rule"], "file-fits");
  EXPECT_EQ(j["stats"]["objects"], 100);
  EXPECT_EQ(j["stats"]["bytes"], 5'050'000);
  for (const char* p : {"p10", "p50", "p90", "p99"}) {
    EXPECT_TRUE(j["stats"]["percentiles"][p].is_number_unsigned()) << p;
  }
  EXPECT_EQ(j["stats"]["smallest"]["size"], 1000);
  EXPECT_EQ(j["stats"]["largest"]["key"], "data/train/f199");
  EXPECT_EQ(j["stats"]["small_files"]["share_by_count"], 1.0);
  EXPECT_EQ(j["stats"]["fan_out"]["widest_folder"], "data/train/");
  EXPECT_EQ(j["stats"]["fan_out"]["entries"], 100);
  EXPECT_TRUE(j["stats"]["histogram"].is_array());
  EXPECT_TRUE(j["probe"].is_null());
  EXPECT_EQ(j["rates"]["source"], "defaults");
  EXPECT_TRUE(j["constraints"]["training_hours"].is_null());
  for (const char* mode : {"File", "FastFile", "Pipe", "pack-then-File", "pack-then-FastFile"}) {
    ASSERT_TRUE(j["estimates"].contains(mode)) << mode;
    EXPECT_TRUE(j["estimates"][mode]["startup_seconds"].is_number()) << mode;
    EXPECT_TRUE(j["estimates"][mode]["epoch_seconds"].is_number()) << mode;
    EXPECT_TRUE(j["estimates"][mode]["fits_disk"].is_boolean()) << mode;
  }
  EXPECT_TRUE(j["pack_command"].is_null());
  nlohmann::ordered_json channel = j["input_data_config"];
  EXPECT_EQ(channel["ChannelName"], "train");
  EXPECT_EQ(channel["InputMode"], "File");
  EXPECT_EQ(channel["DataSource"]["S3DataSource"]["S3DataType"], "S3Prefix");
  EXPECT_EQ(channel["DataSource"]["S3DataSource"]["S3Uri"], "s3://b/data/train/");
  EXPECT_EQ(channel["DataSource"]["S3DataSource"]["S3DataDistributionType"], "FullyReplicated");
}

TEST(AdviseReportTest, FastFileUriEndsInASlash) {
  Fixture folder("s3://b/data/train", InputRecommendation::kFastFile);
  ASSERT_TRUE(folder.stats.folder_prefix);
  EXPECT_EQ(InputDataConfigChannel(folder.output)["DataSource"]["S3DataSource"]["S3Uri"],
            "s3://b/data/train/");
  EXPECT_EQ(InputDataConfigChannel(folder.output)["InputMode"], "FastFile");
  // A prefix that stops inside names can only be mounted as its enclosing folder.
  DatasetStats partial = folder.stats;
  partial.folder_prefix = false;
  EXPECT_EQ(FastFileUri(*ParseStoreUri("s3://b/data/train"), partial), "s3://b/data/");
  EXPECT_EQ(FastFileUri(*ParseStoreUri("s3://b"), partial), "s3://b/");
  folder.output.stats = &partial;
  EXPECT_NE(AdviseText(folder.output).find("ends inside a name"), std::string::npos);
}

TEST(AdviseReportTest, PackAdvicePointsAtThePackedDestination) {
  Fixture f("s3://b/data/train/", InputRecommendation::kPackThenFastFile);
  nlohmann::ordered_json j = AdviseJson(f.output);
  EXPECT_EQ(j["recommendation"], "pack-then-FastFile");
  EXPECT_EQ(j["input_data_config"]["InputMode"], "FastFile");
  EXPECT_EQ(j["input_data_config"]["DataSource"]["S3DataSource"]["S3Uri"],
            "s3://b/data/train-packed/");
  EXPECT_EQ(j["pack_command"],
            "trainfeed pack s3://b/data/train/ s3://b/data/train-packed/ --shard-size 150MB "
            "--format tar");
  std::string text = AdviseText(f.output);
  EXPECT_NE(text.find("run first:\n  trainfeed pack s3://b/data/train/"), std::string::npos);
  EXPECT_EQ(DefaultPackDestination(*ParseStoreUri("s3://b")).ToString(), "s3://b/packed/");
  EXPECT_EQ(DefaultPackDestination(*ParseStoreUri("s3://b/x")).ToString(), "s3://b/x-packed/");
}

TEST(AdviseReportTest, FSxChannelIsAFileSystemDataSource) {
  Fixture f("s3://b/data/train/", InputRecommendation::kFSxLustre);
  f.output.channel = "images";
  nlohmann::ordered_json c = InputDataConfigChannel(f.output);
  EXPECT_EQ(c["ChannelName"], "images");
  EXPECT_EQ(c["InputMode"], "File");
  EXPECT_EQ(c["DataSource"]["FileSystemDataSource"]["FileSystemType"], "FSxLustre");
  EXPECT_EQ(c["DataSource"]["FileSystemDataSource"]["DirectoryPath"], "/MountName/data/train/");
  EXPECT_EQ(c["DataSource"]["FileSystemDataSource"]["FileSystemAccessMode"], "ro");
}

TEST(AdviseReportTest, TextHasStatsHistogramEstimatesAndChannel) {
  Fixture f("s3://b/data/train/", InputRecommendation::kFile);
  std::string text = AdviseText(f.output);
  for (const char* part : {"dataset   s3://b/data/train/: 100 objects", "p10 ", "p99 ",
                           "smallest", "largest", "data/train/f199", "< 50 MB   100 objects",
                           "widest data/train/ (100 entries)", "objects by size", "#",
                           "assumed (run with --probe to measure)", "pack-then-FastFile",
                           "recommendation: File", "\"InputMode\":\"File\""}) {
    EXPECT_NE(text.find(part), std::string::npos) << "missing: " << part;
  }
  // Sizes 1,000 .. 100,000 span octaves 2^9 .. 2^16: eight histogram rows.
  EXPECT_NE(text.find("512 B - 1 KiB"), std::string::npos);
  EXPECT_NE(text.find("64 KiB - 128 KiB"), std::string::npos);
}

}  // namespace
}  // namespace trainfeed
