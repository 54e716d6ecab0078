// `trainfeed advise`: list a dataset, optionally probe the store, and recommend an input mode.
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdio>

#include "advise/dataset_stats.h"
#include "advise/probe.h"
#include "advise/recommend.h"
#include "advise/report.h"
#include "cli/commands.h"

namespace trainfeed {

namespace {

// SageMaker's ChannelName rule: 1-64 of [A-Za-z0-9.-_].
Status CheckChannelName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '-' || c == '_');
  }
  if (ok) return OkStatus();
  return InvalidArgumentError("--channel '" + name +
                              "': a channel name is 1-64 of letters, digits, '.', '-' and '_'");
}

}  // namespace

int RunAdvise(const GlobalFlags& flags, const AdviseCommandOptions& options) {
  if (Status s = CheckChannelName(options.channel); !s.ok()) return ReportError(s);
  if (options.training_hours && !(*options.training_hours > 0)) {
    return ReportError(InvalidArgumentError("--training-hours must be more than 0"));
  }
  Result<StoreUri> uri = ParseStoreUri(options.uri);
  if (!uri.ok()) return ReportError(uri.status());
  StoreUri pack_destination = DefaultPackDestination(*uri);
  if (!options.pack_to.empty()) {
    Result<StoreUri> to = ParseStoreUri(options.pack_to);
    if (!to.ok()) return ReportError(to.status().WithContext("--pack-to"));
    pack_destination = *to;
    // A FastFile channel over the shards needs a folder.
    if (!pack_destination.key.empty() && pack_destination.key.back() != '/') {
      pack_destination.key += '/';
    }
  }

  AdviseConstraints constraints;
  constraints.training_hours = options.training_hours;
  constraints.no_pack = options.no_pack;
  constraints.sequential_only = options.sequential_only;
  constraints.instance_count = options.instance_count;
  std::string disk_free_source = "--disk-free";
  if (options.disk_free_bytes) {
    constraints.disk_free_bytes = *options.disk_free_bytes;
  } else {
    // File mode downloads into the job directory, by default under the current directory.
    struct statvfs fs;
    if (::statvfs(".", &fs) != 0) {
      return ReportError(ErrnoToStatus(errno, "free space of the current directory (statvfs)"));
    }
    constraints.disk_free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    disk_free_source = "free space of the current directory";
  }

  Result<std::unique_ptr<ObjectStore>> store = OpenObjectStore(*uri, flags.store);
  if (!store.ok()) return ReportError(store.status());
  Result<DatasetStats> stats = CollectDatasetStats(**store, *uri, &g_interrupted);
  if (!stats.ok()) return ReportError(stats.status());

  std::optional<ProbeResult> probe;
  ReadRates rates = DefaultReadRates();
  if (options.probe) {
    ProbeOptions probe_options;
    probe_options.cancel = &g_interrupted;
    Result<ProbeResult> probed = RunProbe(**store, uri->bucket, *stats, probe_options);
    if (!probed.ok()) return ReportError(probed.status());
    probe = std::move(*probed);
    rates = probe->rates;
  }

  AdviseOutput output;
  output.source = *uri;
  output.channel = options.channel;
  output.pack_destination = pack_destination;
  output.stats = &*stats;
  output.probe = probe ? &*probe : nullptr;
  output.rates = rates;
  output.constraints = constraints;
  output.disk_free_source = disk_free_source;
  output.advice = Recommend(*stats, rates, constraints);

  std::string text = options.json ? AdviseJson(output).dump(2) + "\n" : AdviseText(output);
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (std::fflush(stdout) != 0) return ReportError(ErrnoToStatus(errno, "write the report"));
  return 0;
}

}  // namespace trainfeed
