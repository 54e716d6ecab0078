// advise, part 3: the input-mode rules, as a pure function of the dataset's statistics, the read
// rates of this machine against the store (probed or assumed), and the user's constraints.
//
// The rules are AWS's guidance for SageMaker training data, in this order:
//   1. File       the dataset fits on the local disk, is at most ~100 GB (AWS: "under ~50-100 GB")
//                 and its download (the start-up delay) is short: at most 10% of --training-hours,
//                 or at most an hour when no training time is given.
//   2. many small files (half or more of the objects under 50 MB), File ruled out:
//        --no-pack (the files cannot be serialised, or need random access) -> FSxLustre;
//        else serialise into ~150 MB shards with `trainfeed pack`:
//        pack-then-File when the packed set passes rule 1, else pack-then-FastFile.
//   3. large files, File ruled out: FastFile, the modern default; Pipe only when the script reads
//      each epoch as one sequential stream (--sequential-only), since Pipe gives no file tree and
//      no random access but needs no FUSE and no readahead memory.
// Every threshold is a named constant below; the tests pin each rule at its edges.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "advise/dataset_stats.h"

namespace trainfeed {

// AWS: File mode suits datasets "under ~50-100 GB"; the upper end is the rule's edge.
inline constexpr uint64_t kFileModeMaxBytes = 100'000'000'000;
// `trainfeed pack`'s default shard size, AWS's "~150 MB" containers; large enough that FastFile
// streams each one at full speed, small enough that File mode still shards well across hosts.
inline constexpr uint64_t kPackShardBytes = 150'000'000;
// A tar member costs a 512-byte header plus, on average, 256 bytes of padding: ~1 KiB with the
// pack index entry.
inline constexpr uint64_t kPackOverheadBytesPerObject = 1024;
// "Many small files": at least this share of the objects is below kSmallFileBytes.
inline constexpr double kManySmallFilesShare = 0.5;
// A File-mode start-up is "long" above this share of the training time...
inline constexpr double kMaxStartupShareOfTraining = 0.10;
// ...or, when no training time is given, above this many seconds.
inline constexpr double kMaxStartupSeconds = 3600;

// How fast this machine reads from the store.
struct ReadRates {
  // Whole-object GETs of small objects with trainfeed's File-mode concurrency (64 in flight).
  double objects_per_second = 0;
  // One small GET, request to last byte: what a FastFile reader waits for on each small file.
  double object_latency_seconds = 0;
  // Large objects in 8 MiB ranged GETs with the same concurrency (File download, FastFile
  // readahead and Pipe prefetch all read this way).
  double bytes_per_second = 0;
  bool measured = false;  // false: the defaults below
};

// Used without --probe: 1,000 objects/s and 400 MiB/s are what trainfeed's File mode reaches
// against a real S3 server with 20 ms to the first byte (the README's benchmark, "shaped"), and
// 20 ms is a typical S3 first-byte time within a region.
ReadRates DefaultReadRates();

// Assumptions of the epoch estimates, not measured by the probe.
// A FastFile training script has this many files open at once (e.g. 4 data-loader workers), so
// the per-file latency is paid 4 at a time.
inline constexpr int kFastFileReaders = 4;
// A local NVMe or EBS gp3 volume reads ~1 GiB/s: File mode's epoch after the download.
inline constexpr double kLocalDiskBytesPerSecond = 1024.0 * 1024 * 1024;

struct AdviseConstraints {
  uint64_t disk_free_bytes = 0;
  std::optional<double> training_hours;
  bool no_pack = false;          // the files cannot be serialised into shards (or need random access)
  bool sequential_only = false;  // the script reads each epoch as one sequential stream
  int instance_count = 1;
};

struct ModeEstimate {
  double startup_seconds = 0;  // before the script can read its first byte
  double epoch_seconds = 0;    // reading the whole dataset once, after start-up
  uint64_t disk_bytes = 0;     // local disk the mode needs for the data
  bool fits_disk = true;
};

struct ModeEstimates {
  ModeEstimate file, fastfile, pipe, packed_file, packed_fastfile;
  uint64_t packed_objects = 0;  // shards of ~kPackShardBytes
  uint64_t packed_bytes = 0;
};

// Start-up and epoch times of every mode. File: objects / objects_per_second + bytes /
// bytes_per_second to download (per-object overhead and bytes add: small objects are bound by
// the first, large ones by the second), then local-disk reads. FastFile: starts after the listing
// (`listing_seconds`, measured); an epoch streams the bytes and pays object_latency_seconds per
// file, kFastFileReaders at a time. Pipe: no start-up, an epoch as File's download. Packed: the
// same with ceil(bytes / 150 MB) objects.
// `disk_free_bytes` decides fits_disk.
ModeEstimates EstimateModes(const DatasetStats& stats, const ReadRates& rates,
                            uint64_t disk_free_bytes);

enum class InputRecommendation { kFile, kFastFile, kPipe, kFSxLustre, kPackThenFile, kPackThenFastFile };

// "File", "FastFile", "Pipe", "FSxLustre", "pack-then-File", "pack-then-FastFile": the
// documented values of --json's "recommendation".
std::string_view RecommendationName(InputRecommendation recommendation);

struct Advice {
  InputRecommendation recommendation = InputRecommendation::kFile;
  std::string rule;     // which rule applied, a short stable id such as "file-fits"
  std::string reasons;  // one short paragraph: the rule and the numbers behind it
  ModeEstimates estimates;
};

// "1,234,567": counts in messages.
std::string FormatCount(uint64_t n);

// Applies the rules in the header comment. Pure: the same inputs give the same advice.
Advice Recommend(const DatasetStats& stats, const ReadRates& rates,
                 const AdviseConstraints& constraints);

}  // namespace trainfeed
