// The /opt/ml contract under a job root of our choosing: the directory layout, the config files
// the platform writes before start (contract §1.2-1.5), and the environment a training process
// sees: the platform's own variables plus the training toolkit's SM_* set (§1.6, §2), so that
// scripts written for either keep working.
//
// The container's /opt/ml is <job root>/opt/ml, exported as SAGEMAKER_BASE_DIR, which is how the
// toolkit itself is pointed elsewhere. Values are computed the way the toolkit's Environment and
// mapping.to_env_vars / to_cmd_args do (aws/sagemaker-training-toolkit), so a script sees the same
// strings under trainfeed as under SageMaker, bar the paths.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/host_identity.h"
#include "common/status.h"
#include "job/job_spec.h"

namespace trainfeed {

// Absolute paths, no trailing '/'.
struct JobPaths {
  std::string root;                 // <job root>/opt/ml
  std::string input;                // root/input
  std::string input_config;         // root/input/config
  std::string input_data;           // root/input/data
  std::string model;                // root/model
  std::string output;               // root/output
  std::string output_data;          // root/output/data
  std::string output_intermediate;  // root/output/intermediate
  // CheckpointConfig.LocalPath: under /opt/ml it is mapped into the tree (the default
  // /opt/ml/checkpoints/ becomes root/checkpoints); any other absolute path is used as is.
  std::string checkpoints;
  std::string code;  // root/code

  // root/input/data/<channel>: the File/FastFile directory. Pipe FIFOs are its siblings
  // <channel>_<epoch>, but SM_CHANNEL_<NAME> names this path for them too (contract §3.4).
  std::string ChannelDir(const std::string& channel) const;
};

// A relative `job_root` is made absolute against the current directory. A job root of "/" gives
// the real /opt/ml.
JobPaths MakeJobPaths(const std::string& job_root, const JobSpec& spec);

// What the toolkit probes on the machine itself.
struct HostFacts {
  int num_gpus = 0;
  int num_cpus = 1;
  int num_neurons = 0;  // Neuron devices are not probed
  // resourceconfig.json's network_interface_name, which distributed launchers pass on as
  // NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME. SageMaker's is eth0; hosts here may differ.
  std::string network_interface_name = "eth0";
};

// GPUs: the /dev/nvidia<N> device nodes under `dev_dir` (no nvidia-smi needed). CPUs: the ones
// this process may run on (its affinity mask), which under Slurm or a cgroup-limited container is
// the allocation rather than the whole machine.
HostFacts ProbeHostFacts(const std::string& dev_dir = "/dev");

// Creates root/{input/config, input/data, model, output/data, output/intermediate, code} and the
// checkpoint directory (0755, parents as needed), then writes, each atomically (temp file +
// rename), into input/config:
//   hyperparameters.json  the HyperParameters map as given, string -> string;
//   inputdataconfig.json  per channel: ContentType (if set), TrainingInputMode (effective),
//                         S3DistributionType (FullyReplicated for file-system channels),
//                         RecordWrapperType;
//   resourceconfig.json   current_host, hosts, network_interface_name, current_instance_type
//                         (InstanceType, else "local"), current_group_name
//                         ("homogeneousCluster"), instance_groups;
//   checkpointconfig.json {"LocalPath": <checkpoint dir>, "S3Path": <S3Uri>} with CheckpointConfig,
//                         and removed without it, so a reused job root never shows a stale one.
// All JSON is compact with sorted keys and \u-escaped non-ASCII, as the toolkit re-encodes it.
// output/intermediate is created on purpose: the toolkit then leaves its upload to the platform
// (contract §1.2), i.e. to the runner.
Status WriteContractFiles(const JobPaths& paths, const JobSpec& spec, const HostIdentity& identity,
                          const HostFacts& facts = {});

// The training process's environment, sorted by name: the job's Environment map, then (taking
// precedence, as the toolkit overwrites on start) TRAINING_JOB_NAME, TRAINING_JOB_ARN,
// SAGEMAKER_BASE_DIR and every SM_* variable the toolkit's Environment.to_env_vars() produces.
// Hyperparameter values are JSON-decoded where possible (else kept raw); keys starting with
// "sagemaker_" and the toolkit's other control keys are kept out of SM_HPS, SM_HP_* and
// SM_USER_ARGS; the "sagemaker_" ones that are not controls form SM_FRAMEWORK_PARAMS.
std::vector<std::pair<std::string, std::string>> ContractEnvironment(const JobPaths& paths,
                                                                     const JobSpec& spec,
                                                                     const HostIdentity& identity,
                                                                     const HostFacts& facts);

// The user hyperparameters as the toolkit passes them to the script: sorted by key, "--key value"
// ("-k value" for one-character keys); a dict becomes "k1=v1,k2=v2"; other values as Python's
// str() prints them after JSON decoding: strings raw, booleans True/False, null as "", lists in
// Python's repr ("[1, 'a']").
std::vector<std::string> HyperparameterArgs(const JobSpec& spec);

// "arn:aws:sagemaker:local:000000000000:training-job/<name in lower case>": the shape of a real
// ARN, with a region and account that cannot be mistaken for real ones.
std::string TrainingJobArn(const std::string& job_name);

// The SM_HP_<NAME> value of one raw hyperparameter: the raw string if it is not JSON or decodes
// to a string, else json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
// of the decoded value. Known differences from Python: integers beyond 64 bits become floats,
// NaN / Infinity are decoded only as the whole value (not inside a list or dict), and a float
// literal beyond the double range ("1e400") stays a raw string instead of becoming Infinity.
std::string SmHyperparameterValue(std::string_view raw);

}  // namespace trainfeed
