#include "store/store_factory.h"

#include <cstdlib>
#include <spdlog/spdlog.h>

#include "store/local/local_object_store.h"
#include "store/s3/s3_object_store.h"

namespace trainfeed {

Result<S3Config> ResolveS3ConfigFromEnvironment(const S3Overrides& overrides) {
  auto getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  const char* home = std::getenv("HOME");
  return ResolveS3Config(overrides, getenv, home ? home : "");
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
    if (const char* ca = std::getenv("AWS_CA_BUNDLE")) s3.ca_bundle = ca;
    store = std::make_unique<S3ObjectStore>(std::move(s3));
  }
  return std::unique_ptr<ObjectStore>(
      std::make_unique<RetryingObjectStore>(std::move(store), options.retry));
}

}  // namespace trainfeed
