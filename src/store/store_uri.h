// Parsing of the URIs users give: s3://bucket/prefix and file:///path (or file://relative/path).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "store/object_store.h"

namespace trainfeed {

struct StoreUri {
  enum class Scheme { kS3, kFile };
  Scheme scheme = Scheme::kFile;
  std::string bucket;  // S3 only
  // S3: the key or key prefix. file://: the absolute path without its leading '/', so that the
  // local store, rooted at '/', uses exactly the same raw-prefix rules as S3.
  std::string key;

  ObjectRef ref() const { return {bucket, key}; }
  std::string ToString() const;  // canonical form, for messages
};

// Accepts s3://bucket[/key], file:///abs/path and file://rel/path (resolved against the current
// directory). InvalidArgument names the URI and what is wrong with it.
Result<StoreUri> ParseStoreUri(std::string_view uri);

}  // namespace trainfeed
