#include "job/job_runner.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <sstream>
#include <spdlog/spdlog.h>

#include "common/units.h"
#include "job/channels.h"
#include "job/checkpoint_sync.h"
#include "job/container_contract.h"
#include "job/fastfile_channel.h"
#include "job/job_spec.h"
#include "job/outputs.h"
#include "job/pipe_channel.h"
#include "job/process_supervisor.h"
#include "modes/filesystem/filesystem_mount.h"
#include "store/s3/aws_config.h"
#include "transfer/progress_line.h"

extern char** environ;

namespace trainfeed {

namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

// Exit status when the command was stopped by the max-runtime rule (as timeout(1) does).
constexpr int kTimedOutExitCode = 124;

// The input modes this runner can serve.
constexpr SupportedModes kRunnableModes{.file = true, .fast_file = true, .pipe = true};

int Fail(const Status& status) {
  std::fprintf(stderr, "trainfeed: error: %s\n", status.ToString().c_str());
  return 1;
}

void Note(const std::string& text) { std::fprintf(stderr, "trainfeed: %s\n", text.c_str()); }

double Since(Steady::time_point t) {
  return std::chrono::duration<double>(Steady::now() - t).count();
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoToStatus(errno, "read job spec '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first 1024 characters of output/failure: SageMaker's FailureReason.
std::string FailureReason(const JobPaths& paths) {
  std::ifstream in(paths.output + "/failure", std::ios::binary);
  if (!in) return "";
  std::string text(1024, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// The training process's environment: ours, with the contract's variables on top.
std::vector<std::pair<std::string, std::string>> TrainingEnvironment(
    const std::vector<std::pair<std::string, std::string>>& contract) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos) env[std::string(kv.substr(0, eq))] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : contract) env[k] = v;
  return {env.begin(), env.end()};
}

}  // namespace

int RunTrainingJob(const TrainOptions& options, const std::atomic<bool>& interrupted) {
  auto job_start = Steady::now();
  Result<std::string> text = ReadFile(options.spec_path);
  if (!text.ok()) return Fail(text.status());
  Result<JobSpec> parsed = ParseJobSpec(*text, kRunnableModes);
  if (!parsed.ok()) {
    std::fprintf(stderr, "trainfeed: error: invalid job spec '%s':\n", options.spec_path.c_str());
    std::istringstream lines(parsed.status().message());
    for (std::string line; std::getline(lines, line);) std::fprintf(stderr, "  %s\n", line.c_str());
    return 2;
  }
  const JobSpec& spec = *parsed;
  if (!spec.ignored_fields.empty()) {
    Note("note: fields with no meaning here are ignored: " + Join(spec.ignored_fields, ", "));
  }
  if (!spec.training_image.empty()) {
    Note("note: TrainingImage '" + spec.training_image +
         "' is not run: the command runs on this machine, in its environment");
  }

  Result<HostIdentity> hosts = ResolveHostIdentity(options.host_flags, ProcessEnv, spec.instance_count);
  if (!hosts.ok()) return Fail(hosts.status());
  for (const std::string& n : hosts->notes) Note("note: " + n);

  std::string root = options.root.empty()
                         ? (fs::current_path() / "jobs" / spec.training_job_name / hosts->current_host).string()
                         : fs::absolute(options.root).lexically_normal().string();
  JobPaths paths = MakeJobPaths(root, spec);
  HostFacts facts = ProbeHostFacts();
  if (Status s = WriteContractFiles(paths, spec, *hosts, facts); !s.ok()) return Fail(s);
  Note("job '" + spec.training_job_name + "' on " + hosts->current_host + " of " +
       std::to_string(hosts->hosts.size()) + " host(s); /opt/ml is " + paths.root);

  // Checkpoints first: a restarted job must find them before it starts.
  std::unique_ptr<ObjectStore> checkpoint_store;
  std::optional<StoreUri> checkpoint_uri;
  if (spec.checkpoint_s3_uri) {
    Result<StoreUri> uri = ParseStoreUri(*spec.checkpoint_s3_uri);
    if (!uri.ok()) return Fail(uri.status());
    Result<std::unique_ptr<ObjectStore>> store = OpenObjectStore(*uri, options.store);
    if (!store.ok()) return Fail(store.status());
    if (Status s = RestoreCheckpoints(**store, *uri, paths.checkpoints); !s.ok()) {
      return Fail(s.WithContext("restore checkpoints"));
    }
    checkpoint_store = std::move(*store);
    checkpoint_uri = *uri;
  }

  // Channels: File mode downloads, FastFile and file systems mount. Mounts unmount on every path
  // out: their destructors stop them, and a FastFile mount process also dies with trainfeed.
  auto download_start = Steady::now();
  std::vector<std::unique_ptr<FileSystemMount>> mounts;
  std::vector<std::unique_ptr<FastFileChannelMount>> fastfile_mounts;
  // Pipe channels stream on threads; their destructors stop them and remove the FIFOs.
  std::vector<std::unique_ptr<PipeChannelStream>> pipes;
  std::vector<ChannelReport> channel_reports;
  std::string region = options.store.s3.region;
  if (region.empty()) region = ProcessEnv("AWS_REGION").value_or(ProcessEnv("AWS_DEFAULT_REGION").value_or("us-east-1"));
  for (const ChannelSpec& channel : spec.channels) {
    std::string dir = paths.ChannelDir(channel.name);
    if (channel.file_system) {
      Result<MountPlan> plan = PlanFileSystemMount(channel.name, *channel.file_system, region);
      if (!plan.ok()) return Fail(plan.status());
      Result<std::unique_ptr<FileSystemMount>> mount = FileSystemMount::Mount(*plan, dir);
      if (!mount.ok()) return Fail(mount.status());
      Note("channel '" + channel.name + "': mounted " + plan->source + " (" + plan->options + ")");
      mounts.push_back(std::move(*mount));
      continue;
    }
    if (channel.s3 && channel.input_mode == "FastFile") {
      // ShardedByS3Key has no FastFile meaning on record: contract §3.3 lists it as unspecified,
      // and the API reference (S3DataSource.S3DataDistributionType) describes the 1/n split for
      // File and Pipe modes only. The mount shows the whole prefix on every host, which for one
      // host is its shard anyway; with more, say so rather than silently feed n copies.
      if (channel.s3->distribution == "ShardedByS3Key" && hosts->hosts.size() > 1) {
        Note("note: channel '" + channel.name + "': ShardedByS3Key is not applied in FastFile "
             "mode: every host sees all objects under " + channel.s3->s3_uri);
      }
      std::error_code ec;
      fs::create_directories(root + "/.trainfeed", ec);
      if (ec) return Fail(ErrnoToStatus(ec.value(), "create '" + root + "/.trainfeed'"));
      FastFileChannelOptions fastfile;
      fastfile.store = options.store;
      fastfile.tuning = options.fastfile;
      if (!options.fastfile.cache_dir.empty()) {
        // Absolute: the mount runs with "/" as its working directory.
        fastfile.tuning.cache_dir =
            (fs::absolute(options.fastfile.cache_dir) / channel.name).lexically_normal().string();
      }
      fastfile.log_path = root + "/.trainfeed/fastfile-" + channel.name + ".log";
      fastfile.cancel = &interrupted;
      auto mount = std::make_unique<FastFileChannelMount>(channel.name, channel.s3->s3_uri, dir,
                                                          fastfile);
      if (Status s = mount->Start(); !s.ok()) return Fail(s);
      Note("channel '" + channel.name + "': FastFile mount of " + channel.s3->s3_uri + " (pid " +
           std::to_string(mount->pid()) + ", log " + fastfile.log_path + ")");
      fastfile_mounts.push_back(std::move(mount));
      continue;
    }
    if (channel.s3 && channel.input_mode == "Pipe") {
      // FIFOs <channel>_<epoch> beside (not inside) input/data/<channel> (contract §3.4); _0
      // exists before the command starts.
      auto pipe = std::make_unique<PipeChannelStream>(PipeConfigForChannel(channel),
                                                      paths.input_data,
                                                      [](const std::string& line) { Note(line); });
      if (Status s = pipe->Start(options.store, *hosts); !s.ok()) return Fail(s);
      Note("channel '" + channel.name + "': Pipe mode from " + channel.s3->s3_uri + " into " +
           paths.input_data + "/" + channel.name + "_0, _1, ...");
      pipes.push_back(std::move(pipe));
      continue;
    }
    ProgressLine progress("channel '" + channel.name + "'", options.quiet);
    FileModeOptions file_options;
    file_options.download = options.download;
    file_options.cancel = &interrupted;
    file_options.on_progress = [&](const DownloadProgress& p, bool final) { progress.Update(p, final); };
    Result<ChannelReport> report =
        DownloadFileChannel(channel, dir, *hosts, options.store, file_options);
    if (!report.ok()) return Fail(report.status());
    channel_reports.push_back(*report);
  }
  double download_seconds = Since(download_start);

  std::vector<std::string> argv = options.command;
  if (argv.empty()) {
    argv = spec.container_entrypoint;
    argv.insert(argv.end(), spec.container_arguments.begin(), spec.container_arguments.end());
  }
  if (argv.empty()) {
    return Fail(InvalidArgumentError(
        "no command to run: give one after '--' or set AlgorithmSpecification.ContainerEntrypoint"));
  }
  for (std::string& arg : HyperparameterArgs(spec)) argv.push_back(std::move(arg));

  std::unique_ptr<CheckpointSyncer> syncer;
  if (checkpoint_store) {
    syncer = std::make_unique<CheckpointSyncer>(*checkpoint_store, *checkpoint_uri,
                                                paths.checkpoints, CheckpointSyncOptions{});
    if (Status s = syncer->Start(); !s.ok()) return Fail(s.WithContext("checkpoint sync"));
  }

  LaunchSpec launch{argv, TrainingEnvironment(ContractEnvironment(paths, spec, *hosts, facts)), ""};
  if (options.container_paths) launch.opt_ml_source = paths.root;
  SupervisorOptions supervise;
  supervise.max_runtime = std::chrono::seconds(spec.max_runtime_seconds);
  supervise.stop_grace = options.stop_grace;
  Note("running: " + Join(argv, " "));
  auto training_start = Steady::now();
  // A Pipe channel that fails has fed its reader a short epoch: the command is stopped as if
  // interrupted, so the job fails instead of training on part of the data.
  std::atomic<bool> stop_command{false};
  std::atomic<bool> command_done{false};
  std::thread pipe_watch;
  if (!pipes.empty()) {
    pipe_watch = std::thread([&] {
      while (!command_done.load()) {
        bool failed = false;
        for (const auto& p : pipes) failed = failed || p->failed();
        if (failed || interrupted.load()) stop_command.store(true);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  Result<ProcessOutcome> outcome =
      RunSupervised(launch, supervise, pipes.empty() ? interrupted : stop_command);
  command_done.store(true);
  if (pipe_watch.joinable()) pipe_watch.join();
  double training_seconds = Since(training_start);

  // Whatever happened to the command: final checkpoint sweep, unmount, upload outputs.
  auto upload_start = Steady::now();
  Status after;
  if (syncer) {
    Status s = syncer->Stop();
    if (!s.ok()) after = s.WithContext("checkpoint sync");
  }
  for (auto& m : mounts) {
    Status s = m->Unmount();
    if (!s.ok() && after.ok()) after = s;
  }
  for (auto& m : fastfile_mounts) {
    Status s = m->Stop();
    if (!s.ok() && after.ok()) after = s;
  }
  // The command is gone: nobody reads the FIFOs any more.
  for (auto& p : pipes) {
    Status s = p->Stop();
    if (!s.ok() && after.ok()) after = s;
  }
  std::string uploaded;
  if (!spec.s3_output_path.empty()) {
    Result<StoreUri> out = ParseStoreUri(spec.s3_output_path);
    Status s = out.status();
    if (s.ok()) {
      Result<std::unique_ptr<ObjectStore>> store = OpenObjectStore(*out, options.store);
      s = store.status();
      if (s.ok()) {
        HostInfo host{hosts->current_host, hosts->hosts};
        s = UploadJobOutputs(**store, *out, spec.training_job_name, paths.model, paths.output_data,
                             spec.output_compression, host, root + "/.trainfeed");
        uploaded = out->ToString();
      }
    }
    if (!s.ok() && after.ok()) after = s.WithContext("upload outputs");
  }
  double upload_seconds = Since(upload_start);

  // The summary.
  std::string status_word;
  int exit_code;
  if (!outcome.ok()) {
    status_word = "Failed (" + outcome.status().ToString() + ")";
    exit_code = 1;
  } else if (outcome->timed_out) {
    status_word = "Stopped: MaxRuntimeExceeded (" + outcome->Describe() + ")";
    exit_code = kTimedOutExitCode;
  } else if (outcome->ok()) {
    status_word = "Completed";
    exit_code = 0;
  } else {
    status_word = "Failed (" + outcome->Describe() + ")";
    exit_code = outcome->exit_code != 0 ? outcome->exit_code : 1;
  }
  if (exit_code == 0 && !after.ok()) {
    status_word = "Failed (" + after.ToString() + ")";
    exit_code = 1;
  }
  Note("job '" + spec.training_job_name + "': " + status_word);
  std::string reason = FailureReason(paths);
  if (exit_code != 0 && !reason.empty()) Note("FailureReason: " + reason);
  if (!after.ok()) Note("error: " + after.ToString());
  char line[256];
  std::snprintf(line, sizeof(line), "  download %8s", FormatDuration(download_seconds).c_str());
  std::string summary = line;
  for (const ChannelReport& c : channel_reports) {
    summary += "  " + c.name + ": " + std::to_string(c.objects) + " objects, " +
               FormatBytes(static_cast<double>(c.bytes));
    if (c.skipped_objects) summary += " (" + std::to_string(c.skipped_objects) + " already there)";
    summary += ";";
  }
  for (const auto& m : mounts) summary += "  " + m->plan().Describe() + ": mounted;";
  for (const auto& m : fastfile_mounts) summary += "  " + m->channel() + ": FastFile mount;";
  for (const auto& p : pipes) summary += "  " + p->name() + ": Pipe;";
  Note(summary);
  std::snprintf(line, sizeof(line), "  training %8s", FormatDuration(training_seconds).c_str());
  Note(line);
  std::snprintf(line, sizeof(line), "  upload   %8s%s%s", FormatDuration(upload_seconds).c_str(),
                uploaded.empty() ? "" : "  outputs to ", uploaded.c_str());
  Note(line);
  std::snprintf(line, sizeof(line), "  total    %8s", FormatDuration(Since(job_start)).c_str());
  Note(line);
  return exit_code;
}

}  // namespace trainfeed
