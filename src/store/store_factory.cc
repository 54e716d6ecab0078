#include "store/store_factory.h"

#include <spdlog/spdlog.h>

#include "store/local/local_object_store.h"
#include "store/s3/s3_object_store.h"

namespace trainfeed {

Result<S3Config> ResolveS3ConfigFromEnvironment(const S3Overrides& overrides) {
  return ResolveS3Config(overrides, ProcessEnv, ProcessEnv("HOME").value_or(""));
}

Result<std::unique_ptr<ObjectStore>> OpenObjectStore(const StoreUri& uri,
                                                     const StoreOpenOptions& options) {
  std::unique_ptr<ObjectStore> store;
  if (uri.scheme == StoreUri::Scheme::kFile) {
    store = std::make_unique<LocalObjectStore>();
  } else {
    TF_ASSIGN_OR_RETURN(S3Config config, ResolveS3ConfigFromEnvironment(options.s3));
    spdlog::debug("S3 settings: {}", config.DebugString());
    S3StoreOptions s3;
    s3.config = std::move(config);
    s3.ca_bundle = ProcessEnv("AWS_CA_BUNDLE").value_or("");
    store = std::make_unique<S3ObjectStore>(std::move(s3));
  }
  return std::unique_ptr<ObjectStore>(
      std::make_unique<RetryingObjectStore>(std::move(store), options.retry));
}

}  // namespace trainfeed
