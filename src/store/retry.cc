#include "store/retry.h"

#include <algorithm>
#include <spdlog/spdlog.h>

namespace trainfeed {

bool IsRetryable(const Status& status) { return status.code() == ErrorCode::kUnavailable; }

RetryingObjectStore::RetryingObjectStore(std::unique_ptr<ObjectStore> target,
                                         RetryOptions options, Clock& clock)
    : target_(std::move(target)), options_(options), clock_(clock), rng_(std::random_device{}()) {}

void RetryingObjectStore::Backoff(int attempt) {
  auto ceiling = options_.initial_backoff;
  for (int i = 1; i < attempt && ceiling < options_.max_backoff; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, options_.max_backoff);
  int64_t sleep_ms;
  {
    std::lock_guard<std::mutex> lock(rng_mu_);
    sleep_ms = std::uniform_int_distribution<int64_t>(0, ceiling.count())(rng_);
  }
  clock_.SleepFor(std::chrono::milliseconds(sleep_ms));
}

namespace {
const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) { return r.status(); }
}  // namespace

template <typename Fn>
auto RetryingObjectStore::Retry(Fn&& fn) -> decltype(fn()) {
  for (int attempt = 1;; ++attempt) {
    auto result = fn();
    const Status& s = StatusOf(result);
    if (s.ok() || !IsRetryable(s)) return result;
    if (attempt >= options_.max_attempts) {
      return Status(s.code(), s.message() + " (gave up after " + std::to_string(attempt) +
                                  " attempts)");
    }
    spdlog::debug("retrying after attempt {}: {}", attempt, s.ToString());
    Backoff(attempt);
  }
}

Result<ListPage> RetryingObjectStore::List(const ListRequest& request) {
  return Retry([&] { return target_->List(request); });
}

Result<ObjectInfo> RetryingObjectStore::Head(const ObjectRef& object) {
  return Retry([&] { return target_->Head(object); });
}

namespace {

// Counts what reaches the caller's sink and remembers the first response's identity, so a
// retry knows where to resume and which version to insist on.
class ResumeTrackingSink final : public ByteSink {
 public:
  explicit ResumeTrackingSink(ByteSink& inner) : inner_(inner) {}
  Status Begin(const GetResult& meta) override {
    if (started_) {
      // A resumed request: the If-Match we sent guarantees the same ETag; the size must agree.
      if (meta.object_size != first_.object_size) {
        return DataLossError("object size changed from " + std::to_string(first_.object_size) +
                             " to " + std::to_string(meta.object_size) + " between attempts");
      }
      return OkStatus();
    }
    started_ = true;
    first_ = meta;
    return inner_.Begin(meta);
  }
  Status Append(const char* data, size_t size) override {
    Status s = inner_.Append(data, size);
    if (s.ok()) delivered_ += size;
    else sink_failed_ = true;
    return s;
  }
  bool started_ = false;
  bool sink_failed_ = false;
  GetResult first_{};
  uint64_t delivered_ = 0;

 private:
  ByteSink& inner_;
};

}  // namespace

Result<GetResult> RetryingObjectStore::Get(const GetRequest& request, ByteSink& sink) {
  ResumeTrackingSink tracker(sink);
  GetRequest attempt_request = request;
  int attempt = 1;
  int resumes = 0;
  uint64_t delivered_before_attempt = 0;
  for (;;) {
    Result<GetResult> r = target_->Get(attempt_request, tracker);
    if (r.ok()) {
      GetResult total = *r;
      total.bytes = tracker.delivered_;
      if (tracker.started_) {
        total.etag = tracker.first_.etag;
        total.object_size = tracker.first_.object_size;
      }
      return total;
    }
    const Status& s = r.status();
    if (!IsRetryable(s) || tracker.sink_failed_) return s;
    bool progressed = tracker.delivered_ > delivered_before_attempt;
    if (progressed && resumes < kMaxResumes) {
      ++resumes;
      attempt = 1;  // progress was made: this is a new failure, not the same one again
    } else if (attempt >= options_.max_attempts) {
      return Status(s.code(), s.message() + " (gave up after " + std::to_string(attempt) +
                                  " attempts)");
    } else {
      ++attempt;
    }
    delivered_before_attempt = tracker.delivered_;
    if (tracker.started_) {
      uint64_t begin = (request.range ? request.range->begin : 0) + tracker.delivered_;
      uint64_t end = request.range ? std::min(request.range->end, tracker.first_.object_size)
                                   : tracker.first_.object_size;
      if (begin >= end) {  // every byte arrived; only the end of the exchange failed
        return GetResult{tracker.first_.etag, tracker.first_.object_size, tracker.delivered_};
      }
      attempt_request.range = ByteRange{begin, end};
      attempt_request.if_match = tracker.first_.etag;
    }
    spdlog::debug("retrying GET {} at byte {}: {}", target_->Describe(request.object),
                  tracker.delivered_, s.ToString());
    Backoff(attempt);
  }
}

Result<std::string> RetryingObjectStore::Put(const ObjectRef& object, std::string_view body) {
  return Retry([&] { return target_->Put(object, body); });
}

Status RetryingObjectStore::Delete(const ObjectRef& object) {
  return Retry([&] { return target_->Delete(object); });
}

Result<std::string> RetryingObjectStore::CreateMultipartUpload(const ObjectRef& object) {
  return Retry([&] { return target_->CreateMultipartUpload(object); });
}

Result<std::string> RetryingObjectStore::UploadPart(const ObjectRef& object,
                                                    const std::string& upload_id,
                                                    int part_number, std::string_view body) {
  return Retry([&] { return target_->UploadPart(object, upload_id, part_number, body); });
}

Result<std::string> RetryingObjectStore::CompleteMultipartUpload(
    const ObjectRef& object, const std::string& upload_id,
    const std::vector<CompletedPart>& parts) {
  return Retry([&] { return target_->CompleteMultipartUpload(object, upload_id, parts); });
}

Status RetryingObjectStore::AbortMultipartUpload(const ObjectRef& object,
                                                 const std::string& upload_id) {
  return Retry([&] { return target_->AbortMultipartUpload(object, upload_id); });
}

std::string RetryingObjectStore::Describe(const ObjectRef& object) const {
  return target_->Describe(object);
}

}  // namespace trainfeed
