#include "pack/packer.h"

#include <set>

#include "gtest/gtest.h"
#include "pack/pack_index.h"
#include "pack/verify.h"
#include "store/testing/fake_object_store.h"
#include "store/testing/string_sink.h"

namespace trainfeed {
namespace {

class PackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_.CreateBucket("src");
    store_.CreateBucket("dst");
    for (int i = 0; i < 60; ++i) {
      std::string key = "data/" + std::string(i % 2 ? "a/" : "b/") + "obj" + std::to_string(i) +
                        (i % 3 ? ".bin" : ".json");
      ASSERT_TRUE(store_.PutRamp("src", key, 100 + 997 * static_cast<uint64_t>(i), i).ok());
    }
    ASSERT_TRUE(store_.PutRamp("src", "data/big.bin", 3 << 20, 7).ok());  // streamed, own shard
    source_ = {StoreUri::Scheme::kS3, "src", "data/"};
    dest_ = {StoreUri::Scheme::kS3, "dst", "packed"};
    options_.plan.shard_size = 16 * 1024;
    options_.concurrency = 16;
  }

  std::string Get(const std::string& key) {
    Result<std::string> r = store_.Contents({"dst", key});
    return r.ok() ? *r : std::string();
  }

  // Every member of every shard, by the index, compared with the source.
  std::multiset<std::string> CheckIndexes() {
    std::multiset<std::string> keys;
    Result<PackManifest> manifest = ParsePackManifest(Get("packed/index.json"), "index.json");
    EXPECT_TRUE(manifest.ok());
    if (!manifest.ok()) return keys;
    for (const ManifestShard& s : manifest->shards) {
      Result<ShardIndex> index = ParseShardIndex(Get("packed/" + s.index), s.index);
      EXPECT_TRUE(index.ok());
      std::string shard = Get("packed/" + s.name);
      EXPECT_EQ(shard.size(), s.bytes);
      for (const IndexedMember& m : index->members) {
        keys.insert(m.key);
        std::string source = store_.Contents({"src", m.key}).value();
        EXPECT_TRUE(shard.substr(*m.offset, m.length) == source) << m.key;
      }
    }
    return keys;
  }

  FakeObjectStore store_;
  StoreUri source_, dest_;
  PackOptions options_;
};

TEST_F(PackerTest, PacksEveryObjectOnceAndResumes) {
  PackReport report = Pack(store_, source_, store_, dest_, options_);
  ASSERT_TRUE(report.ok()) << report.fatal.ToString();
  EXPECT_EQ(report.members, 61u);
  EXPECT_GT(report.shards, 4u);
  EXPECT_EQ(report.shards_written, report.shards);
  std::multiset<std::string> keys = CheckIndexes();
  EXPECT_EQ(keys.size(), 61u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 61u);
  EXPECT_EQ(store_.pending_uploads(), 0u);

  // A rerun keeps everything.
  PackReport again = Pack(store_, source_, store_, dest_, options_);
  ASSERT_TRUE(again.ok()) << again.fatal.ToString();
  EXPECT_EQ(again.shards_written, 0u);
  EXPECT_EQ(again.shards_kept, report.shards);

  // A lost index (a crash before it was written) means exactly that shard is written again.
  ASSERT_TRUE(store_.Delete({"dst", "packed/shard-000002.idx.json"}).ok());
  ASSERT_TRUE(store_.Delete({"dst", "packed/index.json"}).ok());
  // ...and a dangling upload of a killed run is aborted.
  Result<std::string> id = store_.CreateMultipartUpload({"dst", "packed/shard-000002.tar"});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(store_.Put({"dst", "packed/shard-000002.tar.upload"}, *id).ok());
  PackReport resumed = Pack(store_, source_, store_, dest_, options_);
  ASSERT_TRUE(resumed.ok()) << resumed.fatal.ToString();
  EXPECT_EQ(resumed.shards_written, 1u);
  EXPECT_EQ(resumed.aborted_uploads, 1u);
  EXPECT_EQ(store_.pending_uploads(), 0u);
  EXPECT_FALSE(store_.Contents({"dst", "packed/shard-000002.tar.upload"}).ok());
  EXPECT_EQ(CheckIndexes().size(), 61u);

  VerifyReport verified = VerifyPack(store_, source_, store_, dest_, {});
  EXPECT_TRUE(verified.ok()) << (verified.lines.empty() ? verified.fatal.ToString() : verified.lines[0]);
  EXPECT_EQ(verified.members, 61u);
  EXPECT_EQ(verified.shards, report.shards);
}

TEST_F(PackerTest, ChangedSourceIsRefusedUnlessForced) {
  ASSERT_TRUE(Pack(store_, source_, store_, dest_, options_).ok());
  ASSERT_TRUE(store_.PutRamp("src", "data/a/obj1.bin", 5000, 99).ok());
  PackReport refused = Pack(store_, source_, store_, dest_, options_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.fatal.code(), ErrorCode::kPreconditionFailed);
  EXPECT_NE(refused.fatal.message().find("--force"), std::string::npos);

  VerifyReport stale = VerifyPack(store_, source_, store_, dest_, {});
  EXPECT_FALSE(stale.ok());
  EXPECT_GE(stale.problems, 2u);  // plan fingerprint and the object's CRC

  PackOptions force = options_;
  force.force = true;
  PackReport rebuilt = Pack(store_, source_, store_, dest_, force);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.fatal.ToString();
  EXPECT_EQ(rebuilt.shards_written, rebuilt.shards);
  EXPECT_EQ(CheckIndexes().size(), 61u);
  EXPECT_TRUE(VerifyPack(store_, source_, store_, dest_, {}).ok());
}

TEST_F(PackerTest, VerifyFindsADamagedShard) {
  ASSERT_TRUE(Pack(store_, source_, store_, dest_, options_).ok());
  std::string shard = Get("packed/shard-000001.tar");
  ASSERT_GT(shard.size(), 3000u);
  shard[2000] = static_cast<char>(shard[2000] ^ 0x55);
  ASSERT_TRUE(store_.Put({"dst", "packed/shard-000001.tar"}, shard).ok());
  VerifyReport report = VerifyPack(store_, source_, store_, dest_, {});
  EXPECT_FALSE(report.ok());
  ASSERT_FALSE(report.lines.empty());
  bool named = false;
  for (const std::string& line : report.lines) named |= line.find("shard-000001.tar") != std::string::npos;
  EXPECT_TRUE(named);
}

TEST_F(PackerTest, RecordIOPackVerifies) {
  options_.plan.format = PackFormat::kRecordIO;
  options_.plan.shuffle_seed = 11;
  PackReport report = Pack(store_, source_, store_, dest_, options_);
  ASSERT_TRUE(report.ok()) << report.fatal.ToString();
  EXPECT_EQ(CheckIndexes().size(), 61u);
  EXPECT_FALSE(Get("packed/shard-000000.rec").empty());
  VerifyReport verified = VerifyPack(store_, source_, store_, dest_, {});
  EXPECT_TRUE(verified.ok()) << (verified.lines.empty() ? verified.fatal.ToString() : verified.lines[0]);
}

TEST_F(PackerTest, RefusesADestinationInsideTheSource) {
  StoreUri inside{StoreUri::Scheme::kS3, "src", "data/packed/"};
  PackReport report = Pack(store_, source_, store_, inside, options_);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.fatal.code(), ErrorCode::kInvalidArgument);
}

TEST_F(PackerTest, VerifyWithoutManifestSaysSo) {
  VerifyReport report = VerifyPack(store_, source_, store_, dest_, {});
  ASSERT_FALSE(report.fatal.ok());
  EXPECT_EQ(report.fatal.code(), ErrorCode::kNotFound);
  EXPECT_NE(report.fatal.message().find("index.json"), std::string::npos);
}

}  // namespace
}  // namespace trainfeed
