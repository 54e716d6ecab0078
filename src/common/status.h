// Status and Result<T>: how every layer below the CLI reports an expected failure.
//
// The code tells the caller what to do (retry, give up, fix input); the message names what and
// where. Each layer adds its context once (WithContext), so the CLI can print one line such as
// "NotFound: GET s3://bucket/key: NoSuchKey: The specified key does not exist".
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace trainfeed {

enum class ErrorCode {
  kOk = 0,
  kNotFound,            // 404 NoSuchKey / NoSuchBucket, missing file. Do not retry.
  kPermissionDenied,    // 401/403, EACCES. Do not retry; fix credentials or policy.
  kInvalidArgument,     // Bad flag, URI, key or input document.
  kUnavailable,         // 5xx, SlowDown, reset, timeout, short body. Retry this call.
  kPreconditionFailed,  // ETag changed under us (412). Restart higher up, never mix versions.
  kDataLoss,            // Received bytes disagree with the listing (length, checksum).
  kCancelled,           // Caller asked to stop (unmount, job exit, reader went away).
  kAlreadyExists,       // A local path is taken by something else.
  kResourceExhausted,   // Disk full, too many open files.
  kInternal,            // A bug or an unexpected system error.
};

std::string_view ErrorCodeName(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message reads "context: message". OK stays OK.
  Status WithContext(std::string_view context) const;
  // "NotFound: message", or "OK".
  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
inline Status NotFoundError(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
inline Status PermissionDeniedError(std::string m) {
  return {ErrorCode::kPermissionDenied, std::move(m)};
}
inline Status InvalidArgumentError(std::string m) {
  return {ErrorCode::kInvalidArgument, std::move(m)};
}
inline Status UnavailableError(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
inline Status PreconditionFailedError(std::string m) {
  return {ErrorCode::kPreconditionFailed, std::move(m)};
}
inline Status DataLossError(std::string m) { return {ErrorCode::kDataLoss, std::move(m)}; }
inline Status CancelledError(std::string m) { return {ErrorCode::kCancelled, std::move(m)}; }
inline Status AlreadyExistsError(std::string m) {
  return {ErrorCode::kAlreadyExists, std::move(m)};
}
inline Status InternalError(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

// Maps an errno from a failed system call to a Status naming the call and the path.
Status ErrnoToStatus(int err, std::string_view what);

// Result<T>: a value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: must not be OK

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace trainfeed

#define TF_CONCAT_INNER(a, b) a##b
#define TF_CONCAT(a, b) TF_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define TF_RETURN_IF_ERROR(expr)                        \
  do {                                                  \
    ::trainfeed::Status tf_status_ = (expr);            \
    if (!tf_status_.ok()) return tf_status_;            \
  } while (0)

// `lhs = value of expr` (a Result<T>), or returns its Status from the enclosing function.
#define TF_ASSIGN_OR_RETURN(lhs, expr) \
  TF_ASSIGN_OR_RETURN_IMPL(TF_CONCAT(tf_result_, __LINE__), lhs, expr)
#define TF_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
