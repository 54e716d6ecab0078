#include "pack/pack_index.h"

#include "gtest/gtest.h"

namespace trainfeed {
namespace {

TEST(PackIndex, ShardIndexRoundTrip) {
  ShardIndex index;
  index.plan_fingerprint = std::string(64, 'a');
  index.format = PackFormat::kRecordIO;
  index.shard = "shard-000007.rec";
  index.shard_index = 7;
  index.shard_bytes = 123456789012ull;
  index.shard_etag = "abc-3";
  IndexedMember m;
  m.key = "src/d\xc3\xa9j\xc3\xa0/x \"q\".bin";
  m.name = "d\xc3\xa9j\xc3\xa0/x \"q\".bin";
  m.size = 5;
  m.etag = "0123";
  m.offset = 24;
  m.length = 5;
  m.entry_offset = 0;
  m.entry_length = 32;
  m.crc32c = 0xe3069283;
  index.members.push_back(m);
  m.key = "src/split";
  m.offset.reset();
  m.crc32c = 0x00000001;
  index.members.push_back(m);

  std::string text = ShardIndexToJson(index);
  EXPECT_NE(text.find("\"crc32c\":\"e3069283\""), std::string::npos);
  Result<ShardIndex> back = ParseShardIndex(text, "idx");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->plan_fingerprint, index.plan_fingerprint);
  EXPECT_EQ(back->format, PackFormat::kRecordIO);
  EXPECT_EQ(back->shard, index.shard);
  EXPECT_EQ(back->shard_index, 7u);
  EXPECT_EQ(back->shard_bytes, index.shard_bytes);
  EXPECT_EQ(back->shard_etag, index.shard_etag);
  ASSERT_EQ(back->members.size(), 2u);
  EXPECT_EQ(back->members[0].key, index.members[0].key);
  EXPECT_EQ(back->members[0].name, index.members[0].name);
  EXPECT_EQ(back->members[0].offset, std::optional<uint64_t>(24));
  EXPECT_EQ(back->members[0].entry_length, 32u);
  EXPECT_EQ(back->members[0].crc32c, 0xe3069283u);
  EXPECT_FALSE(back->members[1].offset.has_value());
  EXPECT_EQ(back->members[1].crc32c, 1u);
}

TEST(PackIndex, ManifestRoundTrip) {
  PackManifest m;
  m.source = "s3://b/src/";
  m.format = PackFormat::kTar;
  m.shard_size = 150000000;
  m.shuffle_seed = -5;
  m.plan_fingerprint = "ff";
  m.members = 3;
  m.member_bytes = 99;
  m.shards.push_back({"shard-000000.tar", "shard-000000.idx.json", 3, 4096, "e-2"});
  Result<PackManifest> back = ParsePackManifest(PackManifestToJson(m), "index.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->source, m.source);
  EXPECT_EQ(back->shuffle_seed, std::optional<int64_t>(-5));
  EXPECT_EQ(back->shard_size, m.shard_size);
  ASSERT_EQ(back->shards.size(), 1u);
  EXPECT_EQ(back->shards[0].bytes, 4096u);
  EXPECT_EQ(back->shards[0].etag, "e-2");
  m.shuffle_seed.reset();
  back = ParsePackManifest(PackManifestToJson(m), "index.json");
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->shuffle_seed.has_value());
}

TEST(PackIndex, RejectsForeignDocuments) {
  EXPECT_FALSE(ParseShardIndex("{}", "x").ok());
  EXPECT_FALSE(ParseShardIndex("not json", "x").ok());
  Result<ShardIndex> r = ParseShardIndex("{\"format_version\": 99}", "s3://b/i");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("s3://b/i"), std::string::npos);
  EXPECT_FALSE(ParsePackManifest("{\"format_version\": 1}", "m").ok());
  EXPECT_FALSE(ParseShardIndex("{\"format_version\": 1, \"plan_fingerprint\": \"a\", \"format\": "
                               "\"zip\", \"shard\": \"s\", \"shard_index\": 0, \"shard_bytes\": 0, "
                               "\"shard_etag\": \"\", \"members\": []}", "m").ok());
}

}  // namespace
}  // namespace trainfeed
