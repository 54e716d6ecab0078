// FaultInjectingObjectStore: wraps another store and makes chosen calls fail, for testing retry,
// resume and cleanup logic.
//
// Before each call a hook sees what is being called and decides: no fault (call through), fail
// with a Status without calling through, or, for Get, call through but let only the first N body
// bytes reach the caller's sink before failing (a connection reset mid-body). Example: fail the
// second GET of any object with a reset after 1000 bytes:
//
//   FaultInjectingObjectStore store(fake, [](const FaultContext& c) -> std::optional<Fault> {
//     if (c.method == StoreMethod::kGet && c.method_call_index == 1) {
//       return Fault::ErrorAfterBytes(1000, UnavailableError("connection reset"));
//     }
//     return std::nullopt;
//   });
//
// Thread-safe. Calls of the hook are serialized (a hook may keep plain state) under a lock, so a
// hook must not call back into this store; the wrapped store is called without any lock held.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/object_store.h"

namespace trainfeed {

enum class StoreMethod {
  kList,
  kHead,
  kGet,
  kPut,
  kDelete,
  kCreateMultipartUpload,
  kUploadPart,
  kCompleteMultipartUpload,
  kAbortMultipartUpload,
};
inline constexpr int kNumStoreMethods = 9;

// "List", "Get", ...
std::string_view StoreMethodName(StoreMethod method);

struct FaultContext {
  StoreMethod method = StoreMethod::kList;
  ObjectRef object;                // for List: the bucket, and the prefix as key
  std::optional<ByteRange> range;  // Get: the range asked for, if any
  int part_number = 0;             // UploadPart: the part
  uint64_t call_index = 0;         // 0-based position among all calls to this store
  uint64_t method_call_index = 0;  // 0-based position among calls of `method`
};

struct Fault {
  // What the call returns. OK is only meaningful with after_bytes (see ShortBody).
  Status status;
  // Get only: the wrapped Get runs, and this many body bytes reach the sink before `status` is
  // returned. If the body is shorter, all of it arrives and the call still fails.
  std::optional<uint64_t> after_bytes;

  // Fails the call without calling through.
  static Fault Error(Status status) { return Fault{std::move(status), std::nullopt}; }
  // Get: delivers `bytes` body bytes, then fails with `status`.
  static Fault ErrorAfterBytes(uint64_t bytes, Status status) {
    return Fault{std::move(status), bytes};
  }
  // Get: delivers `bytes` body bytes and reports success with GetResult::bytes == `bytes`: a
  // body cut short without any error, which the caller must notice by its length.
  static Fault ShortBody(uint64_t bytes) { return Fault{OkStatus(), bytes}; }
};

class FaultInjectingObjectStore final : public ObjectStore {
 public:
  // Returns the fault to inject into a call, or nullopt to call through.
  using Hook = std::function<std::optional<Fault>(const FaultContext&)>;

  // `target` must outlive this store. A null hook injects nothing.
  FaultInjectingObjectStore(ObjectStore& target, Hook hook);

  // Replaces the hook, e.g. to stop injecting faults half way through a test.
  void set_hook(Hook hook);
  // Calls made to this store so far, and how many of them got a fault.
  uint64_t calls() const;
  uint64_t faults_injected() const;

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
  // The target's; never faulted.
  std::string Describe(const ObjectRef& object) const override;

 private:
  // Numbers the call and asks the hook. A fault with an OK status and no after_bytes is ignored.
  std::optional<Fault> Consult(FaultContext context);

  ObjectStore& target_;
  mutable std::mutex mu_;
  Hook hook_;                                     // Guarded by mu_.
  uint64_t calls_ = 0;                            // Guarded by mu_.
  uint64_t method_calls_[kNumStoreMethods] = {};  // Guarded by mu_.
  uint64_t faults_ = 0;                           // Guarded by mu_.
};

}  // namespace trainfeed
