#include "store/whole_object.h"

namespace trainfeed {

namespace {

class StringSink final : public ByteSink {
 public:
  StringSink(std::string& out, uint64_t max) : out_(out), max_(max) {}
  Status Append(const char* data, size_t size) override {
    if (out_.size() + size > max_) {
      return InvalidArgumentError("larger than " + std::to_string(max_) + " bytes");
    }
    out_.append(data, size);
    return OkStatus();
  }

 private:
  std::string& out_;
  uint64_t max_;
};

}  // namespace

Result<std::string> GetWholeObject(ObjectStore& store, const GetRequest& request,
                                   uint64_t max_bytes) {
  std::string body;
  StringSink sink(body, max_bytes);
  TF_ASSIGN_OR_RETURN(GetResult got, store.Get(request, sink));
  (void)got;
  return body;
}

}  // namespace trainfeed
