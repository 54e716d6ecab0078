#include "modes/pipe/fifo_channel.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "store/testing/fake_object_store.h"

namespace trainfeed {
namespace {

using Steady = std::chrono::steady_clock;

// Reads a FIFO the way SageMaker's readers do: wait for it to appear, open, read to EOF.
std::string ReadEpoch(const std::string& path) {
  auto deadline = Steady::now() + std::chrono::seconds(10);
  while (::access(path.c_str(), F_OK) != 0 && Steady::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return "open failed";
  std::string out;
  char buf[1 << 16];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

class FifoChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "fifo_channel_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto store = std::make_unique<FakeObjectStore>();
    store->CreateBucket("b");
    for (int i = 0; i < 6; ++i) {
      std::string body = FakeObjectStore::RampBytes(i, 0, 200'000 + i);
      ASSERT_TRUE(store->Put({"b", "k" + std::to_string(i)}, body).ok());
      PipeItem item;
      item.object = {"b", "k" + std::to_string(i)};
      item.size = body.size();
      items_.AddUnit({item});
      all_ += body;
    }
    items_.stores.push_back(std::move(store));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  bool Exists(const std::string& name) { return ::access((dir_ + "/" + name).c_str(), F_OK) == 0; }

  std::string dir_;
  PipeItems items_;
  std::string all_;
};

TEST_F(FifoChannelTest, StreamsEachEpochIntoItsFifoAndRemovesThem) {
  ASSERT_TRUE(PrepareFifos(dir_, "train", 0).ok());
  ASSERT_TRUE(Exists("train_0"));
  FifoChannelOptions o;
  o.dir = dir_;
  o.channel = "train";
  o.prefetch.epoch_count = 3;
  std::vector<std::string> lines;
  o.on_report = [&](const std::string& line) { lines.push_back(line); };
  auto writer = std::async(std::launch::async, [&] { return RunFifoChannel(items_, o); });
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::string got = ReadEpoch(dir_ + "/train_" + std::to_string(epoch));
    EXPECT_TRUE(got == all_) << "epoch " << epoch << ": " << got.size() << " bytes";
  }
  Status s = writer.get();
  EXPECT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[2].find("epoch 2: 6 objects"), std::string::npos) << lines[2];
  EXPECT_FALSE(Exists("train_0") || Exists("train_1") || Exists("train_2") || Exists("train_3"));
}

TEST_F(FifoChannelTest, NextFifoExistsOnceTheCurrentOneIsOpen) {
  FifoChannelOptions o;
  o.dir = dir_;
  o.channel = "c";
  o.prefetch.epoch_count = 2;
  auto writer = std::async(std::launch::async, [&] { return RunFifoChannel(items_, o); });
  auto deadline = Steady::now() + std::chrono::seconds(10);
  while (!Exists("c_0") && Steady::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_FALSE(Exists("c_1"));
  int fd = ::open((dir_ + "/c_0").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char c;
  ASSERT_EQ(::read(fd, &c, 1), 1);  // the writer has opened it, so c_1 was created first
  EXPECT_TRUE(Exists("c_1"));
  std::string rest;
  char buf[1 << 16];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) rest.append(buf, static_cast<size_t>(n));
  ::close(fd);
  EXPECT_EQ(rest.size() + 1, all_.size());
  EXPECT_TRUE(ReadEpoch(dir_ + "/c_1") == all_);
  EXPECT_TRUE(writer.get().ok());
}

TEST_F(FifoChannelTest, CancelStopsAWriterNobodyReadsAndRemovesTheFifo) {
  std::atomic<bool> cancel{false};
  FifoChannelOptions o;
  o.dir = dir_;
  o.channel = "v";
  o.cancel = &cancel;
  auto writer = std::async(std::launch::async, [&] { return RunFifoChannel(items_, o); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(Exists("v_0"));
  auto start = Steady::now();
  cancel.store(true);
  ASSERT_EQ(writer.wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_EQ(writer.get().code(), ErrorCode::kCancelled);
  EXPECT_LT(Steady::now() - start, std::chrono::seconds(1));
  EXPECT_FALSE(Exists("v_0"));
}

TEST_F(FifoChannelTest, PrepareRefusesAFileInTheWayAndClearsStaleFifos) {
  ASSERT_EQ(::mkfifo((dir_ + "/t_7").c_str(), 0600), 0);
  ASSERT_TRUE(PrepareFifos(dir_, "t", 0).ok());
  EXPECT_FALSE(Exists("t_7"));
  EXPECT_TRUE(Exists("t_0"));
  RemoveFifos(dir_, "t");
  { std::ofstream(dir_ + "/t_0") << "x"; }
  EXPECT_EQ(PrepareFifos(dir_, "t", 0).code(), ErrorCode::kAlreadyExists);
}

}  // namespace
}  // namespace trainfeed
