// Writing one shard: ObjectWriter streams bytes into a store object (a multipart upload of
// part_size parts, or a single PUT when everything fits in one part), and ShardWriter lays
// members out in it as tar (libarchive) or RecordIO entries, recording where each one's bytes
// landed. Memory: two part buffers (one filling, one uploading), plus the current record for
// RecordIO (records are framed whole, < 512 MiB each). Neither class is thread-safe; one shard is
// one writer's.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "pack/pack_index.h"
#include "pack/pack_plan.h"
#include "store/object_store.h"

struct archive;  // libarchive's, kept out of this header

namespace trainfeed {

class ObjectWriter {
 public:
  // `on_upload_created` (may be empty) is told the id of the multipart upload before its first
  // part is sent, so a crashed run's upload can be aborted later; its error fails the write.
  ObjectWriter(ObjectStore& store, ObjectRef object, uint64_t part_size,
               std::function<Status(const std::string& upload_id)> on_upload_created = {});
  ~ObjectWriter();  // aborts an unfinished multipart upload
  ObjectWriter(const ObjectWriter&) = delete;
  ObjectWriter& operator=(const ObjectWriter&) = delete;

  Status Write(const char* data, size_t size);
  // Sends what is buffered and completes the object; returns its ETag. Nothing is visible under
  // the object's name before this succeeds.
  Result<std::string> Finish();
  // Gives up: aborts the multipart upload, if any. Idempotent.
  void Abort();

  uint64_t bytes_written() const { return bytes_; }
  bool multipart() const { return !upload_id_.empty(); }

 private:
  // Starts the upload of the full buffer as the next part, after the previous one is done.
  Status FlushPart();
  // Waits for the part in flight, if any, and records it.
  Status WaitForPart();

  ObjectStore& store_;
  ObjectRef object_;
  uint64_t part_size_;
  std::function<Status(const std::string&)> on_upload_created_;
  std::string buffer_;   // the part being filled
  std::string sending_;  // the part being uploaded by in_flight_
  std::future<Result<CompletedPart>> in_flight_;
  std::string upload_id_;
  std::vector<CompletedPart> parts_;
  uint64_t bytes_ = 0;
  bool finished_ = false;
};

class ShardWriter {
 public:
  // `out` must outlive the writer.
  static Result<std::unique_ptr<ShardWriter>> Create(PackFormat format, ObjectWriter& out,
                                                     std::string what);
  ~ShardWriter();

  // One member: Begin, its bytes through Append (exactly member.size in all), then End, which
  // returns where it landed. A member whose bytes do not add up to its size fails with DataLoss.
  Status BeginMember(const PackMember& member);
  Status Append(const char* data, size_t size);
  Result<IndexedMember> EndMember();
  // Ends the shard (tar: the two zero blocks) and flushes into `out`; `out` is not finished.
  Status Finish();

  // The RecordIO payload of one member: a 4-byte little-endian name length, the name (UTF-8
  // bytes of the member name, no terminator), then the object's bytes.
  static std::string RecordHeader(std::string_view name);

 private:
  friend struct ShardWriterAccess;  // libarchive's write callback
  ShardWriter(PackFormat format, ObjectWriter& out, std::string what);
  Status Output(const char* data, size_t size);

  PackFormat format_;
  ObjectWriter& out_;
  std::string what_;
  ::archive* archive_ = nullptr;
  // Bytes handed to `out_` so far: libarchive writes unblocked (bytes_per_block 0), so this is
  // exactly the shard offset of the next byte it produces.
  uint64_t offset_ = 0;
  IndexedMember current_;
  bool in_member_ = false;
  uint64_t received_ = 0;
  uint32_t crc_ = 0;
  std::string record_;  // RecordIO: the payload being built
  Status output_error_;  // the store's error behind a failed libarchive call
};

}  // namespace trainfeed
