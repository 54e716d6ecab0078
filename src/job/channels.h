// Materialising a job's File-mode channels under input/data/<channel> before the command starts:
// S3Prefix, ManifestFile and AugmentedManifestFile data sources, with this host's share of
// ShardedByS3Key channels (ShuffleConfig uses epoch 0 in File mode, contract §10).
#pragma once

#include <string>

#include "cluster/host_identity.h"
#include "job/job_spec.h"
#include "modes/file/prefix_download.h"
#include "store/store_factory.h"

namespace trainfeed {

struct ChannelReport {
  std::string name;
  uint64_t objects = 0;
  uint64_t bytes = 0;
  uint64_t skipped_objects = 0;  // already complete from an earlier run
  double seconds = 0;
};

// Downloads channel `channel` (an S3 data source in File mode) into `dir`. Any failed object
// fails the channel: its error names the channel and every failed key (the first few).
Result<ChannelReport> DownloadFileChannel(const ChannelSpec& channel, const std::string& dir,
                                          const HostIdentity& hosts,
                                          const StoreOpenOptions& store_options,
                                          const FileModeOptions& options);

// Reads a whole object (a manifest) into memory; refuses objects over `max_bytes`.
Result<std::string> ReadSmallObject(ObjectStore& store, const StoreUri& uri, uint64_t max_bytes);

}  // namespace trainfeed
