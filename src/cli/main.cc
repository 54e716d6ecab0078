// trainfeed: one binary, one subcommand per job. Flags become component options here; nothing
// below cli/ reads flags.
#include <cctype>
#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "job/job_runner.h"
#include "common/log.h"
#include "common/units.h"

namespace {

void OnSignal(int) { trainfeed::g_interrupted.store(true); }

// CLI11 validator for sizes such as 8MiB or 150MB.
struct ByteSizeValidator : public CLI::Validator {
  ByteSizeValidator() {
    name_ = "SIZE";
    func_ = [](std::string& text) -> std::string {
      auto r = trainfeed::ParseByteSize(text);
      if (!r.ok()) return r.status().message();
      text = std::to_string(*r);
      return {};
    };
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace trainfeed;
  CLI::App app{"trainfeed: feeds training jobs their data from S3-compatible stores (SageMaker "
               "File, FastFile and Pipe input modes, self-hosted)"};
  app.set_version_flag("--version", std::string("trainfeed ") + TRAINFEED_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand too

  GlobalFlags flags;
  int verbose = 0;
  app.add_option("--endpoint-url", flags.store.s3.endpoint_url,
                 "S3 endpoint, e.g. http://127.0.0.1:9000 (else AWS_ENDPOINT_URL_S3, "
                 "AWS_ENDPOINT_URL, the profile's endpoint_url, or AWS)");
  app.add_option("--region", flags.store.s3.region, "region (else AWS_REGION, AWS_DEFAULT_REGION, profile)");
  app.add_option("--profile", flags.store.s3.profile, "profile in ~/.aws/credentials and ~/.aws/config");
  app.add_flag("--no-sign-request", flags.store.s3.no_sign_request, "anonymous access: do not sign");
  app.add_option("--max-attempts", flags.store.retry.max_attempts, "attempts per request before giving up")
      ->check(CLI::Range(1, 100));
  app.add_flag("-v,--verbose", verbose, "more detail (repeat for debug)");
  app.add_flag("-q,--quiet", flags.quiet, "no progress lines");

  std::string uri, dir;
  bool recursive = false;
  CLI::App* ls = app.add_subcommand("ls", "list keys, sizes and totals under a URI");
  ls->add_option("uri", uri, "s3://bucket/prefix or file:///path")->required();
  ls->add_flag("-r,--recursive", recursive, "every key, not one level");

  DownloadOptions download;
  bool no_skip = false;
  CLI::App* dl = app.add_subcommand(
      "download", "File mode: copy every object under URI into DIR (resumable, in parallel)");
  dl->add_option("uri", uri, "s3://bucket/prefix or file:///path")->required();
  dl->add_option("dir", dir, "destination directory")->required();
  dl->add_option("--concurrency", download.concurrency, "GETs in flight")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  dl->add_option("--part-size", download.part_size, "ranged-GET size for large objects")
      ->capture_default_str()->transform(ByteSizeValidator());
  dl->add_option("--multipart-threshold", download.multipart_threshold,
                 "objects larger than this are fetched in parts")
      ->capture_default_str()->transform(ByteSizeValidator());
  dl->add_flag("--no-skip", no_skip, "download again even files that are already complete");

  UploadOptions upload;
  CLI::App* up = app.add_subcommand("upload", "copy a local file or directory tree to URI");
  up->add_option("path", dir, "local file or directory")->required();
  up->add_option("uri", uri, "s3://bucket/prefix or file:///path")->required();
  up->add_option("--concurrency", upload.concurrency, "PUTs in flight")
      ->capture_default_str()->check(CLI::Range(1, 256));
  up->add_option("--part-size", upload.part_size, "multipart part size (>= 5MiB)")
      ->capture_default_str()->transform(ByteSizeValidator());

  TrainOptions train_options;
  int stop_grace_seconds = 120;
  CLI::App* train = app.add_subcommand(
      "train", "run a training job from a CreateTrainingJob request, as SageMaker would");
  train->add_option("spec", train_options.spec_path, "job spec: CreateTrainingJob JSON")
      ->required()->check(CLI::ExistingFile);
  train->add_option("command", train_options.command,
                    "command and arguments, after '--' (else the spec's ContainerEntrypoint)");
  train->add_option("--root", train_options.root,
                    "job directory holding opt/ml (default ./jobs/<job name>/<host>)");
  train->add_option("--hosts", train_options.host_flags.hosts, "all hosts, comma-separated");
  train->add_option("--current-host", train_options.host_flags.current_host, "this host's name");
  train->add_option("--concurrency", train_options.download.concurrency, "GETs in flight")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  train->add_flag("--container-paths", train_options.container_paths,
                  "root only: show the job tree at /opt/ml to the command (private mount namespace)");
  train->add_option("--stop-grace", stop_grace_seconds,
                    "seconds between SIGTERM and SIGKILL when stopping the command")
      ->capture_default_str()->check(CLI::Range(0, 3600));
  train->add_option("--fastfile-memory-limit", train_options.fastfile.memory_limit_bytes,
                    "FastFile channels: prefetch memory per mount (as mount --memory-limit)")
      ->default_str("512MiB")->transform(ByteSizeValidator());
  train->add_option("--fastfile-read-threads", train_options.fastfile.read_threads,
                    "FastFile channels: GETs in flight per mount (as mount --read-threads)")
      ->check(CLI::Range(1, 1024));
  train->add_option("--fastfile-cache", train_options.fastfile.cache_dir,
                    "FastFile channels: local block cache, one subfolder per channel, kept for "
                    "the next run (as mount --cache)");
  train->add_option("--fastfile-cache-size", train_options.fastfile.cache_size_bytes,
                    "FastFile channels: disk space per channel's cache (as mount --cache-size)")
      ->default_str("10GiB")->transform(ByteSizeValidator());

  FastFileMountOptions fastfile;
  bool foreground = false;
  std::string listing_snapshot;
  CLI::App* mnt = app.add_subcommand(
      "mount", "FastFile mode: show the objects under URI read-only at DIR, fetched as read");
  mnt->add_option("uri", uri, "s3://bucket/prefix/ (a folder: ends in '/') or s3://bucket")
      ->required();
  mnt->add_option("dir", dir, "mount point, an existing directory")->required();
  mnt->add_option("--memory-limit", fastfile.memory_limit_bytes,
                  "prefetch memory for all open files together")
      ->default_str("512MiB")->transform(ByteSizeValidator());
  mnt->add_option("--read-threads", fastfile.read_threads, "GETs in flight for all open files")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  mnt->add_flag("--foreground", foreground,
                "serve from this process (else return once the mount answers, leaving a daemon "
                "that keeps this stderr for its log)");
  mnt->add_flag("--allow-other", fastfile.allow_other, "let other users read the mount");
  mnt->add_option("--cache", fastfile.cache_dir,
                  "keep what is read in this local folder, a block cache that later mounts reuse");
  mnt->add_option("--listing-snapshot", listing_snapshot,
                  "reuse the listing saved in this file by an earlier mount of the same URI and "
                  "endpoint (mounts in milliseconds), else list and save it there; only for data "
                  "that has not changed since: delete the file to list again");
  mnt->add_option("--cache-size", fastfile.cache_size_bytes,
                  "disk space the --cache folder may use")
      ->default_str("10GiB")->transform(ByteSizeValidator());

  CLI::App* umnt = app.add_subcommand(
      "unmount", "detach a trainfeed mount (lazy; also one whose process died)");
  umnt->add_option("dir", dir, "mount point")->required();

  AdviseCommandOptions advise;
  double training_hours = 0;
  uint64_t disk_free = 0;
  CLI::App* adv = app.add_subcommand(
      "advise", "list a dataset, estimate each input mode's start-up and epoch time, and "
                "recommend one (with the InputDataConfig channel to paste)");
  adv->add_option("uri", advise.uri, "s3://bucket/prefix or file:///path")->required();
  CLI::Option* hours_opt = adv->add_option(
      "--training-hours", training_hours,
      "expected training time: File mode's download should stay under 10% of it");
  CLI::Option* disk_opt = adv->add_option(
      "--disk-free", disk_free,
      "local disk for File mode (default: free space of the current directory)")
      ->transform(ByteSizeValidator());
  adv->add_flag("--probe", advise.probe,
                "measure this machine's read rates (a few seconds: <= 64 small GETs, <= 256 MiB "
                "of ranged GETs) instead of assuming them");
  adv->add_flag("--json", advise.json, "one JSON document (\"recommendation\" at the top level)");
  adv->add_flag("--no-pack", advise.no_pack,
                "the files cannot be serialised into shards (or need random access)");
  adv->add_flag("--sequential-only", advise.sequential_only,
                "the script reads each epoch as one sequential stream (Pipe mode will do)");
  adv->add_option("--instance-count", advise.instance_count, "hosts in the training job")
      ->capture_default_str()->check(CLI::Range(1, 10000));
  adv->add_option("--channel", advise.channel, "channel name in the printed InputDataConfig")
      ->capture_default_str();
  adv->add_option("--pack-to", advise.pack_to,
                  "where `trainfeed pack` should write, for pack-then-* (default: SRC-packed/)");

  PackOptions pack;
  std::string pack_format = "tar";
  int64_t pack_seed = 0;
  bool pack_verify = false;
  CLI::App* pk = app.add_subcommand(
      "pack", "serialise many small objects into shards of about --shard-size (tar or RecordIO) "
              "with an index; resumable; --verify checks a finished pack");
  pk->add_option("source", uri, "s3://bucket/prefix or file:///path: the objects to pack")
      ->required();
  pk->add_option("destination", dir, "s3://bucket/prefix/ or file:///path: shards and index")
      ->required();
  pk->add_option("--shard-size", pack.plan.shard_size, "bytes per shard (a larger object gets "
                 "a shard of its own)")
      ->default_str("150MB")->transform(ByteSizeValidator());
  pk->add_option("--format", pack_format, "tar (WebDataset / tar -x) or recordio (Pipe mode)")
      ->capture_default_str()->check(CLI::IsMember({"tar", "recordio"}));
  CLI::Option* seed_opt = pk->add_option(
      "--shuffle-seed", pack_seed,
      "shuffle members (tar: samples) across shards with this seed (EpochOrder, epoch 0)");
  pk->add_option("--concurrency", pack.concurrency,
                 "source GETs in flight; shards written at once = concurrency / 8")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  pk->add_option("--part-size", pack.part_size, "multipart part size of the shards (>= 5MiB)")
      ->default_str("8MiB")->transform(ByteSizeValidator());
  pk->add_flag("--force", pack.force,
               "rebuild a destination that holds shards of another plan (changed source or "
               "arguments)");
  pk->add_flag("--verify", pack_verify,
               "write nothing: re-read every shard and source object and check them against the "
               "index");

  PipeChannelConfig pipe;
  HostFlags pipe_hosts;
  uint64_t pipe_epochs = 0;
  int64_t pipe_seed = 0;
  std::string pipe_attributes;
  CLI::App* pp = app.add_subcommand(
      "pipe", "Pipe mode: stream URI epoch after epoch into FIFOs DIR/<channel>_0, _1, ...");
  pp->add_option("uri", pipe.source.s3_uri, "s3://bucket/prefix, or the manifest's URI")->required();
  pp->add_option("dir", dir, "directory for the FIFOs (created if missing)")->required();
  pp->add_option("--channel", pipe.name, "channel name: the FIFOs are <channel>_<epoch>")
      ->required()->check([](const std::string& name) -> std::string {
        bool ok = !name.empty() && name.size() <= 64 && name != "." && name != "..";
        for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_');
        return ok ? "" : "must match [A-Za-z0-9.-_]+ (at most 64 characters)";
      });
  CLI::Option* epochs_opt =
      pp->add_option("--epochs", pipe_epochs, "stop after this many epochs (default: unlimited)")
          ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  CLI::Option* pipe_seed_opt =
      pp->add_option("--shuffle-seed", pipe_seed, "ShuffleConfig.Seed: reshuffle every epoch");
  pp->add_option("--record-wrapper", pipe.record_wrapper_type, "RecordWrapperType")
      ->capture_default_str()->check(CLI::IsMember({"None", "RecordIO"}));
  pp->add_option("--compression", pipe.compression_type, "CompressionType")
      ->capture_default_str()->check(CLI::IsMember({"None", "Gzip"}));
  pipe.source.s3_data_type = "S3Prefix";
  pp->add_option("--data-type", pipe.source.s3_data_type, "S3DataType")
      ->capture_default_str()
      ->check(CLI::IsMember({"S3Prefix", "ManifestFile", "AugmentedManifestFile"}));
  pp->add_option("--attribute-names", pipe_attributes,
                 "AttributeNames of an AugmentedManifestFile, comma-separated, in order");
  pp->add_option("--distribution", pipe.source.distribution, "S3DataDistributionType")
      ->capture_default_str()->check(CLI::IsMember({"FullyReplicated", "ShardedByS3Key"}));
  pp->add_option("--hosts", pipe_hosts.hosts, "all hosts, comma-separated");
  pp->add_option("--current-host", pipe_hosts.current_host, "this host's name");
  pp->add_option("--buffer-size", pipe.buffer_bytes, "fetched bytes held in memory at once")
      ->default_str("256MiB")->transform(ByteSizeValidator());
  pp->add_option("--concurrency", pipe.concurrency, "GETs in flight")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  pp->add_option("--state-file", pipe.state_file,
                 "keep the point the reader consumed up to in FILE, as a --resume token");
  pp->add_option("--resume", pipe.resume_token,
                 "start where a state file's token says (epoch, item, byte); --epochs still "
                 "counts from epoch 0");

  CLI::App* mb = app.add_subcommand("mb", "create a bucket (s3://bucket) or directory");
  mb->add_option("uri", uri, "s3://bucket")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  flags.verbosity = flags.quiet ? 0 : 1 + verbose;
  InitLogging(flags.verbosity);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);

  if (*ls) return RunLs(flags, uri, recursive);
  if (*dl) {
    download.skip_complete = !no_skip;
    return RunDownload(flags, uri, dir, download);
  }
  if (*up) {
    if (upload.part_size < (5u << 20)) {
      return ReportError(InvalidArgumentError("--part-size must be at least 5MiB (an S3 rule)"));
    }
    return RunUpload(flags, dir, uri, upload);
  }
  if (*mb) return RunMakeBucket(flags, uri);
  if (*pp) {
    if (epochs_opt->count()) pipe.epochs = pipe_epochs;
    if (pipe_seed_opt->count()) pipe.shuffle_seed = pipe_seed;
    for (size_t start = 0; start < pipe_attributes.size();) {
      size_t comma = pipe_attributes.find(',', start);
      if (comma == std::string::npos) comma = pipe_attributes.size();
      if (comma > start) pipe.source.attribute_names.push_back(pipe_attributes.substr(start, comma - start));
      start = comma + 1;
    }
    if (pipe.source.s3_data_type == "AugmentedManifestFile" && pipe.source.attribute_names.empty()) {
      return ReportError(InvalidArgumentError("--data-type AugmentedManifestFile needs --attribute-names"));
    }
    return RunPipe(flags, pipe, dir, pipe_hosts);
  }
  if (*pk) {
    if (seed_opt->count()) pack.plan.shuffle_seed = pack_seed;
    pack.plan.format = pack_format == "recordio" ? PackFormat::kRecordIO : PackFormat::kTar;
    if (pack.part_size < (5u << 20)) {
      return ReportError(InvalidArgumentError("--part-size must be at least 5MiB (an S3 rule)"));
    }
    if (pack.plan.shard_size == 0) {
      return ReportError(InvalidArgumentError("--shard-size must be more than 0"));
    }
    return RunPack(flags, uri, dir, pack, pack_verify);
  }
  if (*adv) {
    if (hours_opt->count()) advise.training_hours = training_hours;
    if (disk_opt->count()) advise.disk_free_bytes = disk_free;
    return RunAdvise(flags, advise);
  }
  if (*mnt) return RunMount(flags, uri, dir, fastfile, foreground, listing_snapshot);
  if (*umnt) return RunUnmount(dir);
  if (*train) {
    train_options.store = flags.store;
    train_options.quiet = flags.quiet;
    train_options.stop_grace = std::chrono::seconds(stop_grace_seconds);
    return RunTrainingJob(train_options, g_interrupted);
  }
  return 2;
}
