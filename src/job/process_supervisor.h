// Runs the training command the way SageMaker runs a container's entry point: in its own process
// group, with signals forwarded, a maximum runtime enforced (SIGTERM, a grace period, then
// SIGKILL, as the platform does), and nothing of it left running after it exits.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace trainfeed {

struct LaunchSpec {
  std::vector<std::string> argv;                            // argv[0] is looked up in PATH
  std::vector<std::pair<std::string, std::string>> env;     // the complete environment
  std::string working_dir;                                  // "" = inherit
  // When set (root only), the command runs in a private mount namespace where this directory is
  // bind-mounted at /opt/ml, so scripts that hard-code /opt/ml/... work. The host's /opt/ml is not
  // changed; if it does not exist, an empty mount point is created and removed afterwards.
  std::string opt_ml_source;
};

struct SupervisorOptions {
  // StoppingCondition.MaxRuntimeInSeconds; zero or negative = no limit.
  std::chrono::seconds max_runtime{0};
  // Between SIGTERM and SIGKILL. SageMaker waits 120 s so a script can still save its model.
  std::chrono::seconds stop_grace{120};
};

struct ProcessOutcome {
  int exit_code = 0;     // the command's exit status, or 128 + signal if a signal ended it
  int signal = 0;        // the signal that ended it, if any
  bool timed_out = false;    // stopped by the max-runtime rule
  bool interrupted = false;  // stopped because trainfeed itself was asked to stop
  std::chrono::duration<double> elapsed{};
  bool ok() const { return exit_code == 0 && !timed_out && !interrupted; }
  std::string Describe() const;  // "exited with 0", "killed by SIGKILL after the max runtime"...
};

// Starts the command and waits for it. While it runs, `stop_requested` turning true (trainfeed got
// SIGINT/SIGTERM) forwards SIGTERM to the command's process group and, after the grace period,
// SIGKILL. Returns an error only if the command could not be started (e.g. not found).
Result<ProcessOutcome> RunSupervised(const LaunchSpec& spec, const SupervisorOptions& options,
                                     const std::atomic<bool>& stop_requested);

}  // namespace trainfeed
