#include "store/testing/fault_injecting_object_store.h"

#include <algorithm>
#include <utility>

namespace trainfeed {
namespace {

// Passes the first `limit` bytes to `inner`. Past the limit it either fails the transfer with
// `status` or, for a silently short body (OK status), swallows the rest.
class LimitingSink : public ByteSink {
 public:
  LimitingSink(ByteSink& inner, uint64_t limit, Status status)
      : inner_(inner), limit_(limit), status_(std::move(status)) {}

  Status Begin(const GetResult& meta) override { return inner_.Begin(meta); }
  Status Append(const char* data, size_t size) override {
    uint64_t room = limit_ - delivered_;
    size_t pass = static_cast<size_t>(std::min<uint64_t>(room, size));
    if (pass > 0) {
      TF_RETURN_IF_ERROR(inner_.Append(data, pass));
      delivered_ += pass;
    }
    if (pass == size) return OkStatus();
    if (status_.ok()) return OkStatus();  // swallow
    cut_ = true;
    return status_;
  }

  uint64_t delivered() const { return delivered_; }
  bool cut() const { return cut_; }

 private:
  ByteSink& inner_;
  const uint64_t limit_;
  const Status status_;
  uint64_t delivered_ = 0;
  bool cut_ = false;  // we, not the inner sink or the target, ended the transfer
};

FaultContext ContextFor(StoreMethod method, const ObjectRef& object) {
  FaultContext context;
  context.method = method;
  context.object = object;
  return context;
}

}  // namespace

std::string_view StoreMethodName(StoreMethod method) {
  switch (method) {
    case StoreMethod::kList:
      return "List";
    case StoreMethod::kHead:
      return "Head";
    case StoreMethod::kGet:
      return "Get";
    case StoreMethod::kPut:
      return "Put";
    case StoreMethod::kDelete:
      return "Delete";
    case StoreMethod::kCreateMultipartUpload:
      return "CreateMultipartUpload";
    case StoreMethod::kUploadPart:
      return "UploadPart";
    case StoreMethod::kCompleteMultipartUpload:
      return "CompleteMultipartUpload";
    case StoreMethod::kAbortMultipartUpload:
      return "AbortMultipartUpload";
  }
  return "Unknown";
}

FaultInjectingObjectStore::FaultInjectingObjectStore(ObjectStore& target, Hook hook)
    : target_(target), hook_(std::move(hook)) {}

void FaultInjectingObjectStore::set_hook(Hook hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hook_ = std::move(hook);
}

uint64_t FaultInjectingObjectStore::calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

uint64_t FaultInjectingObjectStore::faults_injected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return faults_;
}

std::optional<Fault> FaultInjectingObjectStore::Consult(FaultContext context) {
  std::lock_guard<std::mutex> lock(mu_);
  context.call_index = calls_++;
  context.method_call_index = method_calls_[static_cast<int>(context.method)]++;
  if (!hook_) return std::nullopt;
  std::optional<Fault> fault = hook_(context);
  if (!fault) return std::nullopt;
  // Only Get can honour after_bytes; elsewhere an OK status is no fault at all.
  bool partial_get = context.method == StoreMethod::kGet && fault->after_bytes.has_value();
  if (fault->status.ok() && !partial_get) return std::nullopt;
  if (!partial_get) fault->after_bytes.reset();
  ++faults_;
  return fault;
}

Result<ListPage> FaultInjectingObjectStore::List(const ListRequest& request) {
  if (auto fault = Consult(ContextFor(StoreMethod::kList, {request.bucket, request.prefix}))) {
    return fault->status;
  }
  return target_.List(request);
}

Result<ObjectInfo> FaultInjectingObjectStore::Head(const ObjectRef& object) {
  if (auto fault = Consult(ContextFor(StoreMethod::kHead, object))) return fault->status;
  return target_.Head(object);
}

Result<GetResult> FaultInjectingObjectStore::Get(const GetRequest& request, ByteSink& sink) {
  FaultContext context = ContextFor(StoreMethod::kGet, request.object);
  context.range = request.range;
  std::optional<Fault> fault = Consult(std::move(context));
  if (!fault) return target_.Get(request, sink);
  if (!fault->after_bytes) return fault->status;
  LimitingSink limited(sink, *fault->after_bytes, fault->status);
  Result<GetResult> result = target_.Get(request, limited);
  if (!fault->status.ok()) {
    // The caller's own sink error, or a real failure before the cut, wins over the fault.
    if (!result.ok() && !limited.cut()) return result.status();
    return fault->status;  // cut mid-body, or a body short enough to end first
  }
  if (!result.ok()) return result.status();
  GetResult short_result = *result;
  short_result.bytes = limited.delivered();
  return short_result;
}

Result<std::string> FaultInjectingObjectStore::Put(const ObjectRef& object, std::string_view body) {
  if (auto fault = Consult(ContextFor(StoreMethod::kPut, object))) return fault->status;
  return target_.Put(object, body);
}

Status FaultInjectingObjectStore::Delete(const ObjectRef& object) {
  if (auto fault = Consult(ContextFor(StoreMethod::kDelete, object))) return fault->status;
  return target_.Delete(object);
}

Result<std::string> FaultInjectingObjectStore::CreateMultipartUpload(const ObjectRef& object) {
  if (auto fault = Consult(ContextFor(StoreMethod::kCreateMultipartUpload, object))) {
    return fault->status;
  }
  return target_.CreateMultipartUpload(object);
}

Result<std::string> FaultInjectingObjectStore::UploadPart(const ObjectRef& object,
                                                          const std::string& upload_id,
                                                          int part_number, std::string_view body) {
  FaultContext context = ContextFor(StoreMethod::kUploadPart, object);
  context.part_number = part_number;
  if (auto fault = Consult(std::move(context))) return fault->status;
  return target_.UploadPart(object, upload_id, part_number, body);
}

Result<std::string> FaultInjectingObjectStore::CompleteMultipartUpload(
    const ObjectRef& object, const std::string& upload_id,
    const std::vector<CompletedPart>& parts) {
  if (auto fault = Consult(ContextFor(StoreMethod::kCompleteMultipartUpload, object))) {
    return fault->status;
  }
  return target_.CompleteMultipartUpload(object, upload_id, parts);
}

Status FaultInjectingObjectStore::AbortMultipartUpload(const ObjectRef& object,
                                                       const std::string& upload_id) {
  if (auto fault = Consult(ContextFor(StoreMethod::kAbortMultipartUpload, object))) {
    return fault->status;
  }
  return target_.AbortMultipartUpload(object, upload_id);
}

std::string FaultInjectingObjectStore::Describe(const ObjectRef& object) const {
  return target_.Describe(object);
}

}  // namespace trainfeed
