// The object-store seam: the only way code above store/ reads or writes objects.
//
// Implementations: S3ObjectStore (libcurl + SigV4, any S3-compatible server), LocalObjectStore
// (file://, a directory tree), RetryingObjectStore (wraps another and owns the retry policy), and
// in tests FakeObjectStore / FaultInjectingObjectStore. All share one set of semantics:
//   - a prefix is a raw key prefix ("train" matches "train/x" and "train-01.csv");
//   - listings come in ascending UTF-8 byte order of keys, in pages;
//   - errors use the same codes (NotFound for a missing bucket or key, PreconditionFailed when an
//     If-Match ETag no longer matches, Unavailable for anything worth retrying).
// Every method is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace trainfeed {

struct ObjectRef {
  std::string bucket;  // empty for file:// stores
  std::string key;
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // opaque, quotes stripped; compared for equality only
  std::chrono::system_clock::time_point last_modified{};
};

struct ListRequest {
  std::string bucket;
  std::string prefix;
  std::string delimiter;           // "" lists recursively; "/" groups into common_prefixes
  std::string continuation_token;  // from the previous page; "" for the first
  std::string start_after;         // only keys strictly after this one (first page only)
  int max_keys = 1000;
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  std::string next_continuation_token;  // "" on the last page
};

// Half-open byte range [begin, end).
struct ByteRange {
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t size() const { return end - begin; }
};

struct GetRequest {
  ObjectRef object;
  std::optional<ByteRange> range;  // whole object when unset; must be non-empty when set
  std::string if_match;            // ETag the object must still have; "" for any
};

struct GetResult {
  std::string etag;      // of the object that was read
  uint64_t object_size;  // whole object, not the range
  uint64_t bytes = 0;    // bytes delivered to the sink by this call
};

// Receives a GET body in order. A non-OK status aborts the transfer and is returned by Get().
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  // Called once per successful response, before its first byte (also for an empty body), with
  // the object's ETag and full size (`bytes` is 0). Lets the receiver check identity early.
  virtual Status Begin(const GetResult& meta) {
    (void)meta;
    return OkStatus();
  }
  virtual Status Append(const char* data, size_t size) = 0;
};

struct CompletedPart {
  int part_number = 0;  // 1-based
  std::string etag;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // One page of keys under request.prefix. NotFound if the bucket does not exist.
  virtual Result<ListPage> List(const ListRequest& request) = 0;
  virtual Result<ObjectInfo> Head(const ObjectRef& object) = 0;
  // Streams the requested bytes into `sink`, in order. On failure some bytes may already have
  // been delivered: GetResult is lost but the caller's sink knows how many (resume from there).
  virtual Result<GetResult> Get(const GetRequest& request, ByteSink& sink) = 0;
  // Writes a whole object in one request; returns its ETag.
  virtual Result<std::string> Put(const ObjectRef& object, std::string_view body) = 0;
  virtual Status Delete(const ObjectRef& object) = 0;

  // Multipart upload: parts of >= 5 MiB (but the last), numbered from 1, completed in order.
  virtual Result<std::string> CreateMultipartUpload(const ObjectRef& object) = 0;
  virtual Result<std::string> UploadPart(const ObjectRef& object, const std::string& upload_id,
                                         int part_number, std::string_view body) = 0;
  virtual Result<std::string> CompleteMultipartUpload(const ObjectRef& object,
                                                      const std::string& upload_id,
                                                      const std::vector<CompletedPart>& parts) = 0;
  virtual Status AbortMultipartUpload(const ObjectRef& object, const std::string& upload_id) = 0;

  // "s3://bucket/key" or "file:///path": how messages name an object of this store.
  virtual std::string Describe(const ObjectRef& object) const = 0;
};

}  // namespace trainfeed
