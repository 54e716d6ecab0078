#include "common/status.h"

#include <cerrno>
#include <cstring>

namespace trainfeed {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "OK";
    case ErrorCode::kNotFound: return "NotFound";
    case ErrorCode::kPermissionDenied: return "PermissionDenied";
    case ErrorCode::kInvalidArgument: return "InvalidArgument";
    case ErrorCode::kUnavailable: return "Unavailable";
    case ErrorCode::kPreconditionFailed: return "PreconditionFailed";
    case ErrorCode::kDataLoss: return "DataLoss";
    case ErrorCode::kCancelled: return "Cancelled";
    case ErrorCode::kAlreadyExists: return "AlreadyExists";
    case ErrorCode::kResourceExhausted: return "ResourceExhausted";
    case ErrorCode::kInternal: return "Internal";
  }
  return "Unknown";
}

Status Status::WithContext(std::string_view context) const {
  if (ok() || context.empty()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m));
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(ErrorCodeName(code_));
  s += ": ";
  s += message_;
  return s;
}

Status ErrnoToStatus(int err, std::string_view what) {
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  switch (err) {
    case ENOENT: case ENOTDIR: return NotFoundError(std::move(m));
    case EACCES: case EPERM: case EROFS: return PermissionDeniedError(std::move(m));
    case EEXIST: case EISDIR: return AlreadyExistsError(std::move(m));
    case ENOSPC: case EDQUOT: case EMFILE: case ENFILE: case ENOMEM:
      return Status(ErrorCode::kResourceExhausted, std::move(m));
    case ENAMETOOLONG: case EINVAL: return InvalidArgumentError(std::move(m));
    case EPIPE: return CancelledError(std::move(m));
    case EINTR: case EAGAIN: case ETIMEDOUT: case ECONNRESET: case ECONNREFUSED: case EIO:
      return UnavailableError(std::move(m));
    default: return InternalError(std::move(m));
  }
}

}  // namespace trainfeed
