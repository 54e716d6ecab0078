#include "modes/pipe/gunzip_sink.h"

#include <zlib.h>

#include <algorithm>
#include <climits>

namespace trainfeed {

struct GunzipSink::Inflater {
  z_stream zs{};
  bool ready = false;
};

GunzipSink::GunzipSink(ByteSink& out, std::string what)
    : out_(out),
      what_(std::move(what)),
      z_(std::make_unique<Inflater>()),
      buffer_(new char[kGunzipChunkBytes]) {
  // 16 + 15: gzip wrapper only (a zlib or raw deflate stream is not gzip data), largest window.
  int rc = inflateInit2(&z_->zs, 16 + MAX_WBITS);
  if (rc == Z_OK) {
    z_->ready = true;
  } else {
    error_ = Status(rc == Z_MEM_ERROR ? ErrorCode::kResourceExhausted : ErrorCode::kInternal,
                    what_ + ": cannot start gzip decompression (zlib error " + std::to_string(rc) +
                        ")");
  }
}

GunzipSink::~GunzipSink() {
  if (z_->ready) inflateEnd(&z_->zs);
}

Status GunzipSink::Fail(Status status) {
  error_ = std::move(status);
  return error_;
}

Status GunzipSink::Append(const char* data, size_t size) {
  if (!error_.ok()) return error_;
  z_stream& zs = z_->zs;
  const auto* in = reinterpret_cast<const unsigned char*>(data);
  size_t left = size;
  size_t pending = 0;  // inflated bytes in buffer_ not yet passed on
  for (;;) {
    // Every member starts with 1F 8B. Checked here, not left to zlib, so that data which is not
    // gzip at all gets a plain message, and so that what follows a member cannot be anything else.
    for (size_t i = 0; member_in_ + i < 2 && i < left; ++i) {
      static constexpr unsigned char kGzipMagic[2] = {0x1F, 0x8B};
      if (in[i] != kGzipMagic[member_in_ + i]) {
        if (members_ == 0) return Fail(InvalidArgumentError(what_ + ": not gzip data"));
        // The members before the garbage passed their CRC: deliver them first.
        if (pending > 0) {
          bytes_out_ += pending;
          Status s = out_.Append(buffer_.get(), pending);
          if (!s.ok()) return Fail(std::move(s));
        }
        return Fail(DataLossError(what_ + ": corrupt gzip data (trailing garbage at byte " +
                                  std::to_string(bytes_in_ + i) + ")"));
      }
    }
    uInt offered = static_cast<uInt>(std::min<size_t>(left, UINT_MAX));
    zs.next_in = const_cast<unsigned char*>(in);  // zlib's API predates const; it does not write
    zs.avail_in = offered;
    zs.next_out = reinterpret_cast<unsigned char*>(buffer_.get() + pending);
    zs.avail_out = static_cast<uInt>(kGunzipChunkBytes - pending);
    size_t pending_before = pending;
    int rc = inflate(&zs, Z_NO_FLUSH);
    size_t consumed = offered - zs.avail_in;
    in += consumed;
    left -= consumed;
    member_in_ += consumed;
    pending = kGunzipChunkBytes - zs.avail_out;

    if (rc == Z_STREAM_END) {
      ++members_;
      member_in_ = 0;
      inflateReset(&zs);
    } else if (rc == Z_MEM_ERROR) {
      return Fail(Status(ErrorCode::kResourceExhausted,
                         what_ + ": out of memory inflating gzip data"));
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      // Z_DATA_ERROR (bad header, block or checksum), Z_NEED_DICT (never valid in gzip).
      return Fail(DataLossError(what_ + ": corrupt gzip data (" +
                                (zs.msg ? std::string(zs.msg) : "zlib error " + std::to_string(rc)) +
                                ")"));
    }
    bytes_in_ += consumed;

    if (pending == kGunzipChunkBytes) {  // full: pass it on, zlib may have more to give
      bytes_out_ += pending;
      Status s = out_.Append(buffer_.get(), pending);
      if (!s.ok()) return Fail(std::move(s));
      pending = 0;
      continue;
    }
    if (left == 0) break;
    if (consumed == 0 && pending == pending_before && rc != Z_STREAM_END) {
      // Input and output space were both available, yet zlib moved nothing: never loop on that.
      return Fail(InternalError(what_ + ": gzip decompression made no progress"));
    }
  }
  if (pending > 0) {
    bytes_out_ += pending;
    Status s = out_.Append(buffer_.get(), pending);
    if (!s.ok()) return Fail(std::move(s));
  }
  return OkStatus();
}

Status GunzipSink::Finish() {
  if (!error_.ok()) return error_;
  if (members_ == 0 || member_in_ != 0) {
    return Fail(DataLossError(what_ + ": truncated gzip data (ends after " +
                              std::to_string(bytes_in_) + " bytes)"));
  }
  return OkStatus();
}

}  // namespace trainfeed
