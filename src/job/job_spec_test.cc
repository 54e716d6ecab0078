#include "job/job_spec.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef TRAINFEED_JOB_TESTDATA
#error "TRAINFEED_JOB_TESTDATA must name the src/job/testdata directory"
#endif

namespace trainfeed {
namespace {

using Json = nlohmann::json;
using Lines = std::vector<std::string>;

constexpr SupportedModes kAllModes{.file = true, .fast_file = true, .pipe = true};

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(TRAINFEED_JOB_TESTDATA) + "/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The problems ParseJobSpec reports, one per line; empty when it accepts the spec.
std::vector<std::string> TextProblems(std::string_view json,
                                      const SupportedModes& modes = kAllModes) {
  Result<JobSpec> r = ParseJobSpec(json, modes);
  if (r.ok()) return {};
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  std::vector<std::string> lines;
  std::stringstream in(r.status().message());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> Problems(const Json& spec, const SupportedModes& modes = kAllModes) {
  return TextProblems(spec.dump(), modes);
}

// A small valid request that each test bends in one place.
Json Base() {
  return Json::parse(R"({
    "TrainingJobName": "job-1",
    "AlgorithmSpecification": {"TrainingInputMode": "File"},
    "InputDataConfig": [
      {"ChannelName": "train",
       "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/train/"}}}
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/output/"}
  })");
}

// Base() with the value at `pointer` (RFC 6901) replaced or added.
Json With(const std::string& pointer, const Json& value) {
  Json spec = Base();
  spec[Json::json_pointer(pointer)] = value;
  return spec;
}

Json Without(const std::string& pointer) {
  Json spec = Base();
  Json::json_pointer p(pointer);
  spec[p.parent_pointer()].erase(p.back());
  return spec;
}

Json FileSystemChannel(const std::string& id, const std::string& type) {
  return Json{{"ChannelName", "fs"},
              {"DataSource",
               {{"FileSystemDataSource",
                 {{"FileSystemId", id},
                  {"FileSystemAccessMode", "ro"},
                  {"FileSystemType", type},
                  {"DirectoryPath", "/data"}}}}}};
}

Result<JobSpec> Parse(const Json& spec, const SupportedModes& modes = kAllModes) {
  return ParseJobSpec(spec.dump(), modes);
}

const std::string kS3Source = "/InputDataConfig/0/DataSource/S3DataSource";
const std::string kS3Path = "InputDataConfig[0].DataSource.S3DataSource";

// ---------------------------------------------------------------------------------------------
// Golden files.

TEST(JobSpecGolden, MinimalGetsTheApiDefaults) {
  Result<JobSpec> r = ParseJobSpec(ReadTestdata("minimal.json"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const JobSpec& spec = *r;
  EXPECT_EQ(spec.training_job_name, "minimal-job");
  EXPECT_EQ(spec.training_input_mode, "File");
  EXPECT_EQ(spec.training_image, "");
  ASSERT_EQ(spec.channels.size(), 1u);
  const ChannelSpec& train = spec.channels[0];
  EXPECT_EQ(train.name, "train");
  ASSERT_TRUE(train.s3.has_value());
  EXPECT_FALSE(train.file_system.has_value());
  EXPECT_EQ(train.s3->s3_data_type, "S3Prefix");
  EXPECT_EQ(train.s3->s3_uri, "file:///srv/data/train/");
  EXPECT_EQ(train.s3->distribution, "FullyReplicated");
  EXPECT_EQ(train.content_type, "");
  EXPECT_EQ(train.compression_type, "None");
  EXPECT_EQ(train.record_wrapper_type, "None");
  EXPECT_EQ(train.input_mode, "File");
  EXPECT_FALSE(train.shuffle_seed.has_value());
  EXPECT_EQ(spec.s3_output_path, "");
  EXPECT_EQ(spec.output_compression, "GZIP");
  EXPECT_FALSE(spec.checkpoint_s3_uri.has_value());
  EXPECT_EQ(spec.checkpoint_local_path, "/opt/ml/checkpoints/");
  EXPECT_EQ(spec.instance_count, 1);
  EXPECT_EQ(spec.max_runtime_seconds, 86400);
  EXPECT_TRUE(spec.hyperparameters.empty());
  EXPECT_TRUE(spec.environment.empty());
  EXPECT_TRUE(spec.ignored_fields.empty());
}

TEST(JobSpecGolden, FullParsesAndKnownValuesLand) {
  Result<JobSpec> r = ParseJobSpec(ReadTestdata("full.json"), kAllModes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const JobSpec& spec = *r;
  EXPECT_EQ(spec.training_job_name, "full-spec-2024-01-01");
  EXPECT_EQ(spec.training_input_mode, "File");
  EXPECT_EQ(spec.training_image, "123456789012.dkr.ecr.us-east-1.amazonaws.com/trainer:1.0");
  EXPECT_EQ(spec.container_entrypoint, (Lines{"python3", "/opt/ml/code/train.py"}));
  EXPECT_EQ(spec.container_arguments, (Lines{"--epochs", "10"}));
  EXPECT_EQ(spec.hyperparameters.at("epochs"), "10");
  EXPECT_EQ(spec.hyperparameters.at("learning-rate"), "0.001");
  EXPECT_EQ(spec.hyperparameters.at("sagemaker_program"), "\"train.py\"");  // kept JSON-encoded
  EXPECT_EQ(spec.s3_output_path, "s3://bucket/output/");
  EXPECT_EQ(spec.output_compression, "NONE");
  EXPECT_EQ(spec.checkpoint_s3_uri, "s3://bucket/checkpoints/full-spec/");
  EXPECT_EQ(spec.checkpoint_local_path, "/opt/ml/checkpoints/");
  EXPECT_EQ(spec.instance_count, 2);
  EXPECT_EQ(spec.instance_type, "ml.p4d.24xlarge");
  EXPECT_EQ(spec.max_runtime_seconds, 7200);
  EXPECT_EQ(spec.environment.at("LOG_LEVEL"), "debug");
  EXPECT_EQ(spec.environment.at("_PRIVATE"), "");

  ASSERT_EQ(spec.channels.size(), 6u);
  const ChannelSpec& train = spec.channels[0];
  EXPECT_EQ(train.name, "train");
  EXPECT_EQ(train.s3->s3_data_type, "AugmentedManifestFile");
  EXPECT_EQ(train.s3->s3_uri, "s3://bucket/manifests/train.manifest");
  EXPECT_EQ(train.s3->distribution, "ShardedByS3Key");
  EXPECT_EQ(train.s3->attribute_names, (Lines{"source-ref", "class"}));
  EXPECT_EQ(train.s3->instance_group_names, (Lines{"train1"}));
  EXPECT_EQ(train.content_type, "application/x-recordio");
  EXPECT_EQ(train.record_wrapper_type, "RecordIO");
  EXPECT_EQ(train.input_mode, "Pipe");
  EXPECT_EQ(train.shuffle_seed, 42);

  const ChannelSpec& validation = spec.channels[1];
  ASSERT_TRUE(validation.file_system.has_value());
  EXPECT_FALSE(validation.s3.has_value());
  EXPECT_EQ(validation.file_system->file_system_id, "fs-0123456789abcdef0");
  EXPECT_EQ(validation.file_system->file_system_type, "EFS");
  EXPECT_EQ(validation.file_system->directory_path, "/validation");
  EXPECT_EQ(validation.file_system->access_mode, "ro");
  EXPECT_EQ(validation.input_mode, "File");

  EXPECT_EQ(spec.channels[2].input_mode, "FastFile");
  EXPECT_EQ(spec.channels[3].input_mode, "File");  // inherited from TrainingInputMode
  EXPECT_EQ(spec.channels[3].content_type, "text/csv;label_size=0");
  EXPECT_EQ(spec.channels[4].file_system->file_system_id, "10.0.0.5@tcp:/fsx");
  EXPECT_EQ(spec.channels[4].file_system->access_mode, "rw");
  EXPECT_EQ(spec.channels[5].compression_type, "Gzip");
  EXPECT_EQ(spec.channels[5].s3->s3_uri,
            "https://bucket.s3.us-east-1.amazonaws.com/stream.manifest");

  EXPECT_EQ(spec.ignored_fields,
            (Lines{"AlgorithmSpecification.AlgorithmName",
                   "AlgorithmSpecification.MetricDefinitions",
                   "AlgorithmSpecification.EnableSageMakerMetricsTimeSeries",
                   "AlgorithmSpecification.TrainingImageConfig",
                   "RoleArn",
                   "InputDataConfig[0].DataSource.S3DataSource.ModelAccessConfig",
                   "InputDataConfig[0].DataSource.S3DataSource.HubAccessConfig",
                   "OutputDataConfig.KmsKeyId",
                   "ResourceConfig.VolumeSizeInGB",
                   "ResourceConfig.VolumeKmsKeyId",
                   "ResourceConfig.KeepAlivePeriodInSeconds",
                   "ResourceConfig.InstanceGroups",
                   "ResourceConfig.TrainingPlanArn",
                   "ResourceConfig.InstancePlacementConfig",
                   "VpcConfig",
                   "StoppingCondition.MaxWaitTimeInSeconds",
                   "StoppingCondition.MaxPendingTimeInSeconds",
                   "Tags",
                   "EnableNetworkIsolation",
                   "EnableInterContainerTrafficEncryption",
                   "EnableManagedSpotTraining",
                   "DebugHookConfig",
                   "DebugRuleConfigurations",
                   "TensorBoardOutputConfig",
                   "ExperimentConfig",
                   "ProfilerConfig",
                   "ProfilerRuleConfigurations",
                   "RetryStrategy",
                   "RemoteDebugConfig",
                   "InfraCheckConfig",
                   "SessionChainingConfig",
                   "MlflowConfig",
                   "ModelPackageConfig"}));
}

void CollectPaths(const Json& value, const std::string& path, std::set<std::string>* out) {
  if (!path.empty()) out->insert(path);
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      CollectPaths(item, path.empty() ? key : path + "." + key, out);
    }
  } else if (value.is_array()) {
    for (const Json& item : value) CollectPaths(item, path + "[]", out);
  }
}

// Every leaf of CreateTrainingJobRequest in botocore's SageMaker model (2017-07-24
// service-2.json), except the two trainfeed rejects (ServerlessJobConfig and
// InputDataConfig[].DataSource.DatasetSource, tested below).
TEST(JobSpecGolden, FullHasEveryFieldOfTheApi) {
  const char* const kApiFields[] = {
      "TrainingJobName",
      "HyperParameters",
      "AlgorithmSpecification.TrainingImage",
      "AlgorithmSpecification.AlgorithmName",
      "AlgorithmSpecification.TrainingInputMode",
      "AlgorithmSpecification.MetricDefinitions[].Name",
      "AlgorithmSpecification.MetricDefinitions[].Regex",
      "AlgorithmSpecification.EnableSageMakerMetricsTimeSeries",
      "AlgorithmSpecification.ContainerEntrypoint[]",
      "AlgorithmSpecification.ContainerArguments[]",
      "AlgorithmSpecification.TrainingImageConfig.TrainingRepositoryAccessMode",
      "AlgorithmSpecification.TrainingImageConfig.TrainingRepositoryAuthConfig."
      "TrainingRepositoryCredentialsProviderArn",
      "RoleArn",
      "InputDataConfig[].ChannelName",
      "InputDataConfig[].DataSource.S3DataSource.S3DataType",
      "InputDataConfig[].DataSource.S3DataSource.S3Uri",
      "InputDataConfig[].DataSource.S3DataSource.S3DataDistributionType",
      "InputDataConfig[].DataSource.S3DataSource.AttributeNames[]",
      "InputDataConfig[].DataSource.S3DataSource.InstanceGroupNames[]",
      "InputDataConfig[].DataSource.S3DataSource.ModelAccessConfig.AcceptEula",
      "InputDataConfig[].DataSource.S3DataSource.HubAccessConfig.HubContentArn",
      "InputDataConfig[].DataSource.FileSystemDataSource.FileSystemId",
      "InputDataConfig[].DataSource.FileSystemDataSource.FileSystemAccessMode",
      "InputDataConfig[].DataSource.FileSystemDataSource.FileSystemType",
      "InputDataConfig[].DataSource.FileSystemDataSource.DirectoryPath",
      "InputDataConfig[].ContentType",
      "InputDataConfig[].CompressionType",
      "InputDataConfig[].RecordWrapperType",
      "InputDataConfig[].InputMode",
      "InputDataConfig[].ShuffleConfig.Seed",
      "OutputDataConfig.KmsKeyId",
      "OutputDataConfig.S3OutputPath",
      "OutputDataConfig.CompressionType",
      "ResourceConfig.InstanceType",
      "ResourceConfig.InstanceCount",
      "ResourceConfig.VolumeSizeInGB",
      "ResourceConfig.VolumeKmsKeyId",
      "ResourceConfig.KeepAlivePeriodInSeconds",
      "ResourceConfig.InstanceGroups[].InstanceType",
      "ResourceConfig.InstanceGroups[].InstanceCount",
      "ResourceConfig.InstanceGroups[].InstanceGroupName",
      "ResourceConfig.TrainingPlanArn",
      "ResourceConfig.InstancePlacementConfig.EnableMultipleJobs",
      "ResourceConfig.InstancePlacementConfig.PlacementSpecifications[].UltraServerId",
      "ResourceConfig.InstancePlacementConfig.PlacementSpecifications[].InstanceCount",
      "VpcConfig.SecurityGroupIds[]",
      "VpcConfig.Subnets[]",
      "StoppingCondition.MaxRuntimeInSeconds",
      "StoppingCondition.MaxWaitTimeInSeconds",
      "StoppingCondition.MaxPendingTimeInSeconds",
      "Tags[].Key",
      "Tags[].Value",
      "EnableNetworkIsolation",
      "EnableInterContainerTrafficEncryption",
      "EnableManagedSpotTraining",
      "CheckpointConfig.S3Uri",
      "CheckpointConfig.LocalPath",
      "DebugHookConfig.LocalPath",
      "DebugHookConfig.S3OutputPath",
      "DebugHookConfig.HookParameters",
      "DebugHookConfig.CollectionConfigurations[].CollectionName",
      "DebugHookConfig.CollectionConfigurations[].CollectionParameters",
      "DebugRuleConfigurations[].RuleConfigurationName",
      "DebugRuleConfigurations[].LocalPath",
      "DebugRuleConfigurations[].S3OutputPath",
      "DebugRuleConfigurations[].RuleEvaluatorImage",
      "DebugRuleConfigurations[].InstanceType",
      "DebugRuleConfigurations[].VolumeSizeInGB",
      "DebugRuleConfigurations[].RuleParameters",
      "TensorBoardOutputConfig.LocalPath",
      "TensorBoardOutputConfig.S3OutputPath",
      "ExperimentConfig.ExperimentName",
      "ExperimentConfig.TrialName",
      "ExperimentConfig.TrialComponentDisplayName",
      "ExperimentConfig.RunName",
      "ProfilerConfig.S3OutputPath",
      "ProfilerConfig.ProfilingIntervalInMilliseconds",
      "ProfilerConfig.ProfilingParameters",
      "ProfilerConfig.DisableProfiler",
      "ProfilerRuleConfigurations[].RuleConfigurationName",
      "ProfilerRuleConfigurations[].LocalPath",
      "ProfilerRuleConfigurations[].S3OutputPath",
      "ProfilerRuleConfigurations[].RuleEvaluatorImage",
      "ProfilerRuleConfigurations[].InstanceType",
      "ProfilerRuleConfigurations[].VolumeSizeInGB",
      "ProfilerRuleConfigurations[].RuleParameters",
      "Environment",
      "RetryStrategy.MaximumRetryAttempts",
      "RemoteDebugConfig.EnableRemoteDebug",
      "InfraCheckConfig.EnableInfraCheck",
      "SessionChainingConfig.EnableSessionTagChaining",
      "MlflowConfig.MlflowResourceArn",
      "MlflowConfig.MlflowExperimentName",
      "MlflowConfig.MlflowRunName",
      "ModelPackageConfig.ModelPackageGroupArn",
      "ModelPackageConfig.SourceModelPackageArn",
  };
  std::set<std::string> present;
  CollectPaths(Json::parse(ReadTestdata("full.json")), "", &present);
  for (const char* field : kApiFields) EXPECT_TRUE(present.count(field)) << field;
}

TEST(JobSpecGolden, BadManyReportsEveryProblemAtOnce) {
  EXPECT_EQ(
      TextProblems(ReadTestdata("bad_many.json"), SupportedModes{}),
      (Lines{"TrainingJobName: 'bad_name!' must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
             "HyperParameters.epochs: must be a string (SageMaker passes hyperparameters as "
             "strings; write \"10\")",
             "InputDataConfig[0].CompressionType: Gzip requires Pipe mode (effective input mode is "
             "File, from AlgorithmSpecification.TrainingInputMode)",
             "InputDataConfig[1].DataSource.S3DataSource.S3DataType: 'S3Prefx' is not one of "
             "S3Prefix|ManifestFile|AugmentedManifestFile",
             "InputDataConfig[2].DataSource.FileSystemDataSource.DirectoryPath: 'data' must be an "
             "absolute path",
             "InputDataConfig[2].ChannelName: 'train' is already used by InputDataConfig[0]",
             "InputDataConfig[2].DataSource.FileSystemDataSource: requires File mode (effective "
             "input mode is Pipe)",
             "InputDataConfig[2].InputMode: Pipe is not available in this build yet",
             "OutputDataConfig.S3OutputPath: 'bucket/output' must match (https|s3)://([^/]+)/?(.*) "
             "or be a file:// URI",
             "ResourceConfig.VolumeSizeInGB: must be an integer",
             "StoppingCondition.MaxRuntimeInSeconds: must be between 1 and 2419200 (got 0)",
             "Environment.1BAD: key '1BAD' must match [a-zA-Z_][a-zA-Z0-9_]*",
             "Foo: unknown field"}));
}

// ---------------------------------------------------------------------------------------------
// Reporting.

TEST(JobSpecReport, IssueExampleVerbatim) {
  Json spec = Base();
  spec["InputDataConfig"].push_back(Json::parse(R"(
      {"ChannelName": "validation",
       "DataSource": {"S3DataSource": {"S3DataType": "S3Prefx",
                                       "S3Uri": "s3://bucket/validation/"}}})"));
  Result<JobSpec> r = Parse(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().ToString(),
            "InvalidArgument: InputDataConfig[1].DataSource.S3DataSource.S3DataType: 'S3Prefx' is "
            "not one of S3Prefix|ManifestFile|AugmentedManifestFile");
}

TEST(JobSpecReport, SeveralProblemsOneLineEach) {
  Json spec = Base();
  spec["TrainingJobName"] = "";
  spec["AlgorithmSpecification"]["TrainingInputMode"] = "Stream";
  spec["InputDataConfig"][0]["ChannelName"] = "a b";
  spec["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = "ftp://x/y";
  spec["StoppingCondition"] = {{"MaxRuntimeInSeconds", 2419201}};
  spec["Bar"] = 1;
  EXPECT_EQ(Problems(spec).size(), 6u);
}

TEST(JobSpecReport, UserTextCannotBreakTheOneLinePerProblemRule) {
  EXPECT_EQ(Problems(With("/InputDataConfig/0/ChannelName", "a\nb")),
            (Lines{"InputDataConfig[0].ChannelName: 'a\\nb' must match [A-Za-z0-9\\.\\-_]+"}));
  EXPECT_EQ(Problems(With("/Environment", {{"A\nB", "x"}})),
            (Lines{"Environment.A\\nB: key 'A\\nB' must match [a-zA-Z_][a-zA-Z0-9_]*"}));
}

TEST(JobSpecReport, MalformedJsonNamesTheByte) {
  std::vector<std::string> lines = TextProblems(R"({"TrainingJobName": "x",})");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(
      lines[0].rfind("job spec: malformed JSON at byte 25: line 1, column 25: syntax error", 0), 0u)
      << lines[0];
  lines = TextProblems("");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("job spec: malformed JSON at byte 1: ", 0), 0u) << lines[0];
}

TEST(JobSpecReport, NotAnObject) {
  EXPECT_EQ(TextProblems("[]"),
            (Lines{"job spec: must be a JSON object (a CreateTrainingJob request)"}));
}

TEST(JobSpecReport, UnknownFieldsAreErrorsAsInTheApi) {
  EXPECT_EQ(Problems(With("/Foo", 1)), (Lines{"Foo: unknown field"}));
  EXPECT_EQ(Problems(With("/AlgorithmSpecification/Bar", "x")),
            (Lines{"AlgorithmSpecification.Bar: unknown field"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0/DataSource/S3DataSource/Extra", "x")),
            (Lines{kS3Path + ".Extra: unknown field"}));
  // Inside ignored structures too: the API model still defines them.
  EXPECT_EQ(Problems(With("/VpcConfig", {{"Subnets", {"subnet-1"}}, {"Foo", 1}})),
            (Lines{"VpcConfig.Foo: unknown field"}));
  EXPECT_EQ(Problems(With("/DebugRuleConfigurations",
                          Json::array({{{"RuleConfigurationName", "r"}, {"Oops", 1}}}))),
            (Lines{"DebugRuleConfigurations[0].Oops: unknown field"}));
  // A case slip gets a hint.
  Json spec = Base();
  Json& s3 = spec["InputDataConfig"][0]["DataSource"]["S3DataSource"];
  s3["S3uri"] = s3["S3Uri"];
  s3.erase("S3Uri");
  EXPECT_EQ(Problems(spec), (Lines{kS3Path + ".S3Uri: is required",
                                   kS3Path + ".S3uri: unknown field (did you mean S3Uri?)"}));
}

// ---------------------------------------------------------------------------------------------
// Ignored and unsupported fields.

TEST(JobSpecIgnored, ListedByPathAndTypeChecked) {
  Json spec = Base();
  spec["RoleArn"] = "arn:aws:iam::123456789012:role/R";
  spec["ResourceConfig"] = {{"InstanceCount", 1}, {"VolumeSizeInGB", 30}};
  spec["Tags"] = Json::array();
  Result<JobSpec> r = Parse(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->ignored_fields, (Lines{"RoleArn", "ResourceConfig.VolumeSizeInGB", "Tags"}));

  EXPECT_EQ(Problems(With("/RoleArn", 5)), (Lines{"RoleArn: must be a string"}));
  EXPECT_EQ(Problems(With("/Tags", Json::object())), (Lines{"Tags: must be an array"}));
  EXPECT_EQ(Problems(With("/EnableNetworkIsolation", "true")),
            (Lines{"EnableNetworkIsolation: must be a boolean"}));
  EXPECT_EQ(Problems(With("/ResourceConfig", {{"VolumeSizeInGB", "30"}})),
            (Lines{"ResourceConfig.VolumeSizeInGB: must be an integer"}));
  EXPECT_EQ(Problems(With("/ResourceConfig", {{"KeepAlivePeriodInSeconds", 5000000000}})),
            (Lines{"ResourceConfig.KeepAlivePeriodInSeconds: must be an integer"}));
  EXPECT_EQ(Problems(With("/DebugHookConfig", {{"HookParameters", {{"save_interval", 100}}}})),
            (Lines{"DebugHookConfig.HookParameters.save_interval: must be a string"}));
  EXPECT_EQ(Problems(With("/ProfilerConfig", {{"ProfilingIntervalInMilliseconds", 1.5}})),
            (Lines{"ProfilerConfig.ProfilingIntervalInMilliseconds: must be an integer"}));
  EXPECT_EQ(Problems(With("/Tags", Json::array({{{"Key", "k"}, {"Value", nullptr}}}))),
            (Lines{"Tags[0].Value: must be a string"}));
}

TEST(JobSpecIgnored, UnsupportedFieldsAreErrors) {
  EXPECT_EQ(Problems(With("/InputDataConfig/0/DataSource",
                          {{"DatasetSource", {{"DatasetArn", "arn:x"}}}})),
            (Lines{"InputDataConfig[0].DataSource.DatasetSource: not supported by "
                   "trainfeed (SageMaker hub datasets; use S3DataSource)"}));
  EXPECT_EQ(Problems(With("/ServerlessJobConfig", {{"BaseModelArn", "arn:x"}})),
            (Lines{"ServerlessJobConfig: not supported by trainfeed (serverless "
                   "fine-tuning; use AlgorithmSpecification.TrainingImage)"}));
  EXPECT_EQ(Problems(With(kS3Source + "/S3DataType", "Converse")),
            (Lines{kS3Path + ".S3DataType: Converse is not supported by trainfeed"}));
}

// ---------------------------------------------------------------------------------------------
// Job-level rules.

TEST(JobSpecRules, TrainingJobName) {
  EXPECT_EQ(Problems(Without("/TrainingJobName")), (Lines{"TrainingJobName: is required"}));
  EXPECT_EQ(Problems(With("/TrainingJobName", "bad_name!")),
            (Lines{"TrainingJobName: 'bad_name!' must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"}));
  EXPECT_EQ(Problems(With("/TrainingJobName", "-abc")),
            (Lines{"TrainingJobName: '-abc' must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"}));
  EXPECT_EQ(Problems(With("/TrainingJobName", "abc-")),
            (Lines{"TrainingJobName: 'abc-' must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"}));
  EXPECT_EQ(Problems(With("/TrainingJobName", std::string(64, 'a'))),
            (Lines{"TrainingJobName: must be 1 to 63 characters (got 64)"}));
  EXPECT_EQ(Problems(With("/TrainingJobName", "")),
            (Lines{"TrainingJobName: must be 1 to 63 characters (got 0)"}));
  EXPECT_EQ(Problems(With("/TrainingJobName", 12)), (Lines{"TrainingJobName: must be a string"}));
  EXPECT_TRUE(Problems(With("/TrainingJobName", "a--b-" + std::string(58, '9'))).empty());
}

TEST(JobSpecRules, AlgorithmSpecification) {
  EXPECT_EQ(Problems(Without("/AlgorithmSpecification")),
            (Lines{"AlgorithmSpecification: is required"}));
  EXPECT_EQ(Problems(With("/AlgorithmSpecification", nullptr)),
            (Lines{"AlgorithmSpecification: must be an object"}));
  EXPECT_EQ(Problems(Without("/AlgorithmSpecification/TrainingInputMode")),
            (Lines{"AlgorithmSpecification.TrainingInputMode: is required"}));
  EXPECT_EQ(Problems(With("/AlgorithmSpecification/TrainingInputMode", "file")),
            (Lines{"AlgorithmSpecification.TrainingInputMode: 'file' is not one of "
                   "File|Pipe|FastFile (did you mean File?)"}));
  EXPECT_EQ(Problems(With("/AlgorithmSpecification/TrainingImage", std::string(256, 'i'))),
            (Lines{"AlgorithmSpecification.TrainingImage: must be at most 255 characters "
                   "(got 256)"}));
  EXPECT_EQ(Problems(With("/AlgorithmSpecification/ContainerEntrypoint", Json::array())),
            (Lines{"AlgorithmSpecification.ContainerEntrypoint: must have 1 to 100 items "
                   "(got 0)"}));
  EXPECT_EQ(Problems(With("/AlgorithmSpecification/ContainerEntrypoint",
                          std::vector<std::string>(101, "x"))),
            (Lines{"AlgorithmSpecification.ContainerEntrypoint: must have 1 to 100 items "
                   "(got 101)"}));
  EXPECT_EQ(Problems(With("/AlgorithmSpecification/ContainerEntrypoint", "python3 train.py")),
            (Lines{"AlgorithmSpecification.ContainerEntrypoint: must be an array"}));
  EXPECT_EQ(
      Problems(With("/AlgorithmSpecification/ContainerArguments", {"--x", std::string(257, 'a')})),
      (Lines{"AlgorithmSpecification.ContainerArguments[1]: must be at most 256 "
             "characters (got 257)"}));
  EXPECT_EQ(Problems(With("/AlgorithmSpecification/ContainerArguments", {"--epochs", 10})),
            (Lines{"AlgorithmSpecification.ContainerArguments[1]: must be a string"}));
}

TEST(JobSpecRules, HyperParameters) {
  EXPECT_EQ(Problems(With("/HyperParameters", {{"epochs", 10}})),
            (Lines{"HyperParameters.epochs: must be a string (SageMaker passes "
                   "hyperparameters as strings; write \"10\")"}));
  EXPECT_EQ(Problems(With("/HyperParameters", {{"fast", true}})),
            (Lines{"HyperParameters.fast: must be a string (SageMaker passes "
                   "hyperparameters as strings; write \"true\")"}));
  EXPECT_EQ(Problems(With("/HyperParameters", "epochs=10")),
            (Lines{"HyperParameters: must be an object"}));
  Json many = Json::object();
  for (int i = 0; i < 101; ++i) many["k" + std::to_string(i)] = "v";
  EXPECT_EQ(Problems(With("/HyperParameters", many)),
            (Lines{"HyperParameters: must have at most 100 entries (got 101)"}));
  EXPECT_EQ(Problems(With("/HyperParameters", {{std::string(257, 'k'), "v"}})),
            (Lines{"HyperParameters." + std::string(120, 'k') +
                   "...: key must be at most 256 characters (got 257)"}));
  EXPECT_EQ(Problems(With("/HyperParameters", {{"big", std::string(2501, 'v')}})),
            (Lines{"HyperParameters.big: must be at most 2500 characters (got 2501)"}));
  // The limits count characters, not bytes: 2500 characters in 3750 bytes.
  std::string mixed(1250, 'x');
  for (int i = 0; i < 1250; ++i) mixed += "\xC3\xA9";  // é
  EXPECT_TRUE(Problems(With("/HyperParameters", {{"text", mixed}})).empty());
}

TEST(JobSpecRules, Environment) {
  Result<JobSpec> r = Parse(With("/Environment", {{"MY_VAR", "1"}, {"_x9", ""}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->environment.at("MY_VAR"), "1");
  EXPECT_EQ(Problems(With("/Environment", {{"1BAD", "x"}})),
            (Lines{"Environment.1BAD: key '1BAD' must match [a-zA-Z_][a-zA-Z0-9_]*"}));
  EXPECT_EQ(Problems(With("/Environment", {{"A-B", "x"}})),
            (Lines{"Environment.A-B: key 'A-B' must match [a-zA-Z_][a-zA-Z0-9_]*"}));
  EXPECT_EQ(Problems(With("/Environment", {{"N", 1}})), (Lines{"Environment.N: must be a string"}));
  EXPECT_EQ(Problems(With("/Environment", {{"V", std::string(513, 'v')}})),
            (Lines{"Environment.V: must be at most 512 characters (got 513)"}));
  EXPECT_EQ(Problems(With("/Environment", {{std::string(513, 'K'), "v"}})),
            (Lines{"Environment." + std::string(120, 'K') +
                   "...: key must be at most 512 characters (got 513)"}));
  Json many = Json::object();
  for (int i = 0; i < 101; ++i) many["K" + std::to_string(i)] = "v";
  EXPECT_EQ(Problems(With("/Environment", many)),
            (Lines{"Environment: must have at most 100 entries (got 101)"}));
}

TEST(JobSpecRules, OutputDataConfig) {
  Result<JobSpec> r = Parse(With("/OutputDataConfig", {{"S3OutputPath", "file:///srv/out"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->s3_output_path, "file:///srv/out");
  EXPECT_EQ(r->output_compression, "GZIP");
  r = Parse(Without("/OutputDataConfig"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->s3_output_path, "");

  EXPECT_EQ(Problems(With("/OutputDataConfig", Json::object())),
            (Lines{"OutputDataConfig.S3OutputPath: is required"}));
  EXPECT_EQ(Problems(With("/OutputDataConfig/S3OutputPath", "/srv/out")),
            (Lines{"OutputDataConfig.S3OutputPath: '/srv/out' must match "
                   "(https|s3)://([^/]+)/?(.*) or be a file:// URI"}));
  EXPECT_EQ(Problems(With("/OutputDataConfig/CompressionType", "Gzip")),
            (Lines{"OutputDataConfig.CompressionType: 'Gzip' is not one of GZIP|NONE "
                   "(did you mean GZIP?)"}));
}

TEST(JobSpecRules, CheckpointConfig) {
  Result<JobSpec> r = Parse(With("/CheckpointConfig", {{"S3Uri", "s3://bucket/ckpt/"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->checkpoint_s3_uri, "s3://bucket/ckpt/");
  EXPECT_EQ(r->checkpoint_local_path, "/opt/ml/checkpoints/");
  r = Parse(With("/CheckpointConfig", {{"S3Uri", "file:///srv/ckpt"}, {"LocalPath", "/ckpt"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->checkpoint_local_path, "/ckpt");

  EXPECT_EQ(Problems(With("/CheckpointConfig", {{"LocalPath", "/ckpt"}})),
            (Lines{"CheckpointConfig.S3Uri: is required"}));
  EXPECT_EQ(Problems(With("/CheckpointConfig", {{"S3Uri", "s3://b/c"}, {"LocalPath", "ckpt"}})),
            (Lines{"CheckpointConfig.LocalPath: 'ckpt' must be an absolute path"}));
  EXPECT_EQ(Problems(With("/CheckpointConfig", {{"S3Uri", "gs://b/c"}})),
            (Lines{"CheckpointConfig.S3Uri: 'gs://b/c' must match "
                   "(https|s3)://([^/]+)/?(.*) or be a file:// URI"}));
}

TEST(JobSpecRules, ResourceConfig) {
  Result<JobSpec> r =
      Parse(With("/ResourceConfig", {{"InstanceType", "ml.m5.xlarge"}, {"InstanceCount", 3}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->instance_type, "ml.m5.xlarge");
  EXPECT_EQ(r->instance_count, 3);
  EXPECT_EQ(Problems(With("/ResourceConfig", {{"InstanceCount", 0}})),
            (Lines{"ResourceConfig.InstanceCount: must be between 1 and 1000 (got 0)"}));
  EXPECT_EQ(Problems(With("/ResourceConfig", {{"InstanceCount", 1001}})),
            (Lines{"ResourceConfig.InstanceCount: must be between 1 and 1000 (got 1001)"}));
  EXPECT_EQ(Problems(With("/ResourceConfig", {{"InstanceCount", "2"}})),
            (Lines{"ResourceConfig.InstanceCount: must be an integer"}));
  EXPECT_EQ(Problems(With("/ResourceConfig", {{"InstanceType", 5}})),
            (Lines{"ResourceConfig.InstanceType: must be a string"}));
}

TEST(JobSpecRules, StoppingCondition) {
  Result<JobSpec> r = Parse(With("/StoppingCondition", {{"MaxRuntimeInSeconds", 2419200}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->max_runtime_seconds, 2419200);
  EXPECT_EQ(Problems(With("/StoppingCondition", {{"MaxRuntimeInSeconds", 0}})),
            (Lines{"StoppingCondition.MaxRuntimeInSeconds: must be between 1 and 2419200 "
                   "(got 0)"}));
  EXPECT_EQ(Problems(With("/StoppingCondition", {{"MaxRuntimeInSeconds", 2419201}})),
            (Lines{"StoppingCondition.MaxRuntimeInSeconds: must be between 1 and 2419200 "
                   "(got 2419201)"}));
  EXPECT_EQ(Problems(With("/StoppingCondition", {{"MaxRuntimeInSeconds", 3600.0}})),
            (Lines{"StoppingCondition.MaxRuntimeInSeconds: must be an integer"}));
}

// ---------------------------------------------------------------------------------------------
// Channels.

TEST(JobSpecChannels, Count) {
  EXPECT_EQ(Problems(With("/InputDataConfig", Json::array())),
            (Lines{"InputDataConfig: must have 1 to 20 channels (got 0)"}));
  Json spec = Base();
  for (int i = 1; i <= 20; ++i) {
    Json channel = spec["InputDataConfig"][0];
    channel["ChannelName"] = "c" + std::to_string(i);
    spec["InputDataConfig"].push_back(channel);
  }
  EXPECT_EQ(Problems(spec), (Lines{"InputDataConfig: must have 1 to 20 channels (got 21)"}));
  EXPECT_EQ(Problems(With("/InputDataConfig", Json::object())),
            (Lines{"InputDataConfig: must be an array"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0", "train")),
            (Lines{"InputDataConfig[0]: must be an object"}));
  // Optional in the API: a job may read no data at all.
  EXPECT_TRUE(Problems(Without("/InputDataConfig")).empty());
}

TEST(JobSpecChannels, ChannelName) {
  EXPECT_EQ(Problems(Without("/InputDataConfig/0/ChannelName")),
            (Lines{"InputDataConfig[0].ChannelName: is required"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0/ChannelName", "train data")),
            (Lines{"InputDataConfig[0].ChannelName: 'train data' must match "
                   "[A-Za-z0-9\\.\\-_]+"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0/ChannelName", std::string(65, 'c'))),
            (Lines{"InputDataConfig[0].ChannelName: must be 1 to 64 characters (got 65)"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0/ChannelName", "..")),
            (Lines{"InputDataConfig[0].ChannelName: '..' cannot name a directory"}));
  EXPECT_TRUE(Problems(With("/InputDataConfig/0/ChannelName", "a.b-c_D9")).empty());
}

TEST(JobSpecChannels, NamesAreUniqueAndTheErrorNamesBothIndices) {
  Json spec = Base();
  Json other = spec["InputDataConfig"][0];
  other["ChannelName"] = "other";
  spec["InputDataConfig"].push_back(other);
  spec["InputDataConfig"].push_back(spec["InputDataConfig"][0]);
  EXPECT_EQ(Problems(spec), (Lines{"InputDataConfig[2].ChannelName: 'train' is already "
                                   "used by InputDataConfig[0]"}));
}

TEST(JobSpecChannels, PipeFifoNamesMustNotClashWithChannels) {
  Json spec = Base();
  spec["InputDataConfig"][0]["InputMode"] = "Pipe";
  Json other = spec["InputDataConfig"][0];
  other["ChannelName"] = "train_1";
  other["InputMode"] = "File";
  spec["InputDataConfig"].push_back(other);
  EXPECT_EQ(Problems(spec),
            (Lines{"InputDataConfig[1].ChannelName: 'train_1' clashes with the FIFOs of "
                   "Pipe channel 'train' (InputDataConfig[0])"}));
  spec["InputDataConfig"][1]["ChannelName"] = "train_x";
  EXPECT_TRUE(Problems(spec).empty());
}

TEST(JobSpecChannels, DataSourceHasExactlyOneSource) {
  EXPECT_EQ(Problems(Without("/InputDataConfig/0/DataSource")),
            (Lines{"InputDataConfig[0].DataSource: is required"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0/DataSource", Json::object())),
            (Lines{"InputDataConfig[0].DataSource: must have exactly one of "
                   "S3DataSource|FileSystemDataSource (got none)"}));
  Json spec = Base();
  spec["InputDataConfig"][0]["DataSource"]["FileSystemDataSource"] =
      FileSystemChannel("fs-0123abcd", "EFS")["DataSource"]["FileSystemDataSource"];
  EXPECT_EQ(Problems(spec), (Lines{"InputDataConfig[0].DataSource: must have exactly one "
                                   "of S3DataSource|FileSystemDataSource (got "
                                   "S3DataSource and FileSystemDataSource)"}));
}

TEST(JobSpecChannels, S3DataSource) {
  EXPECT_EQ(Problems(Without(kS3Source + "/S3DataType")),
            (Lines{kS3Path + ".S3DataType: is required"}));
  EXPECT_EQ(Problems(Without(kS3Source + "/S3Uri")), (Lines{kS3Path + ".S3Uri: is required"}));
  EXPECT_EQ(Problems(With(kS3Source + "/S3DataType", "s3prefix")),
            (Lines{kS3Path + ".S3DataType: 's3prefix' is not one of "
                             "S3Prefix|ManifestFile|AugmentedManifestFile (did you mean "
                             "S3Prefix?)"}));
  EXPECT_EQ(Problems(With(kS3Source + "/S3DataDistributionType", "Sharded")),
            (Lines{kS3Path + ".S3DataDistributionType: 'Sharded' is not one of "
                             "FullyReplicated|ShardedByS3Key"}));
  EXPECT_EQ(Problems(With(kS3Source + "/InstanceGroupNames", {"a", "b", "c", "d", "e", "f"})),
            (Lines{kS3Path + ".InstanceGroupNames: must have at most 5 items (got 6)"}));
}

TEST(JobSpecChannels, S3Uri) {
  for (const char* ok :
       {"s3://bucket", "s3://bucket/", "s3://bucket/a/b.csv", "https://bucket.s3.amazonaws.com/key",
        "file:///srv/data", "file://relative/data"}) {
    EXPECT_TRUE(Problems(With(kS3Source + "/S3Uri", ok)).empty()) << ok;
  }
  for (const char* bad : {"", "bucket/key", "s3://", "s3:///key", "http://bucket/key", "file://",
                          "S3://bucket/key"}) {
    EXPECT_EQ(Problems(With(kS3Source + "/S3Uri", bad)),
              (Lines{kS3Path + ".S3Uri: '" + bad +
                     "' must match (https|s3)://([^/]+)/?(.*) or be a file:// URI"}))
        << bad;
  }
  EXPECT_EQ(Problems(With(kS3Source + "/S3Uri", "s3://b/" + std::string(1018, 'k'))),
            (Lines{kS3Path + ".S3Uri: must be at most 1024 characters (got 1025)"}));
}

TEST(JobSpecChannels, AttributeNames) {
  EXPECT_EQ(Problems(With(kS3Source + "/AttributeNames", {"source-ref"})),
            (Lines{kS3Path + ".AttributeNames: is only allowed with S3DataType "
                             "AugmentedManifestFile"}));
  Json spec = With(kS3Source + "/S3DataType", "AugmentedManifestFile");
  spec["AlgorithmSpecification"]["TrainingInputMode"] = "Pipe";
  EXPECT_EQ(Problems(spec), (Lines{kS3Path + ".AttributeNames: is required with "
                                             "S3DataType AugmentedManifestFile"}));
  spec[Json::json_pointer(kS3Source + "/AttributeNames")] = std::vector<std::string>(17, "a");
  EXPECT_EQ(Problems(spec),
            (Lines{kS3Path + ".AttributeNames: must have at most 16 items (got 17)"}));
  spec[Json::json_pointer(kS3Source + "/AttributeNames")] = {"source-ref", ""};
  EXPECT_EQ(Problems(spec),
            (Lines{kS3Path + ".AttributeNames[1]: must be 1 to 256 characters (got 0)"}));
  spec[Json::json_pointer(kS3Source + "/AttributeNames")] = {"source-ref", "class"};
  EXPECT_TRUE(Problems(spec).empty());
}

TEST(JobSpecChannels, FileSystemDataSource) {
  const std::string fs = "InputDataConfig[0].DataSource.FileSystemDataSource";
  EXPECT_EQ(
      Problems(With("/InputDataConfig/0/DataSource", {{"FileSystemDataSource", Json::object()}})),
      (Lines{fs + ".FileSystemId: is required", fs + ".FileSystemAccessMode: is required",
             fs + ".FileSystemType: is required", fs + ".DirectoryPath: is required"}));
  for (const char* ok : {"fs-0123abcd", "fs-0123456789abcdef0", "nfs://server/export",
                         "nfs://10.0.0.2/", "file:///mnt/shared"}) {
    EXPECT_TRUE(Problems(With("/InputDataConfig/0", FileSystemChannel(ok, "EFS"))).empty()) << ok;
  }
  for (const char* ok : {"mgs@tcp:/fsname", "10.0.0.1@tcp:10.0.0.2@tcp:/fs", "file:///mnt/x"}) {
    EXPECT_TRUE(Problems(With("/InputDataConfig/0", FileSystemChannel(ok, "FSxLustre"))).empty())
        << ok;
  }
  for (const char* bad :
       {"fs-0123abc", "fs-0123ABCD", "fs-0123456789abcdef012", "nfs://server", "nfs:///export",
        "file://relative", "mgs@tcp:fs", "@tcp:/fs", "mgs@:/fs", "mgs@tcp:/", "efs-volume"}) {
    EXPECT_EQ(Problems(With("/InputDataConfig/0", FileSystemChannel(bad, "EFS"))),
              (Lines{fs + ".FileSystemId: '" + bad +
                     "' must be fs-[0-9a-f]{8,} (11 to 21 characters), "
                     "nfs://server/export, mgs@tcp:/fsname or file:///path"}))
        << bad;
  }
  EXPECT_EQ(Problems(With("/InputDataConfig/0", FileSystemChannel("nfs://s/e", "FSxLustre"))),
            (Lines{fs + ".FileSystemType: FSxLustre does not fit the NFS address in "
                        "FileSystemId (use EFS)"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0", FileSystemChannel("m@tcp:/fs", "EFS"))),
            (Lines{fs + ".FileSystemType: EFS does not fit the Lustre address in "
                        "FileSystemId (use FSxLustre)"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0", FileSystemChannel("fs-0123abcd", "NFS"))),
            (Lines{fs + ".FileSystemType: 'NFS' is not one of EFS|FSxLustre"}));
  Json spec = With("/InputDataConfig/0", FileSystemChannel("fs-0123abcd", "EFS"));
  Json& source = spec["InputDataConfig"][0]["DataSource"]["FileSystemDataSource"];
  source["FileSystemAccessMode"] = "RO";
  source["DirectoryPath"] = "data/train";
  EXPECT_EQ(Problems(spec),
            (Lines{fs + ".FileSystemAccessMode: 'RO' is not one of ro|rw (did you mean ro?)",
                   fs + ".DirectoryPath: 'data/train' must be an absolute path"}));
  source["FileSystemAccessMode"] = "rw";
  source["DirectoryPath"] = "/" + std::string(4096, 'd');
  EXPECT_EQ(Problems(spec),
            (Lines{fs + ".DirectoryPath: must be at most 4096 characters (got 4097)"}));
}

TEST(JobSpecChannels, OtherChannelFields) {
  const std::string ch = "InputDataConfig[0]";
  EXPECT_EQ(Problems(With("/InputDataConfig/0/ContentType", std::string(257, 't'))),
            (Lines{ch + ".ContentType: must be at most 256 characters (got 257)"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0/CompressionType", "GZIP")),
            (Lines{ch + ".CompressionType: 'GZIP' is not one of None|Gzip (did you mean "
                        "Gzip?)"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0/RecordWrapperType", "TFRecord")),
            (Lines{ch + ".RecordWrapperType: 'TFRecord' is not one of None|RecordIO"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0/InputMode", "Stream")),
            (Lines{ch + ".InputMode: 'Stream' is not one of File|Pipe|FastFile"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0/ShuffleConfig", Json::object())),
            (Lines{ch + ".ShuffleConfig.Seed: is required"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0/ShuffleConfig", {{"Seed", "7"}})),
            (Lines{ch + ".ShuffleConfig.Seed: must be an integer"}));
  EXPECT_EQ(Problems(With("/InputDataConfig/0/ShuffleConfig", {{"Seed", 18446744073709551615u}})),
            (Lines{ch + ".ShuffleConfig.Seed: must be between -9223372036854775808 and "
                        "9223372036854775807 (got 18446744073709551615)"}));
  Result<JobSpec> r = Parse(With("/InputDataConfig/0/ShuffleConfig", {{"Seed", -5}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->channels[0].shuffle_seed, -5);
}

// ---------------------------------------------------------------------------------------------
// Input modes.

TEST(JobSpecModes, EffectiveModeIsTheChannelsElseTheJobs) {
  Json spec = Base();
  spec["AlgorithmSpecification"]["TrainingInputMode"] = "FastFile";
  Json other = spec["InputDataConfig"][0];
  other["ChannelName"] = "validation";
  other["InputMode"] = "File";
  spec["InputDataConfig"].push_back(other);
  Json piped = spec["InputDataConfig"][0];
  piped["ChannelName"] = "stream";
  piped["InputMode"] = "Pipe";
  spec["InputDataConfig"].push_back(piped);
  Result<JobSpec> r = Parse(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->training_input_mode, "FastFile");
  EXPECT_EQ(r->channels[0].input_mode, "FastFile");
  EXPECT_EQ(r->channels[1].input_mode, "File");
  EXPECT_EQ(r->channels[2].input_mode, "Pipe");
}

TEST(JobSpecModes, FastFileOnlyWithS3PrefixOnAFolderBoundary) {
  Json spec = With("/InputDataConfig/0/InputMode", "FastFile");
  spec[Json::json_pointer(kS3Source + "/S3DataType")] = "ManifestFile";
  spec[Json::json_pointer(kS3Source + "/S3Uri")] = "s3://bucket/train.manifest";
  EXPECT_EQ(Problems(spec),
            (Lines{kS3Path + ".S3DataType: ManifestFile cannot be used in FastFile mode, "
                             "only S3Prefix (effective input mode is FastFile)"}));
  spec[Json::json_pointer(kS3Source + "/S3DataType")] = "AugmentedManifestFile";
  spec[Json::json_pointer(kS3Source + "/AttributeNames")] = {"source-ref"};
  EXPECT_EQ(Problems(spec),
            (Lines{kS3Path + ".S3DataType: AugmentedManifestFile cannot be used in "
                             "FastFile mode, only S3Prefix (effective input mode is "
                             "FastFile)"}));

  spec = With("/InputDataConfig/0/InputMode", "FastFile");
  for (const char* bad : {"s3://bucket/train", "s3://bucket/train-01", "file:///srv/train"}) {
    spec[Json::json_pointer(kS3Source + "/S3Uri")] = bad;
    EXPECT_EQ(Problems(spec), (Lines{kS3Path + ".S3Uri: '" + bad +
                                     "' must end in '/' in FastFile mode, which mounts a "
                                     "folder (effective input mode is FastFile)"}))
        << bad;
  }
  for (const char* ok :
       {"s3://bucket", "s3://bucket/", "s3://bucket/train-01/", "file:///srv/train/"}) {
    spec[Json::json_pointer(kS3Source + "/S3Uri")] = ok;
    EXPECT_TRUE(Problems(spec).empty()) << ok;
  }
}

TEST(JobSpecModes, FileSystemsNeedFileMode) {
  Json spec = With("/InputDataConfig/0", FileSystemChannel("fs-0123abcd", "EFS"));
  spec["AlgorithmSpecification"]["TrainingInputMode"] = "Pipe";
  EXPECT_EQ(Problems(spec),
            (Lines{"InputDataConfig[0].DataSource.FileSystemDataSource: requires File mode "
                   "(effective input mode is Pipe, from "
                   "AlgorithmSpecification.TrainingInputMode)"}));
  spec["InputDataConfig"][0]["InputMode"] = "FastFile";
  EXPECT_EQ(Problems(spec),
            (Lines{"InputDataConfig[0].DataSource.FileSystemDataSource: requires File mode "
                   "(effective input mode is FastFile)"}));
  spec["InputDataConfig"][0]["InputMode"] = "File";
  EXPECT_TRUE(Problems(spec).empty());
}

TEST(JobSpecModes, GzipAndRecordIOOnlyInPipe) {
  Json spec = Base();
  spec["InputDataConfig"][0]["CompressionType"] = "Gzip";
  spec["InputDataConfig"][0]["RecordWrapperType"] = "RecordIO";
  EXPECT_EQ(Problems(spec),
            (Lines{"InputDataConfig[0].CompressionType: Gzip requires Pipe mode (effective "
                   "input mode is File, from AlgorithmSpecification.TrainingInputMode)",
                   "InputDataConfig[0].RecordWrapperType: RecordIO requires Pipe mode "
                   "(effective input mode is File, from "
                   "AlgorithmSpecification.TrainingInputMode)"}));
  spec["InputDataConfig"][0]["InputMode"] = "FastFile";
  EXPECT_EQ(Problems(spec).size(), 2u);
  spec["InputDataConfig"][0]["InputMode"] = "Pipe";
  EXPECT_TRUE(Problems(spec).empty());
  // "None" is the default and fits every mode.
  spec["InputDataConfig"][0]["InputMode"] = "File";
  spec["InputDataConfig"][0]["CompressionType"] = "None";
  spec["InputDataConfig"][0]["RecordWrapperType"] = "None";
  EXPECT_TRUE(Problems(spec).empty());
}

TEST(JobSpecModes, AugmentedManifestInPipeAndFile) {
  Json spec = With(kS3Source + "/S3DataType", "AugmentedManifestFile");
  spec[Json::json_pointer(kS3Source + "/AttributeNames")] = {"source-ref", "class"};
  EXPECT_TRUE(Problems(spec).empty());  // File: unspecified by AWS, accepted here
  spec["InputDataConfig"][0]["InputMode"] = "Pipe";
  EXPECT_TRUE(Problems(spec).empty());
}

TEST(JobSpecModes, UnavailableModesAreErrorsNeverFallbacks) {
  SupportedModes file_only;
  EXPECT_EQ(Problems(With("/InputDataConfig/0/InputMode", "FastFile"), file_only),
            (Lines{"InputDataConfig[0].InputMode: FastFile is not available in this build "
                   "yet"}));
  // Inherited by several channels: said once, where it was written.
  Json spec = With("/AlgorithmSpecification/TrainingInputMode", "Pipe");
  Json other = spec["InputDataConfig"][0];
  other["ChannelName"] = "validation";
  spec["InputDataConfig"].push_back(other);
  EXPECT_EQ(Problems(spec, file_only),
            (Lines{"AlgorithmSpecification.TrainingInputMode: Pipe is not available in "
                   "this build yet"}));
  // A job default that no channel uses does not matter.
  spec["InputDataConfig"][0]["InputMode"] = "File";
  spec["InputDataConfig"][1]["InputMode"] = "File";
  EXPECT_TRUE(Problems(spec, file_only).empty());
  EXPECT_TRUE(Problems(With("/InputDataConfig/0/InputMode", "FastFile"),
                       SupportedModes{.file = true, .fast_file = true, .pipe = false})
                  .empty());
  EXPECT_EQ(Problems(Base(), SupportedModes{.file = false, .fast_file = true, .pipe = true}),
            (Lines{"AlgorithmSpecification.TrainingInputMode: File is not available in "
                   "this build yet"}));
}

}  // namespace
}  // namespace trainfeed
