#include "job/process_supervisor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace trainfeed {
namespace {

std::vector<std::pair<std::string, std::string>> BaseEnv() {
  return {{"PATH", "/usr/bin:/bin"}, {"TF_TEST_VALUE", "hello world"}};
}

Result<ProcessOutcome> RunCommand(std::vector<std::string> argv, SupervisorOptions options = {}) {
  std::atomic<bool> stop{false};
  return RunSupervised({std::move(argv), BaseEnv(), ""}, options, stop);
}

TEST(ProcessSupervisor, PropagatesExitStatus) {
  Result<ProcessOutcome> ok = RunCommand({"sh", "-c", "exit 0"});
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->ok());
  Result<ProcessOutcome> bad = RunCommand({"sh", "-c", "exit 3"});
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->exit_code, 3);
  EXPECT_EQ(bad->Describe(), "exited with 3");
}

TEST(ProcessSupervisor, PassesExactlyTheGivenEnvironmentAndDirectory) {
  std::string dir = std::filesystem::temp_directory_path() / ("tf-sup-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::atomic<bool> stop{false};
  Result<ProcessOutcome> r = RunSupervised(
      {{"sh", "-c", "[ \"$TF_TEST_VALUE\" = 'hello world' ] && [ -z \"$HOME\" ] && pwd > out"},
       BaseEnv(), dir},
      {}, stop);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  std::ifstream in(dir + "/out");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, dir);
  std::filesystem::remove_all(dir);
}

TEST(ProcessSupervisor, MissingCommandIsAClearError) {
  Result<ProcessOutcome> r = RunCommand({"no-such-command-tf"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("start 'no-such-command-tf'"), std::string::npos)
      << r.status().ToString();
}

TEST(ProcessSupervisor, MaxRuntimeSendsTermThenKill) {
  SupervisorOptions options;
  options.max_runtime = std::chrono::seconds(1);
  options.stop_grace = std::chrono::seconds(1);
  // Ignores SIGTERM, so only SIGKILL after the grace period ends it.
  Result<ProcessOutcome> r = RunCommand({"sh", "-c", "trap '' TERM; sleep 30"}, options);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL) << r->Describe();
  EXPECT_LT(r->elapsed, std::chrono::seconds(10));
}

TEST(ProcessSupervisor, TermGivesTheScriptAChanceToSave) {
  SupervisorOptions options;
  options.max_runtime = std::chrono::seconds(1);
  options.stop_grace = std::chrono::seconds(20);
  Result<ProcessOutcome> r = RunCommand({"sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done"}, options);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, 42);
  EXPECT_LT(r->elapsed, std::chrono::seconds(10));
}

TEST(ProcessSupervisor, StopRequestIsForwardedToTheWholeGroup) {
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    stop = true;
  });
  // A child of the script must be signalled too, or the script would wait for it forever.
  Result<ProcessOutcome> r =
      RunSupervised({{"sh", "-c", "sleep 60 & wait"}, BaseEnv(), ""}, {}, stop);
  stopper.join();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->interrupted);
  EXPECT_NE(r->exit_code, 0);
  EXPECT_LT(r->elapsed, std::chrono::seconds(10));
}

TEST(ProcessSupervisor, LeavesNoProcessBehind) {
  std::string marker = "tf-orphan-" + std::to_string(getpid());
  Result<ProcessOutcome> r = RunCommand({"sh", "-c", "(exec -a " + marker + " sleep 60) & exit 0"});
  ASSERT_TRUE(r.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // "[t]f-..." keeps pgrep from matching the shell that runs it.
  EXPECT_NE(std::system(("pgrep -f '[t]" + marker.substr(1) + "' >/dev/null").c_str()), 0)
      << "a background process of the command survived it";
}

TEST(ProcessSupervisor, ContainerPathsShowTheJobTreeAtOptMlOnlyToTheCommand) {
  ASSERT_EQ(::geteuid(), 0u) << "this test needs root (a private mount namespace), as CI runs it";
  std::string dir = std::filesystem::temp_directory_path() / ("tf-optml-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir + "/model");
  std::ofstream(dir + "/marker") << "job tree";
  bool existed = std::filesystem::exists("/opt/ml");
  std::atomic<bool> stop{false};
  LaunchSpec spec{{"sh", "-c", "[ \"$(cat /opt/ml/marker)\" = 'job tree' ] && echo saved > /opt/ml/model/m"},
                  BaseEnv(), ""};
  spec.opt_ml_source = dir;
  Result<ProcessOutcome> r = RunSupervised(spec, {}, stop);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_TRUE(std::filesystem::exists(dir + "/model/m")) << "writes land in the job tree";
  EXPECT_EQ(std::filesystem::exists("/opt/ml"), existed) << "the host's /opt/ml is unchanged";
  EXPECT_FALSE(std::filesystem::exists("/opt/ml/marker"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace trainfeed
