#include "job/checkpoint_sync.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "store/local/local_object_store.h"

namespace trainfeed {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Polls `condition` until it holds or `timeout` passes; never assumes how fast the machine is.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

class CheckpointSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string pattern = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/tf-ckpt-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = fs::canonical(pattern).string();
    Result<StoreUri> uri = ParseStoreUri("file://" + dir_ + "/remote/ckpt");
    ASSERT_TRUE(uri.ok()) << uri.status().ToString();
    uri_ = *uri;
    options_.scan_interval = 100ms;
    options_.quiet_period = 300ms;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string Local(const std::string& rel = "") const { return dir_ + "/local/" + rel; }
  std::string Remote(const std::string& rel) const { return dir_ + "/remote/ckpt/" + rel; }
  bool RemoteHas(const std::string& rel, const std::string& content) const {
    return ReadFile(Remote(rel)) == content;
  }
  bool RemoteMissing(const std::string& rel) const { return !fs::exists(Remote(rel)); }

  std::string dir_;
  StoreUri uri_;
  CheckpointSyncOptions options_;
  LocalObjectStore store_;
};

TEST_F(CheckpointSyncTest, RestoreCopiesTheTree) {
  WriteFile(Remote("step-10.pt"), "ten");
  WriteFile(Remote("sub/opt.bin"), "opt");
  WriteFile(dir_ + "/remote/ckpt-old/stale.pt", "stale");  // shares the raw prefix "ckpt"
  ASSERT_TRUE(RestoreCheckpoints(store_, uri_, Local()).ok());
  EXPECT_EQ(ReadFile(Local("step-10.pt")), "ten");
  EXPECT_EQ(ReadFile(Local("sub/opt.bin")), "opt");
  EXPECT_FALSE(fs::exists(Local("stale.pt")));
  EXPECT_FALSE(fs::exists(Local("ckpt-old")));
}

TEST_F(CheckpointSyncTest, RestoreOfAnEmptyOrMissingPrefixIsNotAnError) {
  ASSERT_TRUE(RestoreCheckpoints(store_, uri_, Local()).ok());
  EXPECT_TRUE(fs::is_directory(Local()));
  fs::create_directories(Remote(""));  // exists, but holds nothing
  EXPECT_TRUE(RestoreCheckpoints(store_, uri_, Local()).ok());
  EXPECT_TRUE(fs::is_empty(Local()));
}

TEST_F(CheckpointSyncTest, HalfWrittenFileIsNotUploadedUntilClosed) {
  CheckpointSyncer syncer(store_, uri_, Local(), options_);
  ASSERT_TRUE(syncer.Start().ok());
  int fd = ::open(Local("model.pt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  std::string written;
  // ~1.5 s of writing, a chunk every 50 ms: the file never stays unchanged for the quiet period.
  for (int i = 0; i < 30; ++i) {
    std::string chunk(1000, static_cast<char>('a' + i % 26));
    ASSERT_EQ(::write(fd, chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
    written += chunk;
    std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(RemoteMissing("model.pt")) << "uploaded mid-write after " << i + 1 << " chunks";
  }
  ASSERT_EQ(::close(fd), 0);
  EXPECT_TRUE(WaitFor([&] { return RemoteHas("model.pt", written); }));
  ASSERT_TRUE(syncer.Stop().ok());
  EXPECT_EQ(syncer.stats().uploaded_files, 1u);
  EXPECT_EQ(syncer.stats().uploaded_bytes, written.size());
}

TEST_F(CheckpointSyncTest, FileLeftOpenIsUploadedAfterTheQuietPeriod) {
  CheckpointSyncer syncer(store_, uri_, Local(), options_);
  ASSERT_TRUE(syncer.Start().ok());
  int fd = ::open(Local("mmap-like.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "data", 4), 4);
  EXPECT_TRUE(WaitFor([&] { return RemoteHas("mmap-like.bin", "data"); }));
  ::close(fd);
  ASSERT_TRUE(syncer.Stop().ok());
}

TEST_F(CheckpointSyncTest, ChangedFileIsUploadedAgain) {
  CheckpointSyncer syncer(store_, uri_, Local(), options_);
  ASSERT_TRUE(syncer.Start().ok());
  WriteFile(Local("latest.pt"), "version one");
  ASSERT_TRUE(WaitFor([&] { return RemoteHas("latest.pt", "version one"); }));
  WriteFile(Local("latest.pt"), "version two");  // same size: only the mtime tells
  EXPECT_TRUE(WaitFor([&] { return RemoteHas("latest.pt", "version two"); }));
  WriteFile(Local("sub/dir/new.pt"), "in a new subdirectory");
  EXPECT_TRUE(WaitFor([&] { return RemoteHas("sub/dir/new.pt", "in a new subdirectory"); }));
  ASSERT_TRUE(syncer.Stop().ok());
  EXPECT_EQ(syncer.stats().uploaded_files, 3u);
}

TEST_F(CheckpointSyncTest, RenamedIntoPlaceLeavesOnlyTheFinalName) {
  CheckpointSyncer syncer(store_, uri_, Local(), options_);
  ASSERT_TRUE(syncer.Start().ok());
  WriteFile(Local("ckpt.pt.tmp"), "atomic");
  fs::rename(Local("ckpt.pt.tmp"), Local("ckpt.pt"));
  EXPECT_TRUE(
      WaitFor([&] { return RemoteHas("ckpt.pt", "atomic") && RemoteMissing("ckpt.pt.tmp"); }));
  ASSERT_TRUE(syncer.Stop().ok());
}

TEST_F(CheckpointSyncTest, DeletedFilesAreDeletedRemotely) {
  CheckpointSyncer syncer(store_, uri_, Local(), options_);
  ASSERT_TRUE(syncer.Start().ok());
  WriteFile(Local("old.pt"), "old");
  WriteFile(Local("epoch-1/a.pt"), "a");
  WriteFile(Local("epoch-1/b.pt"), "b");
  WriteFile(Local("keep.pt"), "keep");
  ASSERT_TRUE(WaitFor([&] {
    return RemoteHas("old.pt", "old") && RemoteHas("epoch-1/a.pt", "a") &&
           RemoteHas("epoch-1/b.pt", "b") && RemoteHas("keep.pt", "keep");
  }));
  fs::remove(Local("old.pt"));
  fs::remove_all(Local("epoch-1"));
  EXPECT_TRUE(WaitFor([&] {
    return RemoteMissing("old.pt") && RemoteMissing("epoch-1/a.pt") &&
           RemoteMissing("epoch-1/b.pt");
  }));
  ASSERT_TRUE(syncer.Stop().ok());
  EXPECT_TRUE(RemoteHas("keep.pt", "keep"));
  EXPECT_EQ(syncer.stats().deleted_files, 3u);
}

TEST_F(CheckpointSyncTest, ObjectsNeverSeenLocallyAreNotDeleted) {
  WriteFile(Remote("from-another-host.pt"), "theirs");
  CheckpointSyncer syncer(store_, uri_, Local(), options_);  // no restore first
  ASSERT_TRUE(syncer.Start().ok());
  WriteFile(Local("mine.pt"), "mine");
  ASSERT_TRUE(syncer.Stop().ok());
  EXPECT_TRUE(RemoteHas("from-another-host.pt", "theirs"));
  EXPECT_TRUE(RemoteHas("mine.pt", "mine"));
}

TEST_F(CheckpointSyncTest, StopMakesAFinalSweep) {
  // Nothing but the final sweep or a close event can upload within this test.
  options_.scan_interval = 60s;
  options_.quiet_period = 60s;
  CheckpointSyncer syncer(store_, uri_, Local(), options_);
  ASSERT_TRUE(syncer.Start().ok());
  WriteFile(Local("last.pt"), "written and closed just before Stop");
  // Still open when Stop runs (the process has exited in real life; here the test holds it).
  int fd = ::open(Local("unclosed.pt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "tail", 4), 4);
  ASSERT_TRUE(syncer.Stop().ok());
  ::close(fd);
  EXPECT_TRUE(RemoteHas("last.pt", "written and closed just before Stop"));
  EXPECT_TRUE(RemoteHas("unclosed.pt", "tail"));
  EXPECT_EQ(syncer.stats().uploaded_files, 2u);
}

TEST_F(CheckpointSyncTest, RestartResumesFromWhatWasUploaded) {
  {
    CheckpointSyncer first(store_, uri_, Local(), options_);
    ASSERT_TRUE(first.Start().ok());
    WriteFile(Local("step-1.pt"), "one");
    WriteFile(Local("nested/step-2.pt"), "two");
    ASSERT_TRUE(first.Stop().ok());
  }
  // A spot restart: a fresh machine, an empty LocalPath.
  std::string fresh = dir_ + "/fresh";
  ASSERT_TRUE(RestoreCheckpoints(store_, uri_, fresh).ok());
  EXPECT_EQ(ReadFile(fresh + "/step-1.pt"), "one");
  EXPECT_EQ(ReadFile(fresh + "/nested/step-2.pt"), "two");

  CheckpointSyncer second(store_, uri_, fresh, options_);
  ASSERT_TRUE(second.Start().ok());
  WriteFile(fresh + "/step-3.pt", "three");
  ASSERT_TRUE(second.Stop().ok());
  // Restored files count as uploaded: only the new one goes up.
  EXPECT_EQ(second.stats().uploaded_files, 1u);
  EXPECT_EQ(second.stats().deleted_files, 0u);
  EXPECT_TRUE(RemoteHas("step-1.pt", "one"));
  EXPECT_TRUE(RemoteHas("step-3.pt", "three"));
}

TEST_F(CheckpointSyncTest, StartFailsOnAnUnlistableStore) {
  LocalStoreOptions options;
  options.root = dir_;
  LocalObjectStore confined(options);
  StoreUri bad = uri_;
  bad.bucket = "a-bucket";  // file:// stores have no buckets
  CheckpointSyncer syncer(confined, bad, Local(), options_);
  EXPECT_FALSE(syncer.Start().ok());
  EXPECT_FALSE(RestoreCheckpoints(confined, bad, Local()).ok());
}

}  // namespace
}  // namespace trainfeed
