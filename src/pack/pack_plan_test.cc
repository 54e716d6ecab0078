#include "pack/pack_plan.h"

#include <map>
#include <set>

#include "gtest/gtest.h"

namespace trainfeed {
namespace {

ObjectInfo Obj(std::string key, uint64_t size, std::string etag = "e") {
  ObjectInfo o;
  o.key = std::move(key);
  o.size = size;
  o.etag = std::move(etag);
  return o;
}

std::vector<std::vector<std::string>> Names(const PackPlan& plan) {
  std::vector<std::vector<std::string>> out;
  for (const PlannedShard& s : plan.shards) {
    out.emplace_back();
    for (const PackMember& m : s.members) out.back().push_back(m.name);
  }
  return out;
}

TEST(PackPlan, NamesAreRelativeToThePrefixAndFolderMarkersAreSkipped) {
  std::vector<ObjectInfo> objects = {Obj("data/a/", 0), Obj("data/a/x.bin", 3), Obj("data/b.bin", 4)};
  Result<PackPlan> plan = PlanShards(objects, "data/", {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->shards.size(), 1u);
  EXPECT_EQ(Names(*plan)[0], (std::vector<std::string>{"a/x.bin", "b.bin"}));
  EXPECT_EQ(plan->shards[0].name, "shard-000000.tar");
  EXPECT_EQ(plan->members, 2u);
  EXPECT_EQ(plan->member_bytes, 7u);
}

TEST(PackPlan, CutsGreedilyAtTheShardSize) {
  // Each 1000-byte member takes 512 + 1024 bytes of tar; a shard also ends with 1024 zero bytes.
  std::vector<ObjectInfo> objects;
  for (int i = 0; i < 10; ++i) objects.push_back(Obj("p/o" + std::to_string(i) + ".bin", 1000));
  PackPlanOptions options;
  options.shard_size = 1024 + 3 * 1536;
  Result<PackPlan> plan = PlanShards(objects, "p/", options);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->shards.size(), 4u);
  EXPECT_EQ(plan->shards[0].members.size(), 3u);
  EXPECT_EQ(plan->shards[3].members.size(), 1u);
  EXPECT_EQ(plan->shards[0].estimated_bytes, options.shard_size);
  EXPECT_EQ(plan->shards[3].name, "shard-000003.tar");
  // One byte less and only two fit.
  options.shard_size -= 1;
  plan = PlanShards(objects, "p/", options);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->shards.size(), 5u);
  EXPECT_EQ(plan->shards[0].members.size(), 2u);
}

TEST(PackPlan, OversizedMemberGetsItsOwnShard) {
  std::vector<ObjectInfo> objects = {Obj("a", 100), Obj("b", 100), Obj("big", 100000),
                                     Obj("c", 100)};
  PackPlanOptions options;
  options.shard_size = 8192;
  Result<PackPlan> plan = PlanShards(objects, "", options);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Names(*plan), (std::vector<std::vector<std::string>>{{"a", "b"}, {"big"}, {"c"}}));
}

TEST(PackPlan, RecordIOEstimateIsTheFramedSize) {
  EXPECT_EQ(EstimatedEntryBytes(PackFormat::kRecordIO, "abc", 5), 8u + 12u);  // 4+3+5 = 12
  EXPECT_EQ(EstimatedEntryBytes(PackFormat::kRecordIO, "ab", 0), 8u + 8u);    // 6 -> 8
  EXPECT_EQ(EstimatedEntryBytes(PackFormat::kTar, "x", 0), 512u);
  EXPECT_EQ(EstimatedEntryBytes(PackFormat::kTar, "x", 513), 512u + 1024u);
  PackPlanOptions options;
  options.format = PackFormat::kRecordIO;
  Result<PackPlan> plan = PlanShards({Obj("k/a.bin", 3)}, "k/", options);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->shards[0].name, "shard-000000.rec");
}

TEST(PackPlan, DeterministicAndFingerprintTracksSourceAndArguments) {
  std::vector<ObjectInfo> objects;
  for (int i = 0; i < 50; ++i) objects.push_back(Obj("d/" + std::to_string(i), 100 + i));
  PackPlanOptions options;
  options.shard_size = 4096;
  options.shuffle_seed = 7;
  Result<PackPlan> a = PlanShards(objects, "d/", options);
  Result<PackPlan> b = PlanShards(objects, "d/", options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(Names(*a), Names(*b));
  EXPECT_EQ(a->fingerprint, b->fingerprint);
  EXPECT_EQ(a->fingerprint.size(), 64u);

  PackPlanOptions other_seed = options;
  other_seed.shuffle_seed = 8;
  Result<PackPlan> c = PlanShards(objects, "d/", other_seed);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(Names(*a), Names(*c));
  EXPECT_NE(a->fingerprint, c->fingerprint);

  std::vector<ObjectInfo> changed = objects;
  changed[17].etag = "changed";
  Result<PackPlan> d = PlanShards(changed, "d/", options);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Names(*a), Names(*d));
  EXPECT_NE(a->fingerprint, d->fingerprint);

  PackPlanOptions other_size = options;
  other_size.shard_size = 4097;
  Result<PackPlan> e = PlanShards(objects, "d/", other_size);
  ASSERT_TRUE(e.ok());
  EXPECT_NE(a->fingerprint, e->fingerprint);
}

TEST(PackPlan, SamplesStayTogetherUnderShuffle) {
  std::vector<ObjectInfo> objects;
  for (int i = 0; i < 40; ++i) {
    char stem[16];
    std::snprintf(stem, sizeof(stem), "s%03d", i);
    objects.push_back(Obj(std::string("w/x/") + stem + ".cls", 10));
    objects.push_back(Obj(std::string("w/x/") + stem + ".jpg", 900));
    objects.push_back(Obj(std::string("w/x/") + stem + ".meta.json", 50));
  }
  std::sort(objects.begin(), objects.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  PackPlanOptions options;
  options.shard_size = 12000;  // 3 samples (3,584 bytes each) per shard: cuts fall between them
  options.shuffle_seed = 42;
  Result<PackPlan> plan = PlanShards(objects, "w/", options);
  ASSERT_TRUE(plan.ok());
  ASSERT_GT(plan->shards.size(), 3u);
  std::vector<std::string> sample_order;
  std::map<std::string, uint64_t> shard_of_sample;
  for (const PlannedShard& shard : plan->shards) {
    const std::vector<PackMember>& m = shard.members;
    ASSERT_EQ(m.size() % 3, 0u);
    for (size_t i = 0; i < m.size(); i += 3) {
      std::string stem = SampleKey(m[i].name);
      EXPECT_EQ(SampleKey(m[i + 1].name), stem);
      EXPECT_EQ(SampleKey(m[i + 2].name), stem);
      // Within a sample, key order.
      EXPECT_EQ(m[i].name, stem + ".cls");
      EXPECT_EQ(m[i + 1].name, stem + ".jpg");
      EXPECT_EQ(m[i + 2].name, stem + ".meta.json");
      EXPECT_TRUE(shard_of_sample.emplace(stem, shard.index).second) << stem << " split";
      sample_order.push_back(stem);
    }
  }
  ASSERT_EQ(sample_order.size(), 40u);
  EXPECT_FALSE(std::is_sorted(sample_order.begin(), sample_order.end()));  // shuffled
  // Without a seed: key order.
  options.shuffle_seed.reset();
  plan = PlanShards(objects, "w/", options);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->shards[0].members[0].name, "x/s000.cls");
  ASSERT_EQ(plan->shards[0].members.size(), 9u);
  EXPECT_EQ(plan->shards[0].members[3].name, "x/s001.cls");
  EXPECT_EQ(plan->shards[1].members[0].name, "x/s003.cls");
}

TEST(PackPlan, RecordIOShufflesSingleObjects) {
  std::vector<ObjectInfo> objects;
  for (int i = 0; i < 30; ++i) {
    objects.push_back(Obj("r/s" + std::to_string(100 + i) + ".a", 10));
    objects.push_back(Obj("r/s" + std::to_string(100 + i) + ".b", 10));
  }
  PackPlanOptions options;
  options.format = PackFormat::kRecordIO;
  options.shuffle_seed = 3;
  Result<PackPlan> plan = PlanShards(objects, "r/", options);
  ASSERT_TRUE(plan.ok());
  const std::vector<PackMember>& m = plan->shards[0].members;
  ASSERT_EQ(m.size(), 60u);
  int adjacent_pairs = 0;
  for (size_t i = 0; i + 1 < m.size(); ++i) adjacent_pairs += SampleKey(m[i].name) == SampleKey(m[i + 1].name);
  EXPECT_LT(adjacent_pairs, 30);  // objects, not samples, were shuffled
}

TEST(PackPlan, SampleKey) {
  EXPECT_EQ(SampleKey("a/b.c/x01.jpg"), "a/b.c/x01");
  EXPECT_EQ(SampleKey("x01.seg.png"), "x01");
  EXPECT_EQ(SampleKey("noext"), "noext");
}

TEST(PackPlan, RefusesUnsafeNamesAndEmptySources) {
  Result<PackPlan> plan = PlanShards({Obj("d/../evil", 3)}, "d/", {});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("d/../evil"), std::string::npos);
  plan = PlanShards({Obj("d/", 0)}, "d/", {});
  EXPECT_FALSE(plan.ok());
  PackPlanOptions zero;
  zero.shard_size = 0;
  EXPECT_FALSE(PlanShards({Obj("d/a", 1)}, "d/", zero).ok());
}

}  // namespace
}  // namespace trainfeed
