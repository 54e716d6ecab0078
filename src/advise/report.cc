#include "advise/report.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/units.h"

namespace trainfeed {

namespace {

using json = nlohmann::ordered_json;

bool IsPack(InputRecommendation r) {
  return r == InputRecommendation::kPackThenFile || r == InputRecommendation::kPackThenFastFile;
}

std::string Bytes(uint64_t bytes) { return FormatBytes(static_cast<double>(bytes)); }

// Estimates below a second read better in milliseconds than as "0.0s".
std::string Seconds(double seconds) {
  if (seconds >= 0 && seconds < 0.95) return fmt::format("{:.0f} ms", seconds * 1000);
  return FormatDuration(seconds);
}

// "1 KiB" for the powers of two that bound histogram rows.
std::string PowerOfTwoLabel(uint64_t v) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (u < 6 && v >= 1024 && v % 1024 == 0) {
    v /= 1024;
    ++u;
  }
  return std::to_string(v) + " " + kUnits[u];
}

// Folds `text` into lines of at most `width` columns, each starting with `indent`.
std::string Wrap(const std::string& text, size_t width, const std::string& indent) {
  std::string out, line;
  size_t start = 0;
  while (start < text.size()) {
    size_t space = text.find(' ', start);
    std::string word = text.substr(start, space == std::string::npos ? std::string::npos
                                                                     : space - start);
    start = space == std::string::npos ? text.size() : space + 1;
    if (!line.empty() && indent.size() + line.size() + 1 + word.size() > width) {
      out += indent + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out += indent + line + "\n";
  return out;
}

json EstimateJson(const ModeEstimate& e) {
  return {{"startup_seconds", e.startup_seconds},
          {"epoch_seconds", e.epoch_seconds},
          {"disk_bytes", e.disk_bytes},
          {"fits_disk", e.fits_disk}};
}

json KeyJson(const KeyAndSize& k) { return {{"key", k.key}, {"size", k.size}}; }

}  // namespace

StoreUri DefaultPackDestination(const StoreUri& source) {
  StoreUri out = source;
  std::string key = source.key;
  while (!key.empty() && key.back() == '/') key.pop_back();
  out.key = key.empty() ? "packed/" : key + "-packed/";
  return out;
}

std::string FastFileUri(const StoreUri& source, const DatasetStats& stats) {
  StoreUri out = source;
  if (!out.key.empty() && out.key.back() != '/') {
    if (stats.folder_prefix) {
      out.key += '/';
    } else {
      size_t slash = out.key.rfind('/');
      out.key = slash == std::string::npos ? "" : out.key.substr(0, slash + 1);
    }
  }
  return out.ToString();
}

json InputDataConfigChannel(const AdviseOutput& output) {
  const InputRecommendation r = output.advice.recommendation;
  if (r == InputRecommendation::kFSxLustre) {
    // File-system channels run in File mode (the developer guide); the id and MountName are the
    // user's: an FSx for Lustre file system linked to the bucket, with the prefix imported.
    std::string path = output.source.key;
    size_t slash = path.rfind('/');
    path = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    return {{"ChannelName", output.channel},
            {"InputMode", "File"},
            {"DataSource",
             {{"FileSystemDataSource",
               {{"FileSystemId", "fs-0123456789abcdef0"},
                {"FileSystemType", "FSxLustre"},
                {"DirectoryPath", "/MountName/" + path},
                {"FileSystemAccessMode", "ro"}}}}}};
  }
  std::string mode, uri;
  switch (r) {
    case InputRecommendation::kFile:
      mode = "File";
      uri = output.source.ToString();
      break;
    case InputRecommendation::kFastFile:
      mode = "FastFile";
      uri = FastFileUri(output.source, *output.stats);
      break;
    case InputRecommendation::kPipe:
      mode = "Pipe";
      uri = output.source.ToString();
      break;
    case InputRecommendation::kPackThenFile:
      mode = "File";
      uri = output.pack_destination.ToString();
      break;
    default:  // kPackThenFastFile; the destination is a folder, ending in '/'
      mode = "FastFile";
      uri = output.pack_destination.ToString();
      break;
  }
  return {{"ChannelName", output.channel},
          {"InputMode", mode},
          {"DataSource",
           {{"S3DataSource",
             {{"S3DataType", "S3Prefix"},
              {"S3Uri", uri},
              {"S3DataDistributionType", "FullyReplicated"}}}}}};
}

std::string PackCommand(const AdviseOutput& output) {
  if (!IsPack(output.advice.recommendation)) return "";
  return fmt::format("trainfeed pack {} {} --shard-size 150MB --format tar",
                     output.source.ToString(), output.pack_destination.ToString());
}

json AdviseJson(const AdviseOutput& output) {
  const DatasetStats& s = *output.stats;
  const Advice& advice = output.advice;
  const ModeEstimates& e = advice.estimates;

  json histogram = json::array();
  for (const SizeHistogram::Octave& row : s.sizes.Octaves()) {
    histogram.push_back({{"from_bytes", row.from}, {"to_bytes", row.to},
                         {"objects", row.objects}, {"bytes", row.bytes}});
  }
  json stats = {
      {"objects", s.objects},
      {"bytes", s.bytes},
      {"listing_seconds", s.listing_seconds},
      {"percentiles",
       {{"p10", s.sizes.Quantile(0.10)},
        {"p50", s.sizes.Quantile(0.50)},
        {"p90", s.sizes.Quantile(0.90)},
        {"p99", s.sizes.Quantile(0.99)}}},
      {"percentile_relative_error", SizeHistogram::kRelativeError},
      {"histogram", histogram},
      {"small_files",
       {{"threshold_bytes", kSmallFileBytes},
        {"objects", s.small_objects},
        {"bytes", s.small_bytes},
        {"share_by_count", s.small_share_by_count()},
        {"share_by_bytes", s.small_share_by_bytes()}}},
      {"smallest", KeyJson(s.smallest)},
      {"largest", KeyJson(s.largest)},
      {"fan_out",
       {{"widest_folder", s.widest_folder},
        {"entries", s.widest_folder_entries},
        {"max_depth", s.max_depth}}},
  };
  json probe = nullptr;
  if (output.probe) {
    const ProbeResult& p = *output.probe;
    probe = {{"small_gets", p.small_gets},
             {"small_bytes", p.small_bytes},
             {"small_seconds", p.small_seconds},
             {"latency_p50_seconds", p.latency_p50_seconds},
             {"large_gets", p.large_gets},
             {"large_bytes", p.large_bytes},
             {"large_seconds", p.large_seconds},
             {"large_measured", p.large_measured},
             {"note", p.note}};
  }
  json constraints = {
      {"disk_free_bytes", output.constraints.disk_free_bytes},
      {"disk_free_source", output.disk_free_source},
      {"training_hours", output.constraints.training_hours
                             ? json(*output.constraints.training_hours) : json(nullptr)},
      {"no_pack", output.constraints.no_pack},
      {"sequential_only", output.constraints.sequential_only},
      {"instance_count", output.constraints.instance_count},
  };
  std::string pack = PackCommand(output);
  return {
      {"uri", output.source.ToString()},
      {"recommendation", std::string(RecommendationName(advice.recommendation))},
      {"rule", advice.rule},
      {"reasons", advice.reasons},
      {"stats", stats},
      {"probe", probe},
      {"rates",
       {{"source", output.rates.measured ? "probe" : "defaults"},
        {"objects_per_second", output.rates.objects_per_second},
        {"object_latency_seconds", output.rates.object_latency_seconds},
        {"bytes_per_second", output.rates.bytes_per_second},
        {"fastfile_readers", kFastFileReaders},
        {"local_disk_bytes_per_second", kLocalDiskBytesPerSecond}}},
      {"constraints", constraints},
      {"estimates",
       {{"File", EstimateJson(e.file)},
        {"FastFile", EstimateJson(e.fastfile)},
        {"Pipe", EstimateJson(e.pipe)},
        {"pack-then-File", EstimateJson(e.packed_file)},
        {"pack-then-FastFile", EstimateJson(e.packed_fastfile)},
        {"packed", {{"objects", e.packed_objects}, {"bytes", e.packed_bytes}}}}},
      {"pack_command", pack.empty() ? json(nullptr) : json(pack)},
      {"input_data_config", InputDataConfigChannel(output)},
  };
}

std::string AdviseText(const AdviseOutput& output) {
  const DatasetStats& s = *output.stats;
  const Advice& advice = output.advice;
  const ModeEstimates& e = advice.estimates;
  std::string out;
  auto line = [&](const std::string& text) { out += text + "\n"; };

  line(fmt::format("dataset   {}: {} objects, {} (listed in {})", output.source.ToString(),
                   FormatCount(s.objects), Bytes(s.bytes), Seconds(s.listing_seconds)));
  line(fmt::format("sizes     p10 {}, p50 {}, p90 {}, p99 {} (from 1/8-octave buckets: within "
                   "4.4%)",
                   Bytes(s.sizes.Quantile(0.10)), Bytes(s.sizes.Quantile(0.50)),
                   Bytes(s.sizes.Quantile(0.90)), Bytes(s.sizes.Quantile(0.99))));
  line(fmt::format("smallest  {:>10}  {}", Bytes(s.smallest.size), s.smallest.key));
  line(fmt::format("largest   {:>10}  {}", Bytes(s.largest.size), s.largest.key));
  line(fmt::format("< 50 MB   {} objects ({:.1f}% of the count), {} ({:.1f}% of the bytes)",
                   FormatCount(s.small_objects), 100 * s.small_share_by_count(),
                   Bytes(s.small_bytes), 100 * s.small_share_by_bytes()));
  line(fmt::format("folders   widest {} ({} entries); deepest key {} folder{} below the prefix",
                   s.widest_folder.empty() ? std::string("(root)") : s.widest_folder,
                   FormatCount(s.widest_folder_entries), s.max_depth,
                   s.max_depth == 1 ? "" : "s"));
  line("");
  line("objects by size");
  std::vector<SizeHistogram::Octave> rows = s.sizes.Octaves();
  uint64_t most = 0;
  for (const auto& row : rows) most = std::max(most, row.objects);
  constexpr int kBarWidth = 40;
  for (const auto& row : rows) {
    std::string label = row.to == 0 ? std::string("empty")
                                    : PowerOfTwoLabel(row.from) + " - " +
                                          (row.to == ~uint64_t{0} ? std::string("16 EiB")
                                                                  : PowerOfTwoLabel(row.to));
    int bar = most ? static_cast<int>((row.objects * kBarWidth + most - 1) / most) : 0;
    line(fmt::format("  {:>19} |{:<{}}| {:>11} {:>10}", label, std::string(bar, '#'), kBarWidth,
                     FormatCount(row.objects), Bytes(row.bytes)));
  }
  line("");
  const ReadRates& r = output.rates;
  line(fmt::format("rates     {}: {:.0f} objects/s, {:.1f} ms per object, {}/s", 
                   r.measured ? "measured (--probe)" : "assumed (run with --probe to measure)",
                   r.objects_per_second, r.object_latency_seconds * 1000,
                   Bytes(static_cast<uint64_t>(r.bytes_per_second))));
  if (output.probe) {
    const ProbeResult& p = *output.probe;
    line(fmt::format("probe     {} small GET{} ({}) in {}, latency p50 {:.1f} ms; {} ranged GET{} "
                     "({}) in {}",
                     p.small_gets, p.small_gets == 1 ? "" : "s", Bytes(p.small_bytes),
                     Seconds(p.small_seconds), p.latency_p50_seconds * 1000, p.large_gets,
                     p.large_gets == 1 ? "" : "s", Bytes(p.large_bytes), Seconds(p.large_seconds)));
    if (!p.note.empty()) line("          " + p.note);
  }
  line(fmt::format("disk      {} free ({})", Bytes(output.constraints.disk_free_bytes),
                   output.disk_free_source));
  line("");
  line(fmt::format("  {:<20} {:>10} {:>10} {:>11}", "mode", "start-up", "one epoch",
                   "local disk"));
  auto row = [&](const char* name, const ModeEstimate& m, const std::string& extra) {
    line(fmt::format("  {:<20} {:>10} {:>10} {:>11}{}", name, Seconds(m.startup_seconds),
                     Seconds(m.epoch_seconds), Bytes(m.disk_bytes),
                     (m.fits_disk ? "" : " (does not fit)") + extra));
  };
  row("File", e.file, "");
  row("FastFile", e.fastfile, "");
  row("Pipe", e.pipe, "");
  std::string shards = fmt::format("  {} shard{}", FormatCount(e.packed_objects),
                                   e.packed_objects == 1 ? "" : "s");
  row("pack-then-File", e.packed_file, shards);
  row("pack-then-FastFile", e.packed_fastfile, shards);
  line(fmt::format("  (after `trainfeed pack` into ~150 MB shards, File would take {} to start "
                   "and FastFile {} per epoch)",
                   Seconds(e.packed_file.startup_seconds),
                   Seconds(e.packed_fastfile.epoch_seconds)));
  line("");
  line(fmt::format("recommendation: {}", RecommendationName(advice.recommendation)));
  out += Wrap(advice.reasons, 100, "  ");
  if (advice.recommendation == InputRecommendation::kFastFile && !s.folder_prefix) {
    out += Wrap(fmt::format("Note: FastFile mounts whole folders and {} ends inside a name, so the "
                            "channel below names the enclosing folder, which holds more than "
                            "this dataset: move the dataset into a folder of its own.",
                            output.source.ToString()),
                100, "  ");
  }
  if (std::string pack = PackCommand(output); !pack.empty()) {
    line("");
    line("run first:");
    line("  " + pack);
  }
  line("");
  line("InputDataConfig channel (paste into the job spec):");
  line("  " + InputDataConfigChannel(output).dump());
  return out;
}

}  // namespace trainfeed
