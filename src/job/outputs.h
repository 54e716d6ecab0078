// Job outputs: what happens to /opt/ml/model and /opt/ml/output/data after the training process
// exits (SageMaker contract §1.7).
//
// Layout under <S3OutputPath>/<TrainingJobName>/output/ (the same for s3:// and file://):
//   CompressionType GZIP (default):  model.tar.gz            output.tar.gz
//   CompressionType NONE:            model/<relative path>   data/<relative path>
//
// Multi-host. SageMaker merges every host's directories into one archive; self-hosted, each host
// uploads its own and nothing merges them, so hosts must not write to the same names:
//   - the first host in resourceconfig.json's `hosts` order (the one distributed frameworks call
//     rank 0, usually the only one that saves a model) writes exactly SageMaker's names above, so
//     ModelArtifacts.S3ModelArtifacts is the same as on SageMaker;
//   - every other host suffixes its host name: model-<host>.tar.gz and output-<host>.tar.gz (GZIP),
//     model-<host>/... and data-<host>/... (NONE). It uploads nothing for a directory that is empty
//     or missing, so jobs where only rank 0 saves leave no empty archives behind.
// A single-host job (one entry in `hosts`) is always the first host.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "store/object_store.h"
#include "store/store_uri.h"

namespace trainfeed {

// Writes a gzip'd tar of the contents of `source_dir` to `archive_path`.
//  - Entry names are relative to the directory, without a leading "./" ("model.pt", "sub",
//    "sub/x.bin"); the directory itself has no entry. Siblings are in byte order of their names,
//    each directory before its contents.
//  - Regular files, directories and symlinks (stored as symlinks, target as-is). Other file types
//    (sockets, FIFOs, devices) are skipped with a warning; hard links are stored as separate files.
//  - Deterministic: mode and mtime (whole seconds) come from the files; owner is 0:0 with no user
//    or group names; the gzip header has no timestamp. Same tree, same bytes.
//  - Streams: memory use does not depend on file sizes.
//  - Written under a hidden temporary name next to `archive_path` and renamed into place, so the
//    final name only ever holds a complete archive. If the archive lies inside `source_dir` it
//    does not include itself.
// A missing or empty `source_dir` gives a valid empty archive. A file that changes size while it
// is being read fails with DataLoss rather than producing a corrupt entry.
Status WriteTarGz(const std::string& source_dir, const std::string& archive_path);

// Which host this is, in the terms of resourceconfig.json.
struct HostInfo {
  std::string current_host = "algo-1";
  std::vector<std::string> hosts = {"algo-1"};  // in resourceconfig.json order

  // True when this host writes SageMaker's unsuffixed output names (see the file comment).
  bool is_first() const { return hosts.empty() || hosts.front() == current_host; }
};

// Uploads the job's model and output data with the layout described at the top of this file.
// `s3_output_path` is OutputDataConfig.S3OutputPath: s3://bucket/prefix, or file:///dir with
// `store` a LocalObjectStore rooted at "/". `compression` is "GZIP" or "NONE". Archives are built
// in `scratch_dir` (created if needed; should not be on the model's own volume if that is nearly
// full) and removed afterwards. Big files go up as parallel multipart uploads.
// A missing `model_dir` or `output_data_dir` counts as empty. Errors name what failed.
Status UploadJobOutputs(ObjectStore& store, const StoreUri& s3_output_path,
                        const std::string& job_name, const std::string& model_dir,
                        const std::string& output_data_dir, const std::string& compression,
                        const HostInfo& host, const std::string& scratch_dir);

}  // namespace trainfeed
