#include "advise/recommend.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/units.h"

namespace trainfeed {

namespace {

// Listing pages of 1,000 keys: FastFile's start-up scales with them, not with bytes.
uint64_t ListPages(uint64_t objects) { return std::max<uint64_t>(1, (objects + 999) / 1000); }

std::string Percent(double share) { return fmt::format("{:.1f}%", 100 * share); }

std::string Bytes(uint64_t bytes) { return FormatBytes(static_cast<double>(bytes)); }

// Estimates below a second read better in milliseconds than as "0.0s".
std::string Seconds(double seconds) {
  if (seconds >= 0 && seconds < 0.95) return fmt::format("{:.0f} ms", seconds * 1000);
  return FormatDuration(seconds);
}

}  // namespace

std::string FormatCount(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

ReadRates DefaultReadRates() {
  ReadRates rates;
  rates.objects_per_second = 1000;
  rates.object_latency_seconds = 0.020;
  rates.bytes_per_second = 400.0 * 1024 * 1024;
  rates.measured = false;
  return rates;
}

std::string_view RecommendationName(InputRecommendation recommendation) {
  switch (recommendation) {
    case InputRecommendation::kFile: return "File";
    case InputRecommendation::kFastFile: return "FastFile";
    case InputRecommendation::kPipe: return "Pipe";
    case InputRecommendation::kFSxLustre: return "FSxLustre";
    case InputRecommendation::kPackThenFile: return "pack-then-File";
    case InputRecommendation::kPackThenFastFile: return "pack-then-FastFile";
  }
  return "?";
}

ModeEstimates EstimateModes(const DatasetStats& stats, const ReadRates& rates,
                            uint64_t disk_free_bytes) {
  // A zero rate would divide by zero; it can only come from a broken probe, and then the times
  // become huge rather than undefined.
  const double object_rate = std::max(rates.objects_per_second, 1e-9);
  const double byte_rate = std::max(rates.bytes_per_second, 1e-9);
  const double latency = std::max(rates.object_latency_seconds, 0.0);
  auto download = [&](uint64_t objects, uint64_t bytes) {
    return static_cast<double>(objects) / object_rate + static_cast<double>(bytes) / byte_rate;
  };
  auto stream = [&](uint64_t objects, uint64_t bytes) {
    return static_cast<double>(bytes) / byte_rate +
           static_cast<double>(objects) * latency / kFastFileReaders;
  };
  const uint64_t n = stats.objects, bytes = stats.bytes;
  ModeEstimates e;
  e.file = {download(n, bytes), static_cast<double>(bytes) / kLocalDiskBytesPerSecond, bytes,
            bytes <= disk_free_bytes};
  e.fastfile = {stats.listing_seconds, stream(n, bytes), 0, true};
  e.pipe = {latency, download(n, bytes), 0, true};

  e.packed_bytes = bytes + n * kPackOverheadBytesPerObject;
  e.packed_objects = std::max<uint64_t>(1, (e.packed_bytes + kPackShardBytes - 1) / kPackShardBytes);
  const uint64_t p = e.packed_objects, packed = e.packed_bytes;
  e.packed_file = {download(p, packed), static_cast<double>(packed) / kLocalDiskBytesPerSecond,
                   packed, packed <= disk_free_bytes};
  double packed_listing = stats.listing_seconds / static_cast<double>(ListPages(n)) *
                          static_cast<double>(ListPages(p));
  e.packed_fastfile = {packed_listing, stream(p, packed), 0, true};
  return e;
}

Advice Recommend(const DatasetStats& stats, const ReadRates& rates,
                 const AdviseConstraints& constraints) {
  Advice advice;
  advice.estimates = EstimateModes(stats, rates, constraints.disk_free_bytes);
  const ModeEstimates& e = advice.estimates;

  const double startup_limit = constraints.training_hours
                                   ? *constraints.training_hours * 3600 * kMaxStartupShareOfTraining
                                   : kMaxStartupSeconds;
  const std::string limit_text =
      constraints.training_hours
          ? fmt::format("10% of {:g} h of training", *constraints.training_hours)
          : std::string("an hour");
  // Rule 1 on a data set of `bytes` whose File-mode estimate is `m`: "" when File mode suits it,
  // else why not.
  auto file_mode_problem = [&](uint64_t bytes, const ModeEstimate& m) -> std::string {
    if (!m.fits_disk) {
      return fmt::format("it needs {} of local disk but {} is free", Bytes(bytes),
                         Bytes(constraints.disk_free_bytes));
    }
    if (bytes > kFileModeMaxBytes) {
      return fmt::format("{} is above File mode's ~100 GB", Bytes(bytes));
    }
    if (m.startup_seconds > startup_limit) {
      return fmt::format("its download would delay the start by {}, more than {}",
                         Seconds(m.startup_seconds), limit_text);
    }
    return "";
  };
  const std::string dataset = fmt::format("{} objects, {}", FormatCount(stats.objects),
                                          Bytes(stats.bytes));
  const std::string rates_text =
      rates.measured ? "rates measured by --probe" : "rates assumed, no --probe";
  std::string reasons;

  const std::string file_problem = file_mode_problem(stats.bytes, e.file);
  const bool many_small = stats.small_share_by_count() >= kManySmallFilesShare;
  if (file_problem.empty()) {
    advice.recommendation = InputRecommendation::kFile;
    advice.rule = "file-fits";
    reasons = fmt::format(
        "File: the dataset ({}) fits on the local disk ({} free), is under File mode's ~100 GB, "
        "and downloads in about {} before training starts (limit: {}; {}); every epoch then "
        "reads at local-disk speed.",
        dataset, Bytes(constraints.disk_free_bytes), Seconds(e.file.startup_seconds),
        limit_text, rates_text);
  } else if (many_small) {
    std::string small = fmt::format(
        "Many small files: {} of {} objects ({}) are under 50 MB, and File mode is ruled out "
        "for the dataset as it is: {}.",
        FormatCount(stats.small_objects), FormatCount(stats.objects),
        Percent(stats.small_share_by_count()), file_problem);
    if (constraints.no_pack) {
      advice.recommendation = InputRecommendation::kFSxLustre;
      advice.rule = "small-files-no-pack-fsx";
      reasons = fmt::format(
          "{} With --no-pack (the files cannot be serialised, or need random access), AWS's "
          "answer is a distributed file system: import the prefix into an FSx for Lustre file "
          "system and mount it as a file-system channel (fill in FileSystemId and the MountName "
          "below). FastFile would pay {:.1f} ms per file: about {} per epoch.",
          small, rates.object_latency_seconds * 1000, Seconds(e.fastfile.epoch_seconds));
    } else {
      const std::string packed_problem = file_mode_problem(e.packed_bytes, e.packed_file);
      std::string packed = fmt::format("{} shard{} of at most 150 MB ({} in all)",
                                       FormatCount(e.packed_objects),
                                       e.packed_objects == 1 ? "" : "s", Bytes(e.packed_bytes));
      if (packed_problem.empty()) {
        advice.recommendation = InputRecommendation::kPackThenFile;
        advice.rule = "small-files-pack-file";
        reasons = fmt::format(
            "{} AWS recommends serialising small files into ~150 MB containers: after `trainfeed "
            "pack` into {}, File mode downloads in about {} instead of {} ({}).",
            small, packed, Seconds(e.packed_file.startup_seconds),
            Seconds(e.file.startup_seconds), rates_text);
      } else {
        advice.recommendation = InputRecommendation::kPackThenFastFile;
        advice.rule = "small-files-pack-fastfile";
        reasons = fmt::format(
            "{} AWS recommends serialising small files into ~150 MB containers; packed into {}, "
            "File mode is still ruled out ({}), so FastFile streams the shards: it starts at "
            "once and reads an epoch in about {}, against {} for the small files unpacked ({:.1f} "
            "ms per file; {}).",
            small, packed, packed_problem, Seconds(e.packed_fastfile.epoch_seconds),
            Seconds(e.fastfile.epoch_seconds), rates.object_latency_seconds * 1000,
            rates_text);
      }
    }
  } else {
    std::string large = fmt::format(
        "Large files: {} of the objects ({} of the bytes) are 50 MB or more, median {}, and "
        "File mode is ruled out: {}.",
        Percent(1 - stats.small_share_by_count()), Percent(1 - stats.small_share_by_bytes()),
        Bytes(stats.sizes.Quantile(0.5)), file_problem);
    if (constraints.sequential_only) {
      advice.recommendation = InputRecommendation::kPipe;
      advice.rule = "large-files-sequential-pipe";
      reasons = fmt::format(
          "{} With --sequential-only the script reads each epoch as one stream, so Pipe mode "
          "feeds it without local disk or a mount: an epoch in about {} ({}).",
          large, Seconds(e.pipe.epoch_seconds), rates_text);
    } else {
      advice.recommendation = InputRecommendation::kFastFile;
      advice.rule = "large-files-fastfile";
      reasons = fmt::format(
          "{} FastFile (AWS: files over 50 MB, ideally ~150 MB+) starts after the listing ({}) "
          "and streams an epoch in about {} with no local disk ({}).",
          large, Seconds(e.fastfile.startup_seconds),
          Seconds(e.fastfile.epoch_seconds), rates_text);
    }
  }
  if (constraints.instance_count > 1) {
    reasons += fmt::format(
        " With {} instances and FullyReplicated, the store serves {} per epoch.",
        constraints.instance_count,
        Bytes(stats.bytes * static_cast<uint64_t>(constraints.instance_count)));
  }
  advice.reasons = std::move(reasons);
  return advice;
}

}  // namespace trainfeed
