#include "pack/shard_writer.h"

#include <archive.h>
#include <archive_entry.h>

#include <future>

#include "dataset/recordio.h"
#include "modes/fastfile/disk_cache.h"  // Crc32c

namespace trainfeed {

namespace {

constexpr uint64_t kTarBlock = 512;

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

Status ArchiveError(archive* a, const std::string& what) {
  const char* text = archive_error_string(a);
  std::string detail = what + ": " + (text ? text : "unknown libarchive error");
  int err = archive_errno(a);
  if (err > 0) return ErrnoToStatus(err, detail);
  return InternalError(detail);
}

}  // namespace

// ---- ObjectWriter ----

ObjectWriter::ObjectWriter(ObjectStore& store, ObjectRef object, uint64_t part_size,
                           std::function<Status(const std::string&)> on_upload_created)
    : store_(store),
      object_(std::move(object)),
      part_size_(part_size),
      on_upload_created_(std::move(on_upload_created)) {}

ObjectWriter::~ObjectWriter() {
  if (!finished_) Abort();
}

Status ObjectWriter::Write(const char* data, size_t size) {
  if (finished_) return InternalError("write after finish of " + store_.Describe(object_));
  while (size > 0) {
    // A full part goes out only once more bytes follow: the last part (or the whole object, as
    // one PUT) waits for Finish.
    if (buffer_.size() == part_size_) TF_RETURN_IF_ERROR(FlushPart());
    size_t take = static_cast<size_t>(std::min<uint64_t>(size, part_size_ - buffer_.size()));
    if (buffer_.capacity() < part_size_) buffer_.reserve(part_size_);
    buffer_.append(data, take);
    data += take;
    size -= take;
    bytes_ += take;
  }
  return OkStatus();
}

Status ObjectWriter::FlushPart() {
  if (upload_id_.empty()) {
    TF_ASSIGN_OR_RETURN(upload_id_, store_.CreateMultipartUpload(object_));
    if (on_upload_created_) TF_RETURN_IF_ERROR(on_upload_created_(upload_id_));
  }
  TF_RETURN_IF_ERROR(WaitForPart());
  int number = static_cast<int>(parts_.size()) + 1;
  if (number > 10000) {
    return InvalidArgumentError(store_.Describe(object_) + ": more than 10,000 parts (an S3 "
                                "limit): use a smaller --shard-size");
  }
  // The part goes up while the next one fills: the members' GETs and the upload overlap, for
  // one more part of memory.
  sending_.swap(buffer_);
  buffer_.clear();
  in_flight_ = std::async(std::launch::async, [this, number]() -> Result<CompletedPart> {
    TF_ASSIGN_OR_RETURN(std::string etag, store_.UploadPart(object_, upload_id_, number, sending_));
    return CompletedPart{number, std::move(etag)};
  });
  return OkStatus();
}

Status ObjectWriter::WaitForPart() {
  if (!in_flight_.valid()) return OkStatus();
  Result<CompletedPart> part = in_flight_.get();
  if (!part.ok()) return part.status();
  parts_.push_back(std::move(*part));
  return OkStatus();
}

Result<std::string> ObjectWriter::Finish() {
  if (finished_) return InternalError("finish twice of " + store_.Describe(object_));
  if (upload_id_.empty()) {
    // Everything fits in one part: one PUT, no upload to clean up after a crash.
    TF_ASSIGN_OR_RETURN(std::string etag, store_.Put(object_, buffer_));
    finished_ = true;
    buffer_ = std::string();
    return etag;
  }
  if (!buffer_.empty()) TF_RETURN_IF_ERROR(FlushPart());
  TF_RETURN_IF_ERROR(WaitForPart());
  TF_ASSIGN_OR_RETURN(std::string etag,
                      store_.CompleteMultipartUpload(object_, upload_id_, parts_));
  finished_ = true;
  buffer_ = std::string();
  sending_ = std::string();
  return etag;
}

void ObjectWriter::Abort() {
  finished_ = true;
  if (in_flight_.valid()) (void)in_flight_.get();  // the part's thread uses this object
  buffer_ = std::string();
  sending_ = std::string();
  if (!upload_id_.empty()) {
    // Best effort: a failure leaves parts that a later run (or a bucket lifecycle rule) removes.
    (void)store_.AbortMultipartUpload(object_, upload_id_);
    upload_id_.clear();
  }
}

// ---- ShardWriter ----

struct ShardWriterAccess {
  static la_ssize_t Write(archive* a, void* self, const void* buffer, size_t length) {
    auto* w = static_cast<ShardWriter*>(self);
    Status s = w->Output(static_cast<const char*>(buffer), length);
    if (!s.ok()) {
      archive_set_error(a, EIO, "%s", s.ToString().c_str());
      return -1;
    }
    return static_cast<la_ssize_t>(length);
  }
};

ShardWriter::ShardWriter(PackFormat format, ObjectWriter& out, std::string what)
    : format_(format), out_(out), what_(std::move(what)) {}

ShardWriter::~ShardWriter() {
  if (archive_ != nullptr) archive_write_free(archive_);
}

Result<std::unique_ptr<ShardWriter>> ShardWriter::Create(PackFormat format, ObjectWriter& out,
                                                         std::string what) {
  std::unique_ptr<ShardWriter> w(new ShardWriter(format, out, std::move(what)));
  if (format == PackFormat::kTar) {
    w->archive_ = archive_write_new();
    if (w->archive_ == nullptr) return InternalError("archive_write_new failed");
    // ustar, with pax records only where ustar cannot hold an entry (long or non-ASCII names):
    // what tar, Python's tarfile and WebDataset read. Unblocked output with no padding of the
    // last block, so every byte reaches the callback at once and offsets are exact.
    if (archive_write_set_format_pax_restricted(w->archive_) != ARCHIVE_OK ||
        archive_write_add_filter_none(w->archive_) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(w->archive_, 0) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w->archive_, 1) != ARCHIVE_OK ||
        archive_write_open(w->archive_, w.get(), nullptr, &ShardWriterAccess::Write, nullptr) !=
            ARCHIVE_OK) {
      return ArchiveError(w->archive_, "create tar " + w->what_);
    }
  }
  return w;
}

Status ShardWriter::Output(const char* data, size_t size) {
  Status s = out_.Write(data, size);
  if (!s.ok()) {
    output_error_ = s;
    return s;
  }
  offset_ += size;
  return OkStatus();
}

std::string ShardWriter::RecordHeader(std::string_view name) {
  std::string header(4, '\0');
  uint32_t n = static_cast<uint32_t>(name.size());
  for (int i = 0; i < 4; ++i) header[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  header.append(name);
  return header;
}

Status ShardWriter::BeginMember(const PackMember& member) {
  if (in_member_) return InternalError("BeginMember inside a member of " + what_);
  current_ = IndexedMember{};
  current_.key = member.key;
  current_.name = member.name;
  current_.size = member.size;
  current_.length = member.size;
  current_.etag = member.etag;
  received_ = 0;
  crc_ = 0;
  in_member_ = true;
  if (format_ == PackFormat::kRecordIO) {
    record_ = RecordHeader(member.name);
    record_.reserve(record_.size() + member.size);
    return OkStatus();
  }
  // The previous entry's padding is written with this header, so the entry starts at the next
  // block boundary after what has gone out.
  current_.entry_offset = RoundUp(offset_, kTarBlock);
  archive_entry* entry = archive_entry_new();
  if (entry == nullptr) return InternalError("archive_entry_new failed");
  archive_entry_copy_pathname(entry, member.name.c_str());
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_entry_set_perm(entry, 0644);
  archive_entry_set_size(entry, static_cast<la_int64_t>(member.size));
  archive_entry_set_mtime(entry, member.mtime, 0);
  archive_entry_set_uid(entry, 0);
  archive_entry_set_gid(entry, 0);
  int r = archive_write_header(archive_, entry);
  archive_entry_free(entry);
  if (r < ARCHIVE_WARN) {
    if (!output_error_.ok()) return output_error_;
    return ArchiveError(archive_, "tar header of '" + member.key + "' in " + what_);
  }
  current_.offset = offset_;
  return OkStatus();
}

Status ShardWriter::Append(const char* data, size_t size) {
  if (!in_member_) return InternalError("Append outside a member of " + what_);
  if (received_ + size > current_.size) {
    return DataLossError("'" + current_.key + "': more bytes than its listed size " +
                         std::to_string(current_.size));
  }
  crc_ = Crc32c(crc_, data, size);
  received_ += size;
  if (format_ == PackFormat::kRecordIO) {
    record_.append(data, size);
    return OkStatus();
  }
  if (size == 0) return OkStatus();
  la_ssize_t n = archive_write_data(archive_, data, size);
  if (n < 0 || static_cast<size_t>(n) != size) {
    if (!output_error_.ok()) return output_error_;
    return ArchiveError(archive_, "tar data of '" + current_.key + "' in " + what_);
  }
  return OkStatus();
}

namespace {

// WriteRecordIO's sink: forwards into the shard.
class OutputSink final : public ByteSink {
 public:
  explicit OutputSink(std::function<Status(const char*, size_t)> out) : out_(std::move(out)) {}
  Status Append(const char* data, size_t size) override { return out_(data, size); }

 private:
  std::function<Status(const char*, size_t)> out_;
};

}  // namespace

Result<IndexedMember> ShardWriter::EndMember() {
  if (!in_member_) return InternalError("EndMember outside a member of " + what_);
  in_member_ = false;
  if (received_ != current_.size) {
    return DataLossError("'" + current_.key + "': got " + std::to_string(received_) +
                         " bytes, listed size " + std::to_string(current_.size));
  }
  current_.crc32c = crc_;
  if (format_ == PackFormat::kRecordIO) {
    current_.entry_offset = offset_;
    current_.entry_length = RecordIOFramedSize(record_);
    uint64_t header = record_.size() - current_.size;
    // Contiguous unless the payload had to be split around an aligned magic.
    if (current_.entry_length == kRecordIOHeaderBytes + RoundUp(record_.size(), 4)) {
      current_.offset = offset_ + kRecordIOHeaderBytes + header;
    }
    OutputSink sink([this](const char* d, size_t n) { return Output(d, n); });
    TF_RETURN_IF_ERROR(WriteRecordIO(record_, sink, current_.key));
    record_ = std::string();
    if (offset_ - current_.entry_offset != current_.entry_length) {
      return InternalError("RecordIO record of '" + current_.key + "' framed " +
                           std::to_string(offset_ - current_.entry_offset) + " bytes, expected " +
                           std::to_string(current_.entry_length));
    }
    return current_;
  }
  current_.entry_length = RoundUp(*current_.offset + current_.size, kTarBlock) -
                          current_.entry_offset;
  return current_;
}

Status ShardWriter::Finish() {
  if (in_member_) return InternalError("Finish inside a member of " + what_);
  if (format_ == PackFormat::kTar) {
    if (archive_write_close(archive_) != ARCHIVE_OK) {
      if (!output_error_.ok()) return output_error_;
      return ArchiveError(archive_, "finish tar " + what_);
    }
  }
  return OkStatus();
}

}  // namespace trainfeed
