#include "pack/shard_writer.h"

#include <archive.h>
#include <archive_entry.h>

#include "dataset/recordio.h"
#include "gtest/gtest.h"
#include "modes/fastfile/disk_cache.h"
#include "store/testing/fake_object_store.h"
#include "store/testing/fault_injecting_object_store.h"

namespace trainfeed {
namespace {

constexpr uint64_t kPart = 64 * 1024;

struct Written {
  std::vector<IndexedMember> members;
  std::string bytes;
  std::string etag;
};

PackMember Member(std::string name, uint64_t size) {
  PackMember m;
  m.key = "src/" + name;
  m.name = std::move(name);
  m.size = size;
  m.etag = "etag-" + m.name;
  m.mtime = 1700000000;
  return m;
}

// Writes members whose bytes are RampBytes(i, 0, size) into mem://b/out, fed in 1000-byte pieces.
Written WriteShard(FakeObjectStore& store, PackFormat format, const std::vector<PackMember>& members,
                   const std::vector<std::string>* bodies = nullptr) {
  Written w;
  ObjectWriter out(store, {"b", "out"}, kPart);
  Result<std::unique_ptr<ShardWriter>> writer = ShardWriter::Create(format, out, "mem://b/out");
  EXPECT_TRUE(writer.ok());
  for (size_t i = 0; i < members.size(); ++i) {
    std::string body = bodies ? (*bodies)[i] : FakeObjectStore::RampBytes(i, 0, members[i].size);
    EXPECT_TRUE((*writer)->BeginMember(members[i]).ok());
    for (size_t at = 0; at < body.size(); at += 1000) {
      size_t n = std::min<size_t>(1000, body.size() - at);
      EXPECT_TRUE((*writer)->Append(body.data() + at, n).ok());
    }
    Result<IndexedMember> placed = (*writer)->EndMember();
    EXPECT_TRUE(placed.ok()) << placed.status().ToString();
    if (placed.ok()) w.members.push_back(*placed);
  }
  EXPECT_TRUE((*writer)->Finish().ok());
  Result<std::string> etag = out.Finish();
  EXPECT_TRUE(etag.ok()) << etag.status().ToString();
  if (etag.ok()) w.etag = *etag;
  EXPECT_EQ(out.bytes_written(), store.Contents({"b", "out"}).value().size());
  w.bytes = store.Contents({"b", "out"}).value();
  return w;
}

std::vector<PackMember> MixedMembers() {
  return {Member("a/one.bin", 0),      Member("a/two.bin", 1),
          Member("b/three.bin", 511),  Member("b/four.bin", 512),
          Member("b/five.bin", 70000),  // spans multipart parts
          Member("dir/" + std::string(130, 'n') + ".bin", 1234),  // needs a pax header
          Member("z.bin", 100000)};
}

TEST(ShardWriter, TarOffsetsPointAtTheBytes) {
  FakeObjectStore store;
  store.CreateBucket("b");
  store.set_min_part_size(kPart);
  std::vector<PackMember> members = MixedMembers();
  Written w = WriteShard(store, PackFormat::kTar, members);
  ASSERT_EQ(w.members.size(), members.size());
  EXPECT_GT(store.upload_part_calls(), 1);  // multipart, parts of kPart
  EXPECT_EQ(store.complete_multipart_calls(), 1);
  EXPECT_EQ(store.pending_uploads(), 0u);

  uint64_t expected_end = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    const IndexedMember& m = w.members[i];
    SCOPED_TRACE(m.name);
    ASSERT_TRUE(m.offset.has_value());
    EXPECT_EQ(m.entry_offset, expected_end);
    EXPECT_EQ(m.entry_offset % 512, 0u);
    EXPECT_EQ(*m.offset % 512, 0u);
    EXPECT_EQ(w.bytes.compare(m.entry_offset + 257, 5, "ustar"), 0);
    ASSERT_LE(*m.offset + m.length, w.bytes.size());
    std::string data = w.bytes.substr(*m.offset, m.length);
    EXPECT_TRUE(data == FakeObjectStore::RampBytes(i, 0, members[i].size));
    EXPECT_EQ(m.crc32c, Crc32c(0, data.data(), data.size()));
    EXPECT_EQ(m.key, members[i].key);
    if (members[i].name.size() <= 100) {
      EXPECT_EQ(m.entry_length, EstimatedEntryBytes(PackFormat::kTar, m.name, m.size));
    } else {
      EXPECT_GT(*m.offset - m.entry_offset, 512u);  // a pax header carries the long name
    }
    expected_end = m.entry_offset + m.entry_length;
  }
  // Two zero blocks end the archive; nothing else follows.
  EXPECT_EQ(w.bytes.size(), expected_end + 1024);
  EXPECT_EQ(w.bytes.substr(expected_end), std::string(1024, '\0'));

  // libarchive reads it back: same names, same bytes.
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_memory(a, w.bytes.data(), w.bytes.size()), ARCHIVE_OK);
  archive_entry* entry = nullptr;
  size_t i = 0;
  while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
    ASSERT_LT(i, members.size());
    EXPECT_EQ(archive_entry_pathname(entry), members[i].name);
    EXPECT_EQ(static_cast<uint64_t>(archive_entry_size(entry)), members[i].size);
    EXPECT_EQ(archive_entry_mtime(entry), 1700000000);
    std::string data(members[i].size, '\0');
    EXPECT_EQ(archive_read_data(a, data.data(), data.size()), static_cast<la_ssize_t>(data.size()));
    EXPECT_TRUE(data == FakeObjectStore::RampBytes(i, 0, members[i].size));
    ++i;
  }
  EXPECT_EQ(i, members.size());
  archive_read_free(a);
}

TEST(ShardWriter, SmallShardIsOnePut) {
  FakeObjectStore store;
  store.CreateBucket("b");
  Written w = WriteShard(store, PackFormat::kTar, {Member("x", 10), Member("y", 20)});
  EXPECT_EQ(store.put_calls(), 1);
  EXPECT_EQ(store.create_multipart_calls(), 0);
  EXPECT_EQ(w.bytes.size(), 512u * 4 + 1024u);
}

TEST(ShardWriter, RecordIOPayloadHeaderRoundTrip) {
  std::string header = ShardWriter::RecordHeader("dir/x.bin");
  ASSERT_EQ(header.size(), 4u + 9u);
  EXPECT_EQ(header.substr(0, 4), std::string("\x09\x00\x00\x00", 4));
  EXPECT_EQ(header.substr(4), "dir/x.bin");
}

TEST(ShardWriter, RecordIORecordsNameTheirObjects) {
  FakeObjectStore store;
  store.CreateBucket("b");
  store.set_min_part_size(kPart);
  std::vector<PackMember> members = MixedMembers();
  std::vector<std::string> bodies;
  for (size_t i = 0; i < members.size(); ++i) {
    bodies.push_back(FakeObjectStore::RampBytes(i, 0, members[i].size));
  }
  // A payload with the magic at an aligned offset is split into parts: "abcd" makes the header
  // 8 bytes, so data offset 0 is payload offset 8.
  members.push_back(Member("abcd", 12));
  bodies.push_back(std::string("\x0a\x23\xd7\xce", 4) + "12345678");
  Written w = WriteShard(store, PackFormat::kRecordIO, members, &bodies);
  ASSERT_EQ(w.members.size(), members.size());

  RecordIOReader reader(w.bytes);
  for (size_t i = 0; i < members.size(); ++i) {
    const IndexedMember& m = w.members[i];
    SCOPED_TRACE(m.name);
    EXPECT_EQ(m.entry_offset, reader.offset());
    Result<std::optional<std::string>> record = reader.Next();
    ASSERT_TRUE(record.ok() && record->has_value());
    const std::string& payload = **record;
    uint32_t name_len = 0;
    for (int k = 0; k < 4; ++k) name_len |= uint32_t{static_cast<unsigned char>(payload[k])} << (8 * k);
    EXPECT_EQ(payload.substr(4, name_len), members[i].name);
    EXPECT_TRUE(payload.substr(4 + name_len) == bodies[i]);
    EXPECT_EQ(reader.offset() - m.entry_offset, m.entry_length);
    EXPECT_EQ(m.crc32c, Crc32c(0, bodies[i].data(), bodies[i].size()));
    if (i + 1 < members.size()) {
      ASSERT_TRUE(m.offset.has_value());
      EXPECT_TRUE(w.bytes.substr(*m.offset, m.length) == bodies[i]);
      EXPECT_EQ(m.entry_length, EstimatedEntryBytes(PackFormat::kRecordIO, m.name, m.size));
    } else {
      EXPECT_FALSE(m.offset.has_value());  // split record: no contiguous copy
    }
  }
  Result<std::optional<std::string>> end = reader.Next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
}

TEST(ShardWriter, ShortMemberFailsAndAbortsTheUpload) {
  FakeObjectStore store;
  store.CreateBucket("b");
  store.set_min_part_size(kPart);
  {
    ObjectWriter out(store, {"b", "out"}, kPart);
    Result<std::unique_ptr<ShardWriter>> writer = ShardWriter::Create(PackFormat::kTar, out, "o");
    ASSERT_TRUE(writer.ok());
    std::string big = FakeObjectStore::RampBytes(0, 0, 3 * kPart);
    ASSERT_TRUE((*writer)->BeginMember(Member("big", big.size())).ok());
    ASSERT_TRUE((*writer)->Append(big.data(), big.size()).ok());
    ASSERT_TRUE((*writer)->EndMember().ok());
    ASSERT_TRUE((*writer)->BeginMember(Member("short", 100)).ok());
    ASSERT_TRUE((*writer)->Append(big.data(), 50).ok());
    EXPECT_FALSE((*writer)->Append(big.data(), 51).ok());  // more than listed
    Result<IndexedMember> end = (*writer)->EndMember();
    ASSERT_FALSE(end.ok());
    EXPECT_EQ(end.status().code(), ErrorCode::kDataLoss);
    EXPECT_EQ(store.pending_uploads(), 1u);
  }  // the writer goes away unfinished
  EXPECT_EQ(store.pending_uploads(), 0u);
  EXPECT_EQ(store.abort_multipart_calls(), 1);
  EXPECT_FALSE(store.Contents({"b", "out"}).ok());
}

TEST(ShardWriter, FailedPartUploadFailsTheShardAndAbortsIt) {
  FakeObjectStore fake;
  fake.CreateBucket("b");
  fake.set_min_part_size(kPart);
  FaultInjectingObjectStore store(fake, [](const FaultContext& c) -> std::optional<Fault> {
    if (c.method == StoreMethod::kUploadPart && c.part_number == 2) {
      return Fault::Error(PermissionDeniedError("AccessDenied: part 2"));
    }
    return std::nullopt;
  });
  std::string recorded_upload;
  Status status;
  {
    ObjectWriter out(store, {"b", "out"}, kPart, [&](const std::string& id) {
      recorded_upload = id;
      return OkStatus();
    });
    std::string data = FakeObjectStore::RampBytes(0, 0, 5 * kPart);
    for (size_t at = 0; at < data.size() && status.ok(); at += 4096) {
      status = out.Write(data.data() + at, 4096);
    }
    if (status.ok()) status = out.Finish().status();
  }
  EXPECT_EQ(status.code(), ErrorCode::kPermissionDenied);
  EXPECT_FALSE(recorded_upload.empty());  // told before the first part went out
  EXPECT_EQ(fake.pending_uploads(), 0u);
  EXPECT_FALSE(fake.Contents({"b", "out"}).ok());
}

}  // namespace
}  // namespace trainfeed
