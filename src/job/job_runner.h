// `trainfeed train`: runs a training job the way SageMaker does, on this machine.
//
// Phases, in order: validate the spec; lay out <root>/opt/ml and write the config files; restore
// checkpoints; materialise File-mode channels, mount FastFile and file-system channels; run the
// command with the SM_* environment under the max-runtime rule while checkpoints sync; then,
// whatever happened, stop the sync (final sweep), unmount, and upload model and output data. A
// summary with per-phase times and bytes per channel ends the run.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "cluster/host_identity.h"
#include "job/fastfile_channel.h"
#include "store/store_factory.h"
#include "transfer/downloader.h"

namespace trainfeed {

struct TrainOptions {
  std::string spec_path;             // the CreateTrainingJob JSON
  std::string root;                  // "" = ./jobs/<TrainingJobName>/<current host>
  HostFlags host_flags;              // --hosts / --current-host
  std::vector<std::string> command;  // after "--"; else ContainerEntrypoint + ContainerArguments
  StoreOpenOptions store;
  DownloadOptions download;
  std::chrono::seconds stop_grace{120};  // SIGTERM -> SIGKILL, as SageMaker
  bool quiet = false;
  // Run the command in a private mount namespace with the job tree bind-mounted at /opt/ml.
  bool container_paths = false;
  // Mount flags for every FastFile channel; a cache folder gets one subfolder per channel.
  FastFileTuning fastfile;
};

// Returns the process exit code: the command's own status when it ran (0 = Completed), 1 when the
// job failed before or after it (with one line saying why), 2 for an invalid job spec.
int RunTrainingJob(const TrainOptions& options, const std::atomic<bool>& interrupted);

}  // namespace trainfeed
