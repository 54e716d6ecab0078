// Retries, decided in one place.
//
// Only kUnavailable is retried (5xx, SlowDown, RequestTimeout, connection reset or timeout, a
// body shorter than Content-Length); every other code fails at once. Backoff is capped
// exponential with full jitter, as AWS recommends, so a 503 storm from many clients spreads out.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <random>

#include "common/clock.h"
#include "store/object_store.h"

namespace trainfeed {

struct RetryOptions {
  // Attempts per call, counting the first. A GET that made progress before failing starts a new
  // count (up to kMaxResumes), since a long transfer may meet several unrelated resets.
  int max_attempts = 8;
  // First backoff ceiling; doubles per attempt up to max_backoff. With 8 attempts the worst case
  // waits ~10 s in total: long enough to ride out a SlowDown burst, short enough that a wrong
  // endpoint fails within seconds.
  std::chrono::milliseconds initial_backoff{50};
  std::chrono::milliseconds max_backoff{5000};
};

bool IsRetryable(const Status& status);

// Wraps a store: every call is retried by the policy above, and a GET that fails mid-body
// resumes from the last byte its sink received, pinned to the ETag seen first (If-Match), so a
// retry can never splice two versions of an object together.
class RetryingObjectStore final : public ObjectStore {
 public:
  RetryingObjectStore(std::unique_ptr<ObjectStore> target, RetryOptions options,
                      Clock& clock = RealClock());

  Result<ListPage> List(const ListRequest& request) override;
  Result<ObjectInfo> Head(const ObjectRef& object) override;
  Result<GetResult> Get(const GetRequest& request, ByteSink& sink) override;
  Result<std::string> Put(const ObjectRef& object, std::string_view body) override;
  Status Delete(const ObjectRef& object) override;
  Result<std::string> CreateMultipartUpload(const ObjectRef& object) override;
  Result<std::string> UploadPart(const ObjectRef& object, const std::string& upload_id,
                                 int part_number, std::string_view body) override;
  Result<std::string> CompleteMultipartUpload(const ObjectRef& object,
                                              const std::string& upload_id,
                                              const std::vector<CompletedPart>& parts) override;
  Status AbortMultipartUpload(const ObjectRef& object, const std::string& upload_id) override;
  std::string Describe(const ObjectRef& object) const override;

  // Resumes allowed for one GET that keeps making progress.
  static constexpr int kMaxResumes = 100;

 private:
  // Calls `fn` until it succeeds, fails for good, or runs out of attempts.
  template <typename Fn>
  auto Retry(Fn&& fn) -> decltype(fn());
  void Backoff(int attempt);

  std::unique_ptr<ObjectStore> target_;
  RetryOptions options_;
  Clock& clock_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;  // Guarded by rng_mu_.
};

}  // namespace trainfeed
