// S3ObjectStore: the ObjectStore of any S3-compatible server (AWS S3, MinIO, Ceph RGW, ...), over
// libcurl with hand-written SigV4 signing. The only code that knows HTTP.
//
// Each call borrows an easy handle from a pool, so connections are reused across calls and
// threads without a lock held during I/O. GET bodies are streamed straight into the caller's sink;
// nothing is buffered beyond libcurl's receive buffer. Retries are NOT done here: wrap the store in
// a RetryingObjectStore. Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/object_store.h"
#include "store/s3/aws_config.h"

namespace trainfeed {

struct S3StoreOptions {
  S3Config config;
  // A connection that cannot be set up in this long is an Unavailable error (retried above).
  long connect_timeout_ms = 10'000;
  // A transfer that receives nothing for this long is stalled: abort and let the retry resume it.
  long stall_timeout_s = 60;
  // libcurl's receive buffer per connection. Larger buffers mean fewer write calls per GiB.
  long receive_buffer_bytes = 256 << 10;
  // Extra CA bundle (AWS_CA_BUNDLE); "" uses the system default.
  std::string ca_bundle;
};

class S3ObjectStore final : public ObjectStore {
 public:
  explicit S3ObjectStore(S3StoreOptions options);
  ~S3ObjectStore() override;

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

  // Creates a bucket (tests and benchmarks); AlreadyExists if it is there and ours.
  Status CreateBucket(const std::string& bucket);

  struct Call;      // one HTTP exchange (defined in the .cc)
  struct Response;  // its outcome

 private:
  Response Execute(Call& call);
  void* AcquireHandle();
  void ReleaseHandle(void* handle);

  S3StoreOptions options_;
  std::string scheme_;     // "http" or "https"
  std::string authority_;  // host[:port] of the endpoint
  std::mutex pool_mu_;
  std::vector<void*> idle_handles_;  // CURL*; Guarded by pool_mu_.
};

}  // namespace trainfeed
