// FakeObjectStore: an in-memory ObjectStore with the semantics of S3, for unit tests.
//
// Like S3: buckets exist only once created (CreateBucket), else NotFound "NoSuchBucket"; keys
// list in byte order, in pages of at most 1000 with opaque continuation tokens; a delimiter
// groups keys into common_prefixes; a range that begins at or past the end is InvalidArgument
// (InvalidRange) and its end is clamped; a stale if_match is PreconditionFailed; deleting a
// missing key succeeds; multipart parts below min_part_size (but the last) are EntityTooSmall.
// ETags are the hex of a 64-bit hash of the content, and "<hash of the part ETags>-<parts>" for
// multipart objects, as S3 does with MD5.
//
// Calls through the ObjectStore interface are counted per method, so tests can assert on the
// traffic ("a 64 MiB file in 8 MiB ranges is 8 GETs"); setup helpers are not counted.
//
// Thread-safe. Object bodies are immutable and shared, so Get never holds the lock while the sink
// runs, and a concurrent Put replaces the object without disturbing a Get in progress.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "store/object_store.h"

namespace trainfeed {

class FakeObjectStore final : public ObjectStore {
 public:
  // `clock` (not owned; may be null for system time) dates new objects.
  explicit FakeObjectStore(Clock* clock = nullptr);

  Result<ListPage> List(const ListRequest& request) override;
  Result<ObjectInfo> Head(const ObjectRef& object) override;
  Result<GetResult> Get(const GetRequest& request, ByteSink& sink) override;
  Result<std::string> Put(const ObjectRef& object, std::string_view body) override;
  Status Delete(const ObjectRef& object) override;
  Result<std::string> CreateMultipartUpload(const ObjectRef& object) override;
  Result<std::string> UploadPart(const ObjectRef& object, const std::string& upload_id,
                                 int part_number, std::string_view body) override;
  Result<std::string> CompleteMultipartUpload(const ObjectRef& object, const std::string& upload_id,
                                              const std::vector<CompletedPart>& parts) override;
  Status AbortMultipartUpload(const ObjectRef& object, const std::string& upload_id) override;
  // "mem://bucket/key".
  std::string Describe(const ObjectRef& object) const override;

  // --- Setup and inspection; not counted as calls. ---

  // Creates an empty bucket; no-op if it exists.
  void CreateBucket(const std::string& bucket);
  // Stores `size` bytes where byte i is (seed + i) % 251 and returns the ETag. 251 is prime, so
  // a chunk delivered at the wrong offset differs from the expected bytes. NotFound if the bucket
  // does not exist.
  Result<std::string> PutRamp(const std::string& bucket, const std::string& key, uint64_t size,
                              uint64_t seed = 0);
  // Bytes [begin, end) of a PutRamp object with `seed`: what a correct reader must produce.
  static std::string RampBytes(uint64_t seed, uint64_t begin, uint64_t end);
  // The whole body of an object; NotFound if absent.
  Result<std::string> Contents(const ObjectRef& object) const;
  // Multipart uploads created but neither completed nor aborted.
  size_t pending_uploads() const;

  // Every multipart part but the last must have at least this many bytes (S3: 5 MiB). Lower it
  // to test upload logic with small parts.
  void set_min_part_size(uint64_t bytes) { min_part_size_ = bytes; }
  // Get hands the body to the sink in pieces of this many bytes (default 1 MiB).
  void set_get_chunk_size(size_t bytes) { get_chunk_size_ = bytes == 0 ? 1 : bytes; }

  // --- Calls made through the ObjectStore interface, failed ones included. ---
  int64_t list_calls() const { return list_calls_; }
  int64_t head_calls() const { return head_calls_; }
  int64_t get_calls() const { return get_calls_; }
  int64_t put_calls() const { return put_calls_; }
  int64_t delete_calls() const { return delete_calls_; }
  int64_t create_multipart_calls() const { return create_multipart_calls_; }
  int64_t upload_part_calls() const { return upload_part_calls_; }
  int64_t complete_multipart_calls() const { return complete_multipart_calls_; }
  int64_t abort_multipart_calls() const { return abort_multipart_calls_; }
  // Body bytes handed to Get sinks, over all calls.
  int64_t get_bytes() const { return get_bytes_; }
  void ResetCounters();

 private:
  struct Object {
    std::shared_ptr<const std::string> data;  // immutable once stored
    std::string etag;
    std::chrono::system_clock::time_point last_modified;
  };
  struct Part {
    std::shared_ptr<const std::string> data;
    std::string etag;
  };
  struct Upload {
    std::string bucket;
    std::string key;
    std::map<int, Part> parts;
  };
  using Bucket = std::map<std::string, Object>;  // std::string orders by unsigned bytes, as S3

  std::chrono::system_clock::time_point Now() const;
  // Stores an object; NotFound if the bucket does not exist.
  Result<std::string> Store(const ObjectRef& object, std::shared_ptr<const std::string> data,
                            std::string etag);

  Clock* const clock_;
  std::atomic<uint64_t> min_part_size_{uint64_t{5} << 20};
  std::atomic<size_t> get_chunk_size_{size_t{1} << 20};

  mutable std::mutex mu_;
  std::map<std::string, Bucket> buckets_;  // Guarded by mu_.
  std::map<std::string, Upload> uploads_;  // Guarded by mu_. By upload id.
  uint64_t next_upload_id_ = 1;            // Guarded by mu_.

  std::atomic<int64_t> list_calls_{0};
  std::atomic<int64_t> head_calls_{0};
  std::atomic<int64_t> get_calls_{0};
  std::atomic<int64_t> put_calls_{0};
  std::atomic<int64_t> delete_calls_{0};
  std::atomic<int64_t> create_multipart_calls_{0};
  std::atomic<int64_t> upload_part_calls_{0};
  std::atomic<int64_t> complete_multipart_calls_{0};
  std::atomic<int64_t> abort_multipart_calls_{0};
  std::atomic<int64_t> get_bytes_{0};
};

}  // namespace trainfeed
