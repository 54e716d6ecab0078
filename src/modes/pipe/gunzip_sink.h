// GunzipSink: inflates a gzip stream on its way from a GET to the next sink, for Pipe mode's
// CompressionType=Gzip (contract §3.4: objects arrive decompressed in the FIFO).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "store/object_store.h"

namespace trainfeed {

// A ByteSink that inflates gzip data (zlib, multi-member files like gunzip) into `out`, in chunks
// of up to kGunzipChunkBytes. Whatever an Append() call inflates reaches `out` before it returns,
// so the reader of a slow stream is never kept waiting on a half-full buffer.
//
// Stricter than gunzip about what follows a member: anything but another gzip member is an
// error, so a corrupt object never streams silently cut short. Begin() is not forwarded: its
// sizes describe the compressed object. Errors are sticky (every later call returns the first).
// Not thread-safe; one instance per object.
class GunzipSink final : public ByteSink {
 public:
  // Output chunk size: a few pipe buffers' worth, so the FIFO writer sees large writes.
  static constexpr size_t kGunzipChunkBytes = 256 * 1024;

  // `what` names the object in errors ("s3://b/k").
  GunzipSink(ByteSink& out, std::string what);
  ~GunzipSink() override;
  GunzipSink(const GunzipSink&) = delete;
  GunzipSink& operator=(const GunzipSink&) = delete;

  // InvalidArgument "WHAT: not gzip data" when the stream (or the data after a member) does not
  // start like a gzip member; DataLoss "WHAT: corrupt gzip data (zlib's message)" when inflating
  // fails; errors of `out` as they are.
  Status Append(const char* data, size_t size) override;
  // OK once the input ended exactly after a complete member; DataLoss "WHAT: truncated gzip data"
  // otherwise (also for no input at all).
  Status Finish();

  uint64_t bytes_in() const { return bytes_in_; }    // compressed bytes accepted
  uint64_t bytes_out() const { return bytes_out_; }  // inflated bytes passed to `out`

 private:
  struct Inflater;  // zlib's state, kept out of this header

  Status Fail(Status status);

  ByteSink& out_;
  std::string what_;
  std::unique_ptr<Inflater> z_;
  std::unique_ptr<char[]> buffer_;  // kGunzipChunkBytes
  uint64_t member_in_ = 0;          // bytes of the current member fed to zlib so far
  uint64_t members_ = 0;            // members completed
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  Status error_;  // the first error; returned by every later call
};

}  // namespace trainfeed
