// advise, part 4: what `trainfeed advise` prints. The text report is for people (statistics, a
// histogram, the estimates, the recommendation with its reasons, the channel to paste); the JSON
// document carries the same facts for programs, with the chosen mode in a top-level
// "recommendation" field. Its shape is stable: fields are added, never renamed or removed; keys
// keep the order written here (the channel reads as AWS's examples do).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "advise/dataset_stats.h"
#include "advise/probe.h"
#include "advise/recommend.h"
#include "store/store_uri.h"

namespace trainfeed {

struct AdviseOutput {
  StoreUri source;
  std::string channel = "train";
  StoreUri pack_destination;  // where `trainfeed pack` writes for pack-then-*
  const DatasetStats* stats = nullptr;  // REQUIRES: set
  const ProbeResult* probe = nullptr;   // null without --probe
  ReadRates rates;                      // what the estimates used
  AdviseConstraints constraints;
  std::string disk_free_source;  // "--disk-free" or where the free space was read
  Advice advice;
};

// `trainfeed pack` writes next to the source by default: s3://b/data/train/ -> s3://b/data/train-packed/
// (the bucket root packs to packed/).
StoreUri DefaultPackDestination(const StoreUri& source);

// The S3Uri a FastFile channel over `source` must use: a folder, so it ends in '/'. A prefix that
// stops inside a name gets the '/' when every key lies below it (stats.folder_prefix), else the
// enclosing folder (which may hold more than the dataset: the text report says so).
std::string FastFileUri(const StoreUri& source, const DatasetStats& stats);

// The channel to paste into InputDataConfig for the advice: S3Prefix with FullyReplicated
// (FastFile's URI from FastFileUri, pack-then-* pointing at the packed destination), or a
// FileSystemDataSource with placeholders for FSx for Lustre.
nlohmann::ordered_json InputDataConfigChannel(const AdviseOutput& output);

// "trainfeed pack SRC DST --shard-size 150MB --format tar" for pack-then-*, else "".
std::string PackCommand(const AdviseOutput& output);

nlohmann::ordered_json AdviseJson(const AdviseOutput& output);
std::string AdviseText(const AdviseOutput& output);

}  // namespace trainfeed
