// A ByteSink that keeps everything it receives, for tests.
#pragma once

#include <string>

#include "store/object_store.h"

namespace trainfeed {

class StringSink final : public ByteSink {
 public:
  Status Begin(const GetResult& meta) override {
    ++begins;
    etag = meta.etag;
    return OkStatus();
  }
  Status Append(const char* data, size_t size) override {
    bytes.append(data, size);
    ++appends;
    return OkStatus();
  }
  std::string bytes;  // everything appended, in order
  std::string etag;   // from the last Begin()
  int begins = 0;
  int appends = 0;
};

}  // namespace trainfeed
