// File mode: materialise a channel on local disk before training starts.
//
// DownloadPrefix lists an S3Prefix page by page and feeds the Downloader as the listing streams
// in, so the first bytes arrive before the listing of a large dataset is complete and memory
// stays flat. DownloadItems takes an already chosen list (manifests, sharded or shuffled
// channels). Local names follow SageMaker's File-mode rule (dataset/local_names.h).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "store/object_store.h"
#include "store/store_uri.h"
#include "transfer/downloader.h"

namespace trainfeed {

struct FileModeOptions {
  DownloadOptions download;
  // Called every ~200 ms with live counters, and once at the end (final = true).
  std::function<void(const DownloadProgress&, bool final)> on_progress;
  // When set and it turns true (e.g. from a SIGINT handler), the download stops: in-flight
  // transfers end, temporary files are removed, and the report's `fatal` says Cancelled.
  const std::atomic<bool>* cancel = nullptr;
};

// Downloads every object under `source` into `destination_dir`. The report lists per-object
// failures; `fatal` is set when the listing itself failed (missing bucket, bad credentials) or
// when the prefix matched no object at all.
DownloadReport DownloadPrefix(ObjectStore& store, const StoreUri& source,
                              const std::string& destination_dir, const FileModeOptions& options);

// Downloads the given items (relative paths already checked) into `destination_dir`.
DownloadReport DownloadItems(ObjectStore& store, std::vector<DownloadItem> items,
                             const std::string& destination_dir, const FileModeOptions& options);

// The listing of a prefix, a page at a time, folder markers left out.
class PrefixPages {
 public:
  // `first_page_keys`: at most this many keys in the first page (later pages: the store's 1,000),
  // for callers that act on the first page at once.
  PrefixPages(ObjectStore& store, const StoreUri& source, int first_page_keys = 1000);
  // False once the last page was returned.
  bool more() const { return more_; }
  // The next page's objects (possibly none: a page of folder markers). REQUIRES: more().
  Result<std::vector<ObjectInfo>> Next();

 private:
  ObjectStore* store_;
  ListRequest request_;
  bool more_ = true;
};

// Every object under `source` in listing order, folder markers left out.
Result<std::vector<ObjectInfo>> ListPrefix(ObjectStore& store, const StoreUri& source);

}  // namespace trainfeed
