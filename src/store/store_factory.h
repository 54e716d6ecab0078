// Opens the store a URI names: S3ObjectStore for s3://, LocalObjectStore for file://, both behind
// the retry policy. The only place that reads the process environment for store settings.
#pragma once

#include <memory>

#include "store/object_store.h"
#include "store/retry.h"
#include "store/s3/aws_config.h"
#include "store/store_uri.h"

namespace trainfeed {

struct StoreOpenOptions {
  S3Overrides s3;  // --endpoint-url, --region, --profile, --no-sign-request
  RetryOptions retry;
};

// Resolves S3 settings from this process's environment and ~/.aws files, plus the overrides.
Result<S3Config> ResolveS3ConfigFromEnvironment(const S3Overrides& overrides);

// Result holds a ready store; for s3:// the endpoint, region and credentials are resolved like the
// aws cli does (see aws_config.h). Errors name what is missing (no credentials, bad profile).
Result<std::unique_ptr<ObjectStore>> OpenObjectStore(const StoreUri& uri,
                                                     const StoreOpenOptions& options);

}  // namespace trainfeed
