#include "transfer/downloader.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "store/testing/fake_object_store.h"
#include "store/testing/fault_injecting_object_store.h"

namespace trainfeed {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class DownloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_.CreateBucket("b");
    std::string pattern = (fs::temp_directory_path() / "tf-dl-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dest_ = root_ / "dest";
  }
  void TearDown() override { fs::remove_all(root_); }

  ObjectInfo Put(const std::string& key, uint64_t size, uint64_t seed) {
    EXPECT_TRUE(fake_.PutRamp("b", key, size, seed).ok());
    return *fake_.Head({"b", key});
  }

  DownloadReport Run(ObjectStore& store, const std::vector<std::pair<ObjectInfo, std::string>>& items,
                     DownloadOptions options = {}) {
    options.concurrency = 4;
    options.part_size = 1 << 20;
    options.multipart_threshold = 2 << 20;
    Downloader d(store, options);
    EXPECT_TRUE(d.Start(dest_.string()).ok());
    for (const auto& [info, path] : items) d.Add({{"b", info.key}, info, path});
    return d.Finish();
  }

  std::vector<std::string> FilesUnder(const fs::path& dir) {
    std::vector<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  FakeObjectStore fake_;
  fs::path root_, dest_;
};

TEST_F(DownloaderTest, LargeObjectIsSplitIntoRangedParts) {
  ObjectInfo big = Put("big", (8 << 20) + 5, 3);
  DownloadReport r = Run(fake_, {{big, "dir/big.bin"}});
  ASSERT_TRUE(r.ok()) << r.fatal.ToString();
  EXPECT_EQ(fake_.get_calls(), 9);  // 8 full parts of 1 MiB and a 5-byte tail
  EXPECT_TRUE(ReadFile(dest_ / "dir/big.bin") == FakeObjectStore::RampBytes(3, 0, big.size));
  EXPECT_EQ(r.objects, 1u);
  EXPECT_EQ(r.bytes, big.size);
}

TEST_F(DownloaderTest, SmallObjectsAreOneGetEachAndEmptyOnesAreKept) {
  std::vector<std::pair<ObjectInfo, std::string>> items;
  for (int i = 0; i < 50; ++i) {
    items.push_back({Put("k" + std::to_string(i), i == 0 ? 0 : 1000 + i, i), "s/" + std::to_string(i)});
  }
  DownloadReport r = Run(fake_, items);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(fake_.get_calls(), 50);
  EXPECT_EQ(fs::file_size(dest_ / "s/0"), 0u);
  EXPECT_TRUE(ReadFile(dest_ / "s/7") == FakeObjectStore::RampBytes(7, 0, 1007));
}

TEST_F(DownloaderTest, RerunSkipsCompleteFilesAndRefetchesChangedOnes) {
  ObjectInfo a = Put("a", 3 << 20, 1), b = Put("b", 1000, 2);
  ASSERT_TRUE(Run(fake_, {{a, "a"}, {b, "b"}}).ok());
  fake_.ResetCounters();
  DownloadReport again = Run(fake_, {{a, "a"}, {b, "b"}});
  EXPECT_EQ(fake_.get_calls(), 0);
  EXPECT_EQ(again.skipped_objects, 2u);
  // The object changes in the store (new ETag, same size): the rerun fetches it again.
  ObjectInfo b2 = Put("b", 1000, 9);
  fake_.ResetCounters();
  DownloadReport third = Run(fake_, {{a, "a"}, {b2, "b"}});
  EXPECT_EQ(fake_.get_calls(), 1);
  EXPECT_EQ(third.skipped_objects, 1u);
  EXPECT_TRUE(ReadFile(dest_ / "b") == FakeObjectStore::RampBytes(9, 0, 1000));
  // Replacing the old file leaves no temporary name behind.
  EXPECT_EQ(FilesUnder(dest_), (std::vector<std::string>{"a", "b"}));
}

TEST_F(DownloaderTest, ObjectChangedMidDownloadFailsWithoutLeavingAFile) {
  ObjectInfo big = Put("big", 6 << 20, 1);
  FaultInjectingObjectStore store(fake_, [&](const FaultContext& c) -> std::optional<Fault> {
    if (c.method == StoreMethod::kGet && c.method_call_index == 2) {
      EXPECT_TRUE(fake_.PutRamp("b", "big", 6 << 20, 2).ok());  // overwritten under us
    }
    return std::nullopt;
  });
  DownloadReport r = Run(store, {{big, "big.bin"}});
  ASSERT_EQ(r.failed_objects, 1u);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].status.code(), ErrorCode::kPreconditionFailed)
      << r.failures[0].status.ToString();
  EXPECT_TRUE(FilesUnder(dest_).empty()) << "no final file and no temporary file";
}

TEST_F(DownloaderTest, ShortBodyIsDataLossNotACompleteFile) {
  ObjectInfo obj = Put("short", 5000, 1);
  FaultInjectingObjectStore store(fake_, [](const FaultContext& c) -> std::optional<Fault> {
    if (c.method == StoreMethod::kGet) return Fault::ShortBody(100);
    return std::nullopt;
  });
  DownloadReport r = Run(store, {{obj, "short"}});
  ASSERT_EQ(r.failed_objects, 1u);
  EXPECT_EQ(r.failures[0].status.code(), ErrorCode::kDataLoss) << r.failures[0].status.ToString();
  EXPECT_TRUE(FilesUnder(dest_).empty());
}

TEST_F(DownloaderTest, PermissionDeniedStopsTheWholeRun) {
  std::vector<std::pair<ObjectInfo, std::string>> items;
  for (int i = 0; i < 200; ++i) items.push_back({Put("k" + std::to_string(i), 10, i), std::to_string(i)});
  FaultInjectingObjectStore store(fake_, [](const FaultContext&) -> std::optional<Fault> {
    return Fault::Error(PermissionDeniedError("AccessDenied"));
  });
  DownloadReport r = Run(store, items);
  EXPECT_EQ(r.fatal.code(), ErrorCode::kPermissionDenied) << r.fatal.ToString();
  EXPECT_LT(store.calls(), 200u) << "it should stop instead of failing every object";
}

TEST_F(DownloaderTest, NeverWritesThroughASymlinkOutOfTheDestination) {
  fs::create_directories(dest_);
  fs::create_directories(root_ / "outside");
  fs::create_directory_symlink(root_ / "outside", dest_ / "evil");
  ObjectInfo obj = Put("x", 10, 1);
  DownloadReport r = Run(fake_, {{obj, "evil/x"}});
  EXPECT_EQ(r.failed_objects, 1u);
  EXPECT_TRUE(fs::is_empty(root_ / "outside"));
}

TEST_F(DownloaderTest, FileWhereADirectoryIsNeededIsAPerObjectFailure) {
  ObjectInfo a = Put("a", 10, 1), ab = Put("a/b", 10, 2);
  DownloadOptions options;
  options.concurrency = 1;  // "a" first, as the listing orders them
  Downloader d(fake_, options);
  ASSERT_TRUE(d.Start(dest_.string()).ok());
  d.Add({{"b", "a"}, a, "a"});
  d.Add({{"b", "a/b"}, ab, "a/b"});
  DownloadReport r = d.Finish();
  EXPECT_EQ(r.objects, 1u);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].key, "a/b");
}

TEST_F(DownloaderTest, ObjectOfUnknownSizeIsOneWholeGet) {
  Put("m", (5 << 20) + 3, 4);  // above the multipart threshold, but its size is not known
  ObjectInfo info;
  info.key = "m";
  info.size = kUnknownSize;
  DownloadReport r = Run(fake_, {{info, "from-manifest/m"}});
  ASSERT_TRUE(r.ok()) << (r.failures.empty() ? r.fatal.ToString() : r.failures[0].status.ToString());
  EXPECT_EQ(fake_.get_calls(), 1);
  EXPECT_TRUE(ReadFile(dest_ / "from-manifest/m") == FakeObjectStore::RampBytes(4, 0, (5 << 20) + 3));
  EXPECT_EQ(r.bytes, (5u << 20) + 3);
}

}  // namespace
}  // namespace trainfeed
