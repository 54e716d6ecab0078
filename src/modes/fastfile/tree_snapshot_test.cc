#include "modes/fastfile/tree_snapshot.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace trainfeed {
namespace {

using std::chrono::system_clock;

ObjectInfo Obj(std::string key, uint64_t size, int64_t mtime_s, std::string etag) {
  ObjectInfo info;
  info.key = std::move(key);
  info.size = size;
  info.etag = std::move(etag);
  info.last_modified = system_clock::time_point(std::chrono::seconds(mtime_s));
  return info;
}

class TreeSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "tree_snapshot_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/listing.snapshot";
    Result<FileTree> tree = BuildFileTree(
        "data/", {Obj("data/a.txt", 5, 1'700'000'001, "e1"), Obj("data/sub/", 0, 1'700'000'002, "m"),
                  Obj("data/sub/b.bin", 1 << 20, 1'700'000'003, "e2"),
                  Obj("data/sub/deep/c", 0, 1'700'000'004, "e3"), Obj("data/x", 1, 1, "h"),
                  Obj("data/x/y", 2, 1'700'000'005, "e4"), Obj("data/bad//key", 1, 1, "s")});
    ASSERT_TRUE(tree.ok()) << tree.status().ToString();
    tree_ = std::move(*tree);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Read() {
    std::ifstream in(path_, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  void Write(const std::string& bytes) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << bytes;
  }

  std::string dir_, path_;
  FileTree tree_;
  const std::string source_ = "http://127.0.0.1:7480 s3://bucket/data/";
};

TEST_F(TreeSnapshotTest, RoundTripKeepsEveryNodeAndTheReport) {
  ASSERT_TRUE(SaveTreeSnapshot(tree_, source_, path_).ok());
  Result<FileTree> loaded = LoadTreeSnapshot(path_, source_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->node_count(), tree_.node_count());
  EXPECT_EQ(loaded->prefix(), "data/");
  for (FileTree::NodeId id = FileTree::kRootId; id <= tree_.node_count(); ++id) {
    EXPECT_EQ(loaded->Path(id), tree_.Path(id));
    EXPECT_EQ(loaded->IsDir(id), tree_.IsDir(id));
    EXPECT_EQ(loaded->Size(id), tree_.Size(id));
    EXPECT_EQ(loaded->Etag(id), tree_.Etag(id));
    EXPECT_EQ(loaded->LastModified(id), tree_.LastModified(id));
    EXPECT_EQ(loaded->ChildCount(id), tree_.ChildCount(id));
  }
  FileTree::NodeId sub = loaded->Lookup(FileTree::kRootId, "sub");
  ASSERT_NE(sub, FileTree::kNoNode);
  FileTree::NodeId b = loaded->Lookup(sub, "b.bin");
  ASSERT_NE(b, FileTree::kNoNode);
  EXPECT_EQ(loaded->Key(b), "data/sub/b.bin");
  EXPECT_EQ(loaded->Size(b), 1u << 20);
  const TreeBuildReport& r = loaded->report();
  EXPECT_EQ(r.files, tree_.report().files);
  EXPECT_EQ(r.bytes, tree_.report().bytes);
  EXPECT_EQ(r.hidden_files, 1u);
  EXPECT_EQ(r.skipped_keys, 1u);
  EXPECT_EQ(r.folder_markers, 1u);
  EXPECT_EQ(r.skipped_examples, std::vector<std::string>{"data/bad//key"});
  EXPECT_EQ(r.hidden_examples, std::vector<std::string>{"data/x"});
}

TEST_F(TreeSnapshotTest, MissingFileIsNotFound) {
  EXPECT_EQ(LoadTreeSnapshot(path_, source_).status().code(), ErrorCode::kNotFound);
}

TEST_F(TreeSnapshotTest, OtherSourceIsRefusedNamingBoth) {
  ASSERT_TRUE(SaveTreeSnapshot(tree_, source_, path_).ok());
  Status s = LoadTreeSnapshot(path_, "http://127.0.0.1:7480 s3://bucket/other/").status();
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("s3://bucket/data/"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("s3://bucket/other/"), std::string::npos) << s.ToString();
}

TEST_F(TreeSnapshotTest, EveryFlippedByteAndEveryTruncationIsDataLoss) {
  ASSERT_TRUE(SaveTreeSnapshot(tree_, source_, path_).ok());
  const std::string good = Read();
  ASSERT_GT(good.size(), 64u);
  int refused = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    Write(bad);
    Status s = LoadTreeSnapshot(path_, source_).status();
    // The header's reserved word is the only byte range nobody reads.
    if (i >= 28 && i < 32) continue;
    EXPECT_EQ(s.code(), ErrorCode::kDataLoss) << "byte " << i << ": " << s.ToString();
    refused += s.code() == ErrorCode::kDataLoss;
  }
  EXPECT_GE(refused, static_cast<int>(good.size()) - 4);
  for (size_t size : {size_t{0}, size_t{10}, good.size() / 2, good.size() - 1}) {
    Write(good.substr(0, size));
    EXPECT_EQ(LoadTreeSnapshot(path_, source_).status().code(), ErrorCode::kDataLoss) << size;
  }
}

TEST_F(TreeSnapshotTest, SaveReplacesAtomicallyAndLeavesNoTemporaryFile) {
  ASSERT_TRUE(SaveTreeSnapshot(tree_, "old source", path_).ok());
  ASSERT_TRUE(SaveTreeSnapshot(tree_, source_, path_).ok());
  EXPECT_TRUE(LoadTreeSnapshot(path_, source_).ok());
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST_F(TreeSnapshotTest, UnwritableFolderGivesAnErrorNamingThePath) {
  std::string path = dir_ + "/missing/listing.snapshot";
  Status s = SaveTreeSnapshot(tree_, source_, path);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace trainfeed
