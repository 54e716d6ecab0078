#include "job/fastfile_channel.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "job/job_spec.h"

namespace trainfeed {
namespace {

namespace fs = std::filesystem;
using Args = std::vector<std::string>;

TEST(FastFileMountArgv, DefaultsPassOnlyMaxAttempts) {
  EXPECT_EQ(FastFileMountArgv("s3://bucket/data/train/", "/jobs/j/opt/ml/input/data/train", {}),
            (Args{"trainfeed", "--max-attempts=8", "mount", "s3://bucket/data/train/",
                  "/jobs/j/opt/ml/input/data/train", "--foreground"}));
}

TEST(FastFileMountArgv, EveryStoreFlagTheJobUses) {
  StoreOpenOptions store;
  store.s3.endpoint_url = "http://127.0.0.1:9000";
  store.s3.region = "eu-west-1";
  store.s3.profile = "training";
  store.s3.no_sign_request = true;
  store.retry.max_attempts = 3;
  EXPECT_EQ(FastFileMountArgv("file:///srv/data/", "/d", store),
            (Args{"trainfeed", "--endpoint-url=http://127.0.0.1:9000", "--region=eu-west-1",
                  "--profile=training", "--no-sign-request", "--max-attempts=3", "mount",
                  "file:///srv/data/", "/d", "--foreground"}));
}

TEST(FastFileMountArgv, TuningFlagsFollowTheSubcommand) {
  FastFileTuning tuning;
  tuning.memory_limit_bytes = 64 << 20;
  tuning.read_threads = 4;
  tuning.cache_dir = "/cache/train";
  tuning.cache_size_bytes = 1 << 30;
  EXPECT_EQ(FastFileMountArgv("s3://b/p/", "/d", {}, tuning),
            (Args{"trainfeed", "--max-attempts=8", "mount", "s3://b/p/", "/d", "--foreground",
                  "--memory-limit=67108864", "--read-threads=4", "--cache=/cache/train",
                  "--cache-size=1073741824"}));
}

TEST(LogTail, LastLinesWithoutPrefixOnOneLine) {
  EXPECT_EQ(LogTail(""), "");
  EXPECT_EQ(LogTail("trainfeed: info: listing\n\n  \ntrainfeed: error: NotFound: no bucket\n"),
            "info: listing / error: NotFound: no bucket");
  EXPECT_EQ(LogTail("a\nb\nc\nd\n", 2), "c / d");
  EXPECT_EQ(LogTail("0123456789\n", 3, 4), "...6789");
}

// A stand-in for the trainfeed binary: a shell script with the given body.
class FastFileChannelMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tf-ffc-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ + "/data");
  }
  void TearDown() override { fs::remove_all(dir_); }

  FastFileChannelOptions Options(const std::string& script_body) {
    std::string program = dir_ + "/fake-trainfeed";
    std::ofstream(program) << "#!/bin/sh\n" << script_body << "\n";
    fs::permissions(program, fs::perms::owner_all);
    FastFileChannelOptions options;
    options.program = program;
    options.log_path = dir_ + "/mount.log";
    options.ready_timeout = std::chrono::milliseconds(1000);
    options.stop_timeout = std::chrono::milliseconds(2000);
    return options;
  }

  std::string dir_;
};

TEST_F(FastFileChannelMountTest, ChildFailingBeforeReadyIsOneLineNamingChannelAndCause) {
  FastFileChannelOptions options =
      Options("echo \"trainfeed: error: args: $*\" >&2\n"
              "echo 'trainfeed: error: NotFound: no such bucket' >&2\nexit 3");
  options.ready_timeout = std::chrono::seconds(30);  // it fails long before
  FastFileChannelMount mount("train", "s3://bucket/train/", dir_ + "/data/train", options);
  Status s = mount.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable) << s.ToString();
  EXPECT_EQ(s.message(),
            "channel 'train': FastFile mount of s3://bucket/train/ failed: the mount process "
            "exited with 3 before the mount was ready: error: args: --max-attempts=8 mount "
            "s3://bucket/train/ " + dir_ + "/data/train --foreground / error: NotFound: no such "
            "bucket");
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
  EXPECT_TRUE(fs::is_directory(dir_ + "/data/train"));  // created for the mount
  EXPECT_EQ(mount.pid(), -1);
  EXPECT_TRUE(mount.Stop().ok());  // nothing left to stop
}

TEST_F(FastFileChannelMountTest, NeverReadyIsBoundedAndTheChildIsStopped) {
  FastFileChannelMount mount("train", "s3://bucket/train/", dir_ + "/data/train",
                             Options("echo $$ > \"" + dir_ + "/pid\"\nexec sleep 60"));
  auto started = std::chrono::steady_clock::now();
  Status s = mount.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("channel 'train': FastFile mount of s3://bucket/train/ failed: "
                             "not ready after 1 s"),
            std::string::npos)
      << s.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  pid_t child = 0;
  std::ifstream(dir_ + "/pid") >> child;
  ASSERT_GT(child, 0);
  EXPECT_NE(::kill(child, 0), 0) << "the mount process was left running";
}

TEST_F(FastFileChannelMountTest, InterruptedWhileWaiting) {
  std::atomic<bool> cancel{true};
  FastFileChannelOptions options = Options("exec sleep 60");
  options.cancel = &cancel;
  options.ready_timeout = std::chrono::seconds(30);
  FastFileChannelMount mount("train", "s3://bucket/train/", dir_ + "/data/train", options);
  Status s = mount.Start();
  EXPECT_EQ(s.code(), ErrorCode::kCancelled) << s.ToString();
  EXPECT_NE(s.message().find("interrupted before the mount was ready"), std::string::npos);
}

TEST_F(FastFileChannelMountTest, MissingProgramIsAClearError) {
  FastFileChannelOptions options = Options("exit 0");
  options.program = dir_ + "/no-such-binary";
  FastFileChannelMount mount("train", "s3://bucket/train/", dir_ + "/data/train", options);
  Status s = mount.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("start '" + dir_ + "/no-such-binary'"), std::string::npos)
      << s.ToString();
  EXPECT_NE(s.message().find("channel 'train'"), std::string::npos) << s.ToString();
}

// The example job parses with FastFile enabled, and its channels take the job's mode.
TEST(FastFileExample, ExampleJobIsAValidFastFileSpec) {
  std::ifstream in(std::string(TRAINFEED_JOB_TESTDATA) +
                   "/../../../examples/jobs/fastfile-mode.json");
  ASSERT_TRUE(in) << "examples/jobs/fastfile-mode.json";
  std::stringstream text;
  text << in.rdbuf();
  Result<JobSpec> spec =
      ParseJobSpec(text.str(), SupportedModes{.file = true, .fast_file = true, .pipe = false});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  ASSERT_EQ(spec->channels.size(), 2u);
  for (const ChannelSpec& c : spec->channels) EXPECT_EQ(c.input_mode, "FastFile") << c.name;
  // Without FastFile the same spec is refused, never run as File.
  EXPECT_FALSE(ParseJobSpec(text.str(), SupportedModes{}).ok());
}

}  // namespace
}  // namespace trainfeed
