// JobSpec: a CreateTrainingJob request (the JSON `aws sagemaker create-training-job
// --cli-input-json` takes), parsed and validated. Everything downstream reads this struct, never
// the JSON. Field names follow the API; defaults are the API's.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace trainfeed {

struct S3DataSourceSpec {
  std::string s3_data_type;                     // S3Prefix | ManifestFile | AugmentedManifestFile
  std::string s3_uri;                           // s3://bucket/prefix or file:///path
  std::string distribution = "FullyReplicated";  // | ShardedByS3Key
  std::vector<std::string> attribute_names;     // AugmentedManifestFile only, in order
  std::vector<std::string> instance_group_names;
};

struct FileSystemDataSourceSpec {
  // fs-0123abcd (an AWS id) or, self-hosted, an address the mount understands directly:
  // nfs://server/export, a Lustre "mgs@tcp:/fsname", or file:///path (a bind mount).
  std::string file_system_id;
  std::string file_system_type;  // EFS | FSxLustre
  std::string directory_path;    // absolute path inside the file system
  std::string access_mode;       // ro | rw
};

struct ChannelSpec {
  std::string name;
  std::optional<S3DataSourceSpec> s3;                   // exactly one of s3 / file_system
  std::optional<FileSystemDataSourceSpec> file_system;
  std::string content_type;                             // "" when not set
  std::string compression_type = "None";                // None | Gzip
  std::string record_wrapper_type = "None";             // None | RecordIO
  std::string input_mode;  // effective: Channel.InputMode, else the job's TrainingInputMode
  std::optional<int64_t> shuffle_seed;                  // ShuffleConfig.Seed
};

struct JobSpec {
  std::string training_job_name;
  std::string training_input_mode;  // File | FastFile | Pipe (job default)
  std::string training_image;       // accepted and reported as not run
  std::vector<std::string> container_entrypoint;
  std::vector<std::string> container_arguments;
  std::map<std::string, std::string> hyperparameters;  // as given: values are JSON-encoded strings
  std::vector<ChannelSpec> channels;                   // in request order
  std::string s3_output_path;                          // OutputDataConfig.S3OutputPath
  std::string output_compression = "GZIP";             // GZIP | NONE
  std::optional<std::string> checkpoint_s3_uri;        // CheckpointConfig.S3Uri
  std::string checkpoint_local_path = "/opt/ml/checkpoints/";
  int instance_count = 1;
  std::string instance_type;  // ResourceConfig.InstanceType, e.g. ml.m5.xlarge
  int64_t max_runtime_seconds = 86400;  // StoppingCondition.MaxRuntimeInSeconds (API default)
  std::map<std::string, std::string> environment;
  // Fields of the real request that mean nothing here (RoleArn, VpcConfig, Tags, ...), by path;
  // the runner notes them once.
  std::vector<std::string> ignored_fields;
};

// Input modes this build can run. A channel asking for another fails validation with a clear
// message instead of silently falling back to File.
struct SupportedModes {
  bool file = true;
  bool fast_file = false;
  bool pipe = false;
};

// Parses and validates `json` with AWS's own constraints. On failure, InvalidArgument whose
// message lists every problem found, one per line, each naming the field path, e.g.
// "InputDataConfig[1].DataSource.S3DataSource.S3DataType: 'S3Prefx' is not one of
// S3Prefix|ManifestFile|AugmentedManifestFile". Unknown fields are errors, as in the API.
Result<JobSpec> ParseJobSpec(std::string_view json, const SupportedModes& modes = {});

}  // namespace trainfeed
