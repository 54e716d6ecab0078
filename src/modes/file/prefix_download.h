// File mode for an S3Prefix: list the prefix page by page and feed the Downloader as the listing
// streams in, so the first bytes arrive before the listing of a large dataset is complete and
// memory stays flat. Local names follow SageMaker's File-mode rule (dataset/local_names.h).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "store/object_store.h"
#include "store/store_uri.h"
#include "transfer/downloader.h"

namespace trainfeed {

struct PrefixDownloadOptions {
  DownloadOptions download;
  // Which listed objects this host takes, by their index among the objects (folder markers
  // excluded) in listing order. Unset: all of them.
  std::function<bool(uint64_t index, const ObjectInfo& object)> select;
  // Called every ~second with live counters, and once at the end (final = true).
  std::function<void(const DownloadProgress&, bool final)> on_progress;
  // When set and it turns true (e.g. from a SIGINT handler), the download stops: in-flight
  // transfers end, temporary files are removed, and the report's `fatal` says Cancelled.
  const std::atomic<bool>* cancel = nullptr;
};

// Downloads every object under `source` into `destination_dir`. The report lists per-object
// failures; `fatal` is set when the listing itself failed (missing bucket, bad credentials) or
// when the prefix matched no object at all.
DownloadReport DownloadPrefix(ObjectStore& store, const StoreUri& source,
                              const std::string& destination_dir,
                              const PrefixDownloadOptions& options);

}  // namespace trainfeed
