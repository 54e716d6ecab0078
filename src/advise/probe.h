// advise, part 2: how fast this machine reads from this store, measured in a few seconds.
//
// Two bounded runs of GETs, each at trainfeed's File-mode concurrency (64 in flight):
//   - small: up to 64 whole-object GETs of the small objects the listing sampled (each capped at
//     1 MiB, a ranged GET beyond that), giving objects per second and the per-request latency a
//     FastFile reader pays per small file. A dataset without small objects is probed with 4 KiB
//     ranged GETs of its largest objects instead: the same per-request cost.
//   - large: 8 MiB ranged GETs (the downloader's part size) over the largest objects, at most
//     256 MiB in all, giving the streaming rate. Needs an object of at least 1 MiB; otherwise the
//     default rate is kept and the result says so.
// Nothing is written anywhere; the bytes are counted and dropped.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "advise/dataset_stats.h"
#include "advise/recommend.h"
#include "store/object_store.h"

namespace trainfeed {

struct ProbeOptions {
  size_t max_small_gets = 64;
  uint64_t max_small_get_bytes = 1ull << 20;
  uint64_t max_large_bytes = 256ull << 20;
  // DownloadOptions' defaults: what File mode really does.
  int concurrency = 64;
  uint64_t part_size = 8ull << 20;
  // Objects below this are all latency; they cannot measure a streaming rate.
  uint64_t min_large_object_bytes = 1ull << 20;
  const std::atomic<bool>* cancel = nullptr;
};

struct ProbeResult {
  uint64_t small_gets = 0, small_bytes = 0;
  double small_seconds = 0;
  uint64_t large_gets = 0, large_bytes = 0;
  double large_seconds = 0;
  bool large_measured = false;
  double latency_p50_seconds = 0;
  std::string note;  // what could not be measured and what was assumed instead; "" if all was
  // The rates the estimates use: objects_per_second is the small run's request rate with the
  // time its bytes take at the large rate taken out (the estimates add bytes separately).
  ReadRates rates;
};

// Reads from `bucket` the objects `stats` kept for probing. Fails with the first GET error
// (naming the object), Cancelled when `options.cancel` turns true.
Result<ProbeResult> RunProbe(ObjectStore& store, const std::string& bucket,
                             const DatasetStats& stats, const ProbeOptions& options = {});

}  // namespace trainfeed
