#include "job/container_contract.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace trainfeed {
namespace {

using EnvMap = std::map<std::string, std::string>;

// Expected values below were produced by the toolkit's own rules (json.loads, to_env_vars,
// to_cmd_args) run under Python 3 on the same inputs.

// A 3-channel job: a sharded File channel, a Pipe channel and a file-system channel that takes
// the job's default mode.
JobSpec ExampleSpec() {
  JobSpec spec;
  spec.training_job_name = "my-job";
  spec.training_input_mode = "File";
  spec.instance_count = 2;
  spec.instance_type = "ml.p3.2xlarge";
  spec.hyperparameters = {
      {"epochs", "10"},    {"learning-rate", "0.001"}, {"sagemaker_program", "\"train.py\""},
      {"name", "\"abc\""}, {"flag", "true"},           {"nested", "{\"a\":1}"}};

  ChannelSpec train;
  train.name = "train-data";
  train.s3 = S3DataSourceSpec{"S3Prefix", "s3://bucket/train/", "ShardedByS3Key", {}, {}};
  train.content_type = "text/csv";
  train.input_mode = "File";

  ChannelSpec validation;
  validation.name = "validation";
  validation.s3 = S3DataSourceSpec{"S3Prefix", "s3://bucket/val/", "FullyReplicated", {}, {}};
  validation.content_type = "application/x-recordio";
  validation.record_wrapper_type = "RecordIO";
  validation.input_mode = "Pipe";

  ChannelSpec images;
  images.name = "images";
  images.file_system = FileSystemDataSourceSpec{"fs-0123abcd", "EFS", "/images", "ro"};

  spec.channels = {train, validation, images};
  spec.environment = {{"MY_VAR", "x"}, {"SM_MODEL_DIR", "/override"}};
  return spec;
}

HostIdentity TwoHosts(std::string current = "algo-2") {
  HostIdentity id;
  id.hosts = {"algo-1", "algo-2"};
  id.current_host = std::move(current);
  return id;
}

HostFacts Facts() {
  HostFacts facts;
  facts.num_gpus = 1;
  facts.num_cpus = 8;
  return facts;
}

EnvMap EnvOf(const JobSpec& spec, const HostIdentity& id = TwoHosts(),
             const HostFacts& facts = Facts()) {
  auto env = ContractEnvironment(MakeJobPaths("/jobs/j1", spec), spec, id, facts);
  return EnvMap(env.begin(), env.end());
}

constexpr char kInputDataConfig[] =
    R"({"images":{"RecordWrapperType":"None","S3DistributionType":"FullyReplicated",)"
    R"("TrainingInputMode":"File"},"train-data":{"ContentType":"text/csv",)"
    R"("RecordWrapperType":"None","S3DistributionType":"ShardedByS3Key",)"
    R"("TrainingInputMode":"File"},"validation":{"ContentType":"application/x-recordio",)"
    R"("RecordWrapperType":"RecordIO","S3DistributionType":"FullyReplicated",)"
    R"("TrainingInputMode":"Pipe"}})";

constexpr char kResourceConfig[] =
    R"({"current_group_name":"homogeneousCluster","current_host":"algo-2",)"
    R"("current_instance_type":"ml.p3.2xlarge","hosts":["algo-1","algo-2"],)"
    R"("instance_groups":[{"hosts":["algo-1","algo-2"],)"
    R"("instance_group_name":"homogeneousCluster","instance_type":"ml.p3.2xlarge"}],)"
    R"("network_interface_name":"eth0"})";

constexpr char kHyperparameters[] =
    R"({"epochs":"10","flag":"true","learning-rate":"0.001","name":"\"abc\"",)"
    R"("nested":"{\"a\":1}","sagemaker_program":"\"train.py\""})";

TEST(ContainerContract, EveryVariableOfTheExampleJob) {
  const std::string r = "/jobs/j1/opt/ml";
  const std::string hps =
      R"({"epochs":10,"flag":true,"learning-rate":0.001,"name":"abc","nested":{"a":1}})";
  const std::string groups_dict =
      R"({"homogeneousCluster":{"hosts":["algo-1","algo-2"],)"
      R"("instance_group_name":"homogeneousCluster","instance_type":"ml.p3.2xlarge"}})";
  const std::string training_env =
      R"({"additional_framework_parameters":{},"channel_input_dirs":{"images":")" + r +
      R"(/input/data/images","train-data":")" + r + R"(/input/data/train-data","validation":")" +
      r +
      R"(/input/data/validation"},"current_host":"algo-2",)"
      R"("current_instance_group":"homogeneousCluster",)"
      R"("current_instance_group_hosts":["algo-1","algo-2"],)"
      R"("current_instance_type":"ml.p3.2xlarge","distribution_hosts":[],)"
      R"("distribution_instance_groups":[],"framework_module":null,"hosts":["algo-1","algo-2"],)"
      R"("hyperparameters":)" +
      hps + R"(,"input_config_dir":")" + r + R"(/input/config","input_data_config":)" +
      kInputDataConfig + R"(,"input_dir":")" + r +
      R"(/input","instance_groups":["homogeneousCluster"],"instance_groups_dict":)" + groups_dict +
      R"(,"is_hetero":false,"is_master":false,"is_modelparallel_enabled":null,)"
      R"("is_smddpmprun_installed":false,"job_name":"my-job","log_level":20,)"
      R"("master_hostname":"algo-1","model_dir":")" +
      r + R"(/model","module_dir":")" + r +
      R"(/code","module_name":"train","network_interface_name":"eth0","num_cpus":8,)"
      R"("num_gpus":1,"num_neurons":0,"output_data_dir":")" +
      r + R"(/output/data","output_dir":")" + r + R"(/output","output_intermediate_dir":")" + r +
      R"(/output/intermediate","resource_config":)" + kResourceConfig +
      R"(,"user_entry_point":"train.py"})";

  const EnvMap expected = {
      {"MY_VAR", "x"},
      {"SAGEMAKER_BASE_DIR", r},
      {"SM_CHANNELS", R"(["images","train-data","validation"])"},
      {"SM_CHANNEL_IMAGES", r + "/input/data/images"},
      {"SM_CHANNEL_TRAIN-DATA", r + "/input/data/train-data"},
      {"SM_CHANNEL_VALIDATION", r + "/input/data/validation"},  // Pipe: the FIFOs' sibling
      {"SM_CURRENT_HOST", "algo-2"},
      {"SM_CURRENT_INSTANCE_GROUP", "homogeneousCluster"},
      {"SM_CURRENT_INSTANCE_GROUP_HOSTS", R"(["algo-1","algo-2"])"},
      {"SM_CURRENT_INSTANCE_TYPE", "ml.p3.2xlarge"},
      {"SM_DISTRIBUTION_INSTANCE_GROUPS", "[]"},
      {"SM_FRAMEWORK_MODULE", ""},
      {"SM_FRAMEWORK_PARAMS", "{}"},
      {"SM_HOSTS", R"(["algo-1","algo-2"])"},
      {"SM_HPS", hps},
      {"SM_HP_EPOCHS", "10"},
      {"SM_HP_FLAG", "true"},
      {"SM_HP_LEARNING-RATE", "0.001"},
      {"SM_HP_NAME", "abc"},
      {"SM_HP_NESTED", R"({"a":1})"},
      {"SM_INPUT_CONFIG_DIR", r + "/input/config"},
      {"SM_INPUT_DATA_CONFIG", kInputDataConfig},
      {"SM_INPUT_DIR", r + "/input"},
      {"SM_INSTANCE_GROUPS", R"(["homogeneousCluster"])"},
      {"SM_INSTANCE_GROUPS_DICT", groups_dict},
      {"SM_IS_HETERO", "false"},
      {"SM_LOG_LEVEL", "20"},
      {"SM_MODEL_DIR", r + "/model"},  // the job's Environment does not win over the toolkit
      {"SM_MODULE_DIR", r + "/code"},
      {"SM_MODULE_NAME", "train"},
      {"SM_NETWORK_INTERFACE_NAME", "eth0"},
      {"SM_NUM_CPUS", "8"},
      {"SM_NUM_GPUS", "1"},
      {"SM_NUM_NEURONS", "0"},
      {"SM_OUTPUT_DATA_DIR", r + "/output/data"},
      {"SM_OUTPUT_DIR", r + "/output"},
      {"SM_OUTPUT_INTERMEDIATE_DIR", r + "/output/intermediate"},
      {"SM_RESOURCE_CONFIG", kResourceConfig},
      {"SM_TRAINING_ENV", training_env},
      {"SM_USER_ARGS",
       R"(["--epochs","10","--flag","True","--learning-rate","0.001","--name","abc",)"
       R"("--nested","a=1"])"},
      {"SM_USER_ENTRY_POINT", "train.py"},
      {"TRAINING_JOB_ARN", "arn:aws:sagemaker:local:000000000000:training-job/my-job"},
      {"TRAINING_JOB_NAME", "my-job"},
  };
  const EnvMap actual = EnvOf(ExampleSpec());
  for (const auto& [name, value] : expected) {
    auto it = actual.find(name);
    if (it == actual.end()) {
      ADD_FAILURE() << "missing " << name;
    } else {
      EXPECT_EQ(it->second, value) << name;
    }
  }
  for (const auto& [name, value] : actual) {
    EXPECT_TRUE(expected.count(name)) << "unexpected " << name << "=" << value;
  }
}

TEST(ContainerContract, EnvironmentIsSortedAndUnique) {
  JobSpec spec = ExampleSpec();
  auto env = ContractEnvironment(MakeJobPaths("/jobs/j1", spec), spec, TwoHosts(), Facts());
  for (size_t i = 1; i < env.size(); ++i) EXPECT_LT(env[i - 1].first, env[i].first);
}

TEST(ContainerContract, HyperparameterArgsOrderAndForms) {
  JobSpec spec = ExampleSpec();
  EXPECT_EQ(HyperparameterArgs(spec),
            (std::vector<std::string>{"--epochs", "10", "--flag", "True", "--learning-rate",
                                      "0.001", "--name", "abc", "--nested", "a=1"}));

  spec.hyperparameters = {
      {"k", "1"},
      {"\xC3\xA9", "2"},  // one character, two bytes: still "-é"
      {"", "\"empty\""},
      {"t", "true"},
      {"f", "false"},
      {"none", "null"},
      {"list", R"([1,"a",null,true,0.5,"it's"])"},
      {"dict", R"({"z":[1,2],"b":null,"c":true,"a":"x","n":{"z":1,"a":"q"}})"},
      {"float", "1e-05"},
      {"inf", "Infinity"},
      {"str", "plain text"},
      {"sagemaker_region", "\"us-east-1\""},
      {"sagemaker_anything", "1"},
      {"_tuning_objective_metric", "\"loss\""},
      {"default_user_module_name", "\"m\""},
  };
  EXPECT_EQ(
      HyperparameterArgs(spec),
      (std::vector<std::string>{"",          "empty",
                                "--dict",    "a=x,b=None,c=True,n={'z': 1, 'a': 'q'},z=[1, 2]",
                                "-f",        "False",
                                "--float",   "1e-05",
                                "--inf",     "inf",
                                "-k",        "1",
                                "--list",    "[1, 'a', None, True, 0.5, \"it's\"]",
                                "--none",    "",
                                "--str",     "plain text",
                                "-t",        "True",
                                "-\xC3\xA9", "2"}));
  EXPECT_EQ(EnvOf(spec)["SM_USER_ARGS"],
            R"(["","empty","--dict","a=x,b=None,c=True,n={'z': 1, 'a': 'q'},z=[1, 2]",)"
            R"("-f","False","--float","1e-05","--inf","inf","-k","1",)"
            R"("--list","[1, 'a', None, True, 0.5, \"it's\"]","--none","","--str",)"
            R"("plain text","-t","True","-\u00e9","2"])");
}

TEST(ContainerContract, ValuesEncodeLikePythonJsonDumps) {
  const std::pair<std::string, std::string> cases[] = {
      {"[\"\xC3\xA9\",\"\xE6\x97\xA5\xE6\x9C\xAC\",\"\xF0\x9F\x98\x80\"]",
       R"(["\u00e9","\u65e5\u672c","\ud83d\ude00"])"},
      {"\"\xC3\xA9\"", "\xC3\xA9"},  // a str is written raw, not escaped
      {"0.001", "0.001"},
      {"1e-05", "1e-05"},
      {"0.00001", "1e-05"},
      {"0.0001", "0.0001"},
      {"1e15", "1000000000000000.0"},
      {"1e16", "1e+16"},
      {"123456789.125", "123456789.125"},
      {"1.5e300", "1.5e+300"},
      {"1E5", "100000.0"},
      {"[1,2.50,1e2]", "[1,2.5,100.0]"},
      {"-0.0", "-0.0"},
      {"-0", "0"},
      {"12345678901234567890", "12345678901234567890"},
      {"true", "true"},
      {"false", "false"},
      {"null", ""},
      {"NaN", "NaN"},
      {" Infinity ", "Infinity"},
      {"-Infinity", "-Infinity"},
      {R"({"b":1,"a":{"d":[],"c":null}})", R"({"a":{"c":null,"d":[]},"b":1})"},
      {R"(["\u007f","\u001f","\n","\"","\\","/"])", R"(["\u007f","\u001f","\n","\"","\\","/"])"},
      {"abc", "abc"},
      {"\"\"", ""},
      {R"("\"quoted\"")", "\"quoted\""},
      {" 10 ", "10"},
      {"\xEF\xBB\xBF"
       "10",
       "\xEF\xBB\xBF"
       "10"},  // Python refuses a BOM: kept raw
      {R"({"a":1} x)", R"({"a":1} x)"},
  };
  for (const auto& [raw, expected] : cases) {
    EXPECT_EQ(SmHyperparameterValue(raw), expected) << raw;
  }
}

TEST(ContainerContract, ControlAndFrameworkHyperparameters) {
  JobSpec spec = ExampleSpec();
  spec.hyperparameters = {
      {"epochs", "3"},
      {"sagemaker_program", "\"train.py\""},
      {"sagemaker_submit_directory", "\"s3://bucket/src/sourcedir.tar.gz\""},
      {"sagemaker_container_log_level", "10"},
      {"sagemaker_mpi_enabled", "true"},
      {"sagemaker_mpi_num_of_processes_per_host", "8"},
      {"_tuning_objective_metric", "\"loss\""},
  };
  spec.environment = {{"SAGEMAKER_PROGRAM", "entry.py"},
                      {"SAGEMAKER_TRAINING_MODULE", "sagemaker_pytorch_container.training:main"}};
  EnvMap env = EnvOf(spec, TwoHosts("algo-1"));
  EXPECT_EQ(env["SM_HPS"], R"({"epochs":3})");
  EXPECT_EQ(env["SM_USER_ARGS"], R"(["--epochs","3"])");
  EXPECT_EQ(env.count("SM_HP__TUNING_OBJECTIVE_METRIC"), 0u);
  EXPECT_EQ(env["SM_FRAMEWORK_PARAMS"],
            R"({"sagemaker_mpi_enabled":true,"sagemaker_mpi_num_of_processes_per_host":8})");
  EXPECT_EQ(env["SM_DISTRIBUTION_INSTANCE_GROUPS"], R"(["homogeneousCluster"])");
  EXPECT_EQ(env["SM_LOG_LEVEL"], "10");
  EXPECT_EQ(env["SM_MODULE_DIR"], "s3://bucket/src/sourcedir.tar.gz");
  EXPECT_EQ(env["SM_MODULE_NAME"], "entry") << "SAGEMAKER_PROGRAM beats sagemaker_program";
  EXPECT_EQ(env["SM_USER_ENTRY_POINT"], "entry.py");
  EXPECT_EQ(env["SM_FRAMEWORK_MODULE"], "sagemaker_pytorch_container.training:main");
  EXPECT_EQ(env["SAGEMAKER_PROGRAM"], "entry.py") << "the job's own variables are kept";
  const std::string& training_env = env["SM_TRAINING_ENV"];
  EXPECT_NE(training_env.find(R"("distribution_hosts":["algo-1","algo-2"])"), std::string::npos);
  EXPECT_NE(training_env.find(R"("is_master":true)"), std::string::npos);
  EXPECT_NE(training_env.find(R"("framework_module":"sagemaker_pytorch_container.training:main")"),
            std::string::npos);

  // Without an entry point the toolkit's str(None) shows through.
  spec.hyperparameters = {{"epochs", "3"}};
  spec.environment.clear();
  env = EnvOf(spec);
  EXPECT_EQ(env["SM_MODULE_NAME"], "None");
  EXPECT_EQ(env["SM_USER_ENTRY_POINT"], "");
  EXPECT_NE(env["SM_TRAINING_ENV"].find(R"("user_entry_point":null)"), std::string::npos);
}

TEST(ContainerContract, NamesAreUpperCasedOnlyAndLaterCollisionsWin) {
  JobSpec spec = ExampleSpec();
  spec.hyperparameters = {{"lr", "1"}, {"LR", "2"}, {"batch.size", "4"}};
  EnvMap env = EnvOf(spec);
  EXPECT_EQ(env["SM_HP_LR"], "1") << "lr sorts after LR, as in hyperparameters.json";
  EXPECT_EQ(env["SM_HP_BATCH.SIZE"], "4");
}

// FastFile, per channel or inherited from the job, is reported as such (contract §1.4): readers
// such as PipeModeDataset check this field, so it must never read "File" for a mounted channel.
TEST(ContainerContract, FastFileChannelsSayFastFile) {
  JobSpec spec = ExampleSpec();
  spec.training_input_mode = "FastFile";
  spec.channels[0].input_mode = "";  // inherits the job's FastFile
  spec.channels[1].input_mode = "FastFile";
  spec.channels[1].record_wrapper_type = "None";
  spec.channels.pop_back();
  EnvMap env = EnvOf(spec);
  EXPECT_EQ(env["SM_INPUT_DATA_CONFIG"],
            R"({"train-data":{"ContentType":"text/csv","RecordWrapperType":"None",)"
            R"("S3DistributionType":"ShardedByS3Key","TrainingInputMode":"FastFile"},)"
            R"("validation":{"ContentType":"application/x-recordio","RecordWrapperType":"None",)"
            R"("S3DistributionType":"FullyReplicated","TrainingInputMode":"FastFile"}})");
  EXPECT_EQ(env["SM_CHANNEL_VALIDATION"], "/jobs/j1/opt/ml/input/data/validation");
}

TEST(ContainerContract, ArnIsFakeButWellFormed) {
  EXPECT_EQ(TrainingJobArn("My-Job-7"),
            "arn:aws:sagemaker:local:000000000000:training-job/my-job-7");
}

TEST(ContainerContract, JobPaths) {
  JobSpec spec;
  JobPaths p = MakeJobPaths("/srv/jobs/j1/", spec);
  EXPECT_EQ(p.root, "/srv/jobs/j1/opt/ml");
  EXPECT_EQ(p.input, "/srv/jobs/j1/opt/ml/input");
  EXPECT_EQ(p.input_config, "/srv/jobs/j1/opt/ml/input/config");
  EXPECT_EQ(p.input_data, "/srv/jobs/j1/opt/ml/input/data");
  EXPECT_EQ(p.model, "/srv/jobs/j1/opt/ml/model");
  EXPECT_EQ(p.output, "/srv/jobs/j1/opt/ml/output");
  EXPECT_EQ(p.output_data, "/srv/jobs/j1/opt/ml/output/data");
  EXPECT_EQ(p.output_intermediate, "/srv/jobs/j1/opt/ml/output/intermediate");
  EXPECT_EQ(p.checkpoints, "/srv/jobs/j1/opt/ml/checkpoints") << "the default LocalPath";
  EXPECT_EQ(p.code, "/srv/jobs/j1/opt/ml/code");
  EXPECT_EQ(p.ChannelDir("train"), "/srv/jobs/j1/opt/ml/input/data/train");

  EXPECT_EQ(MakeJobPaths("/", spec).root, "/opt/ml");
  EXPECT_EQ(MakeJobPaths("/", spec).checkpoints, "/opt/ml/checkpoints");

  spec.checkpoint_local_path = "/opt/ml/ckpt/run1/";
  EXPECT_EQ(MakeJobPaths("/j", spec).checkpoints, "/j/opt/ml/ckpt/run1");
  spec.checkpoint_local_path = "/scratch/ckpt/";
  EXPECT_EQ(MakeJobPaths("/j", spec).checkpoints, "/scratch/ckpt");
  spec.checkpoint_local_path = "/opt/mlx";
  EXPECT_EQ(MakeJobPaths("/j", spec).checkpoints, "/opt/mlx") << "not under /opt/ml";

  std::string relative = MakeJobPaths("rel/job", spec).root;
  EXPECT_EQ(relative.front(), '/');
  EXPECT_EQ(relative, std::filesystem::current_path().string() + "/rel/job/opt/ml");
}

class ContractFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "container_contract_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static bool IsDir(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }
  static std::vector<std::string> List(const std::string& path) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
};

TEST_F(ContractFilesTest, WritesLayoutAndConfigFilesByteForByte) {
  JobSpec spec = ExampleSpec();
  spec.checkpoint_s3_uri = "s3://bucket/checkpoints/my-job";
  JobPaths paths = MakeJobPaths(dir_, spec);
  ASSERT_TRUE(WriteContractFiles(paths, spec, TwoHosts()).ok());

  for (const std::string* d :
       {&paths.input_config, &paths.input_data, &paths.model, &paths.output_data,
        &paths.output_intermediate, &paths.checkpoints, &paths.code}) {
    EXPECT_TRUE(IsDir(*d)) << *d;
  }
  struct stat st;
  ASSERT_EQ(::stat(paths.model.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0700, 0700u);

  EXPECT_EQ(List(paths.input_config),
            (std::vector<std::string>{"checkpointconfig.json", "hyperparameters.json",
                                      "inputdataconfig.json", "resourceconfig.json"}))
      << "no temporary files left behind";
  EXPECT_EQ(Read(paths.input_config + "/hyperparameters.json"), kHyperparameters);
  EXPECT_EQ(Read(paths.input_config + "/inputdataconfig.json"), kInputDataConfig);
  EXPECT_EQ(Read(paths.input_config + "/resourceconfig.json"), kResourceConfig);
  EXPECT_EQ(Read(paths.input_config + "/checkpointconfig.json"),
            R"({"LocalPath":")" + dir_ +
                R"(/opt/ml/checkpoints","S3Path":"s3://bucket/checkpoints/my-job"})");

  // The environment carries the very same documents.
  auto env = ContractEnvironment(paths, spec, TwoHosts(), Facts());
  EnvMap m(env.begin(), env.end());
  EXPECT_EQ(m["SM_INPUT_DATA_CONFIG"], Read(paths.input_config + "/inputdataconfig.json"));
  EXPECT_EQ(m["SM_RESOURCE_CONFIG"], Read(paths.input_config + "/resourceconfig.json"));

  // Rewriting for a run without checkpoints drops the stale checkpointconfig.json.
  spec.checkpoint_s3_uri.reset();
  spec.hyperparameters = {{"caf\xC3\xA9", "\"\xE2\x82\xAC\""}};
  ASSERT_TRUE(WriteContractFiles(paths, spec, TwoHosts()).ok());
  EXPECT_EQ(List(paths.input_config),
            (std::vector<std::string>{"hyperparameters.json", "inputdataconfig.json",
                                      "resourceconfig.json"}));
  EXPECT_EQ(Read(paths.input_config + "/hyperparameters.json"), R"({"caf\u00e9":"\"\u20ac\""})");
}

TEST_F(ContractFilesTest, EmptyJobAndSingleHostDefaults) {
  JobSpec spec;
  spec.training_job_name = "j";
  HostIdentity id;
  id.hosts = {"algo-1"};
  id.current_host = "algo-1";
  HostFacts facts;
  facts.network_interface_name = "ens5";
  JobPaths paths = MakeJobPaths(dir_, spec);
  ASSERT_TRUE(WriteContractFiles(paths, spec, id, facts).ok());
  EXPECT_EQ(Read(paths.input_config + "/hyperparameters.json"), "{}");
  EXPECT_EQ(Read(paths.input_config + "/inputdataconfig.json"), "{}");
  EXPECT_EQ(Read(paths.input_config + "/resourceconfig.json"),
            R"({"current_group_name":"homogeneousCluster","current_host":"algo-1",)"
            R"("current_instance_type":"local","hosts":["algo-1"],"instance_groups":[{"hosts":)"
            R"(["algo-1"],"instance_group_name":"homogeneousCluster","instance_type":"local"}],)"
            R"("network_interface_name":"ens5"})");
  auto env = ContractEnvironment(paths, spec, id, facts);
  EnvMap m(env.begin(), env.end());
  EXPECT_EQ(m["SM_CHANNELS"], "[]");
  EXPECT_EQ(m["SM_HPS"], "{}");
  EXPECT_EQ(m["SM_USER_ARGS"], "[]");
  EXPECT_EQ(m["SM_NETWORK_INTERFACE_NAME"], "ens5");
  EXPECT_EQ(m["SM_CURRENT_INSTANCE_TYPE"], "local");
}

TEST_F(ContractFilesTest, CheckpointDirOutsideTheTreeIsCreated) {
  JobSpec spec;
  spec.checkpoint_local_path = dir_ + "/elsewhere/ckpt/";
  spec.checkpoint_s3_uri = "s3://b/c";
  JobPaths paths = MakeJobPaths(dir_ + "/root", spec);
  ASSERT_TRUE(WriteContractFiles(paths, spec, TwoHosts()).ok());
  EXPECT_TRUE(IsDir(dir_ + "/elsewhere/ckpt"));
  EXPECT_EQ(Read(paths.input_config + "/checkpointconfig.json"),
            R"({"LocalPath":")" + dir_ + R"(/elsewhere/ckpt","S3Path":"s3://b/c"})");
}

TEST_F(ContractFilesTest, AFileInTheWayIsReported) {
  JobSpec spec;
  ASSERT_TRUE(std::filesystem::create_directories(dir_ + "/opt/ml"));
  std::ofstream(dir_ + "/opt/ml/model") << "not a directory";
  Status s = WriteContractFiles(MakeJobPaths(dir_, spec), spec, TwoHosts());
  EXPECT_EQ(s.code(), ErrorCode::kAlreadyExists) << s.ToString();
  EXPECT_NE(s.message().find("/opt/ml/model"), std::string::npos) << s.ToString();
}

TEST_F(ContractFilesTest, ProbeCountsNvidiaDeviceNodesOnly) {
  for (const char* name :
       {"nvidia0", "nvidia1", "nvidia12", "nvidiactl", "nvidia-uvm", "nvidia-caps", "null"}) {
    std::ofstream(dir_ + "/" + name) << "";
  }
  HostFacts facts = ProbeHostFacts(dir_);
  EXPECT_EQ(facts.num_gpus, 3);
  EXPECT_GE(facts.num_cpus, 1);
  EXPECT_EQ(facts.num_neurons, 0);
  EXPECT_EQ(ProbeHostFacts(dir_ + "/missing").num_gpus, 0);
}

}  // namespace
}  // namespace trainfeed
