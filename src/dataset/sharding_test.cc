#include "dataset/sharding.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <numeric>
#include <set>

namespace trainfeed {
namespace {

using Order = std::vector<uint64_t>;

Order Identity(uint64_t n) {
  Order order(n);
  std::iota(order.begin(), order.end(), uint64_t{0});
  return order;
}

bool IsPermutation(Order order) {
  std::sort(order.begin(), order.end());
  return order == Identity(order.size());
}

// Golden values: computed from the algorithm in sharding.h by an independent implementation in
// another language. If one of these fails, every shuffled job would see a different order.
TEST(EpochOrder, GoldenPermutations) {
  EXPECT_EQ(EpochOrder(10, 42, 0), (Order{0, 3, 5, 7, 9, 8, 2, 1, 4, 6}));
  EXPECT_EQ(EpochOrder(10, 42, 1), (Order{6, 5, 1, 4, 7, 3, 2, 9, 8, 0}));
  EXPECT_EQ(EpochOrder(10, -1, 0), (Order{6, 5, 7, 4, 9, 8, 2, 1, 3, 0}));
  EXPECT_EQ(EpochOrder(10, 0, 0), (Order{4, 9, 2, 5, 1, 7, 6, 0, 3, 8}));
  EXPECT_EQ(EpochOrder(20, 123456789, 7),
            (Order{6, 5, 3, 18, 9, 10, 19, 17, 14, 11, 0, 12, 13, 15, 8, 4, 7, 16, 2, 1}));
  EXPECT_EQ(EpochOrder(5, std::numeric_limits<int64_t>::min(), 3), (Order{4, 0, 1, 3, 2}));
  EXPECT_EQ(
      EpochOrder(6, std::numeric_limits<int64_t>::max(), std::numeric_limits<uint64_t>::max()),
      (Order{5, 3, 2, 4, 0, 1}));

  Order big = EpochOrder(1000, 2024, 5);
  EXPECT_EQ(Order(big.begin(), big.begin() + 8), (Order{679, 654, 830, 16, 797, 935, 924, 401}));
  EXPECT_EQ(Order(big.end() - 8, big.end()), (Order{226, 307, 232, 461, 735, 111, 433, 810}));
}

TEST(EpochOrder, IdentityWithoutSeed) {
  EXPECT_EQ(EpochOrder(7, std::nullopt, 0), Identity(7));
  EXPECT_EQ(EpochOrder(7, std::nullopt, 3), Identity(7));
}

TEST(EpochOrder, ZeroAndOneItems) {
  EXPECT_TRUE(EpochOrder(0, std::nullopt, 0).empty());
  EXPECT_TRUE(EpochOrder(0, 42, 5).empty());
  EXPECT_EQ(EpochOrder(1, std::nullopt, 0), (Order{0}));
  EXPECT_EQ(EpochOrder(1, 42, 5), (Order{0}));
}

TEST(EpochOrder, DeterministicPerSeedAndEpoch) {
  for (uint64_t n : {2u, 3u, 10u, 97u, 1000u}) {
    for (uint64_t epoch : {0u, 1u, 2u}) {
      Order order = EpochOrder(n, 42, epoch);
      EXPECT_TRUE(IsPermutation(order)) << n;
      EXPECT_EQ(order, EpochOrder(n, 42, epoch)) << n;
    }
  }
  for (uint64_t n = 10; n <= 200; n += 19) {
    EXPECT_NE(EpochOrder(n, 42, 0), EpochOrder(n, 42, 1)) << n;
    EXPECT_NE(EpochOrder(n, 42, 1), EpochOrder(n, 42, 2)) << n;
    EXPECT_NE(EpochOrder(n, 42, 0), EpochOrder(n, 43, 0)) << n;
    EXPECT_NE(EpochOrder(n, 42, 0), Identity(n)) << n;
  }
}

// Every position is equally likely to receive every item: a coarse check against an off-by-one
// in the Fisher-Yates bounds (which would, e.g., never leave an item in place).
TEST(EpochOrder, RoughlyUniform) {
  constexpr uint64_t kN = 5;
  constexpr int kTrials = 20000;
  int counts[kN][kN] = {};
  for (int t = 0; t < kTrials; ++t) {
    Order order = EpochOrder(kN, t, 0);
    for (uint64_t pos = 0; pos < kN; ++pos) ++counts[pos][order[pos]];
  }
  for (uint64_t pos = 0; pos < kN; ++pos) {
    for (uint64_t item = 0; item < kN; ++item) {
      EXPECT_NEAR(counts[pos][item], kTrials / kN, 300) << pos << " " << item;
    }
  }
}

TEST(EpochOrder, MillionItems) {
  auto start = std::chrono::steady_clock::now();
  Order order = EpochOrder(1'000'000, 7, 3);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(order.size(), 1'000'000u);
  EXPECT_EQ(Order(order.begin(), order.begin() + 6),
            (Order{563729, 469789, 449772, 977629, 251674, 178097}));
  EXPECT_EQ(Order(order.end() - 6, order.end()),
            (Order{55480, 63539, 995649, 377570, 981737, 277719}));
  uint64_t fingerprint = 0;
  for (uint64_t i = 0; i < order.size(); ++i) fingerprint += i * order[i];
  EXPECT_EQ(fingerprint, 249941194025052372u);
  EXPECT_TRUE(IsPermutation(std::move(order)));
  EXPECT_LT(seconds, 1.0);
}

TEST(TakesItem, FullyReplicatedTakesEverything) {
  HostShard shard{.host_index = 1, .host_count = 3, .sharded = false};
  for (uint64_t pos = 0; pos < 10; ++pos) EXPECT_TRUE(TakesItem(pos, shard));
}

TEST(TakesItem, ShardedTakesPositionModHosts) {
  HostShard shard{.host_index = 1, .host_count = 3, .sharded = true};
  std::vector<uint64_t> taken;
  for (uint64_t pos = 0; pos < 10; ++pos) {
    if (TakesItem(pos, shard)) taken.push_back(pos);
  }
  EXPECT_EQ(taken, (Order{1, 4, 7}));
  EXPECT_FALSE(TakesItem(0, HostShard{.host_index = 0, .host_count = 0, .sharded = true}));
}

TEST(ItemsForHost, ShardsAreDisjointAndCompleteEveryEpoch) {
  constexpr uint64_t kHosts = 3;
  for (std::optional<int64_t> seed : {std::optional<int64_t>(), std::optional<int64_t>(42)}) {
    for (uint64_t n : {0u, 1u, 2u, 3u, 10u, 11u, 100u}) {
      std::vector<Order> previous_epoch;
      for (uint64_t epoch = 0; epoch < 2; ++epoch) {
        std::vector<Order> shards;
        Order all;
        for (uint64_t host = 0; host < kHosts; ++host) {
          HostShard shard{.host_index = host, .host_count = kHosts, .sharded = true};
          Order items = ItemsForHost(n, seed, epoch, shard);
          // About 1/n of the items each, by count.
          EXPECT_LE(items.size(), (n + kHosts - 1) / kHosts);
          EXPECT_GE(items.size(), n / kHosts);
          // Streaming order is the epoch order restricted to this host.
          Order expected;
          Order order = EpochOrder(n, seed, epoch);
          for (uint64_t pos = 0; pos < n; ++pos) {
            if (TakesItem(pos, shard)) expected.push_back(order[pos]);
          }
          EXPECT_EQ(items, expected);
          all.insert(all.end(), items.begin(), items.end());
          shards.push_back(std::move(items));
        }
        EXPECT_EQ(all.size(), n);
        EXPECT_TRUE(IsPermutation(all)) << "n=" << n << " epoch=" << epoch;
        if (n >= 10 && epoch == 1) {
          if (seed.has_value()) {
            EXPECT_NE(shards, previous_epoch) << "a reshuffle moves items between hosts";
          } else {
            EXPECT_EQ(shards, previous_epoch) << "without a seed every epoch is the same";
          }
        }
        previous_epoch = std::move(shards);
      }
    }
  }
}

TEST(ItemsForHost, FullyReplicatedGetsTheWholeEpochOrder) {
  HostShard shard{.host_index = 2, .host_count = 3, .sharded = false};
  EXPECT_EQ(ItemsForHost(10, 42, 1, shard), EpochOrder(10, 42, 1));
  EXPECT_EQ(ItemsForHost(4, std::nullopt, 0, shard), (Order{0, 1, 2, 3}));
}

TEST(ItemsForHost, UnshuffledShardsAreStrided) {
  HostShard shard{.host_index = 0, .host_count = 3, .sharded = true};
  EXPECT_EQ(ItemsForHost(7, std::nullopt, 0, shard), (Order{0, 3, 6}));
  shard.host_index = 2;
  EXPECT_EQ(ItemsForHost(7, std::nullopt, 5, shard), (Order{2, 5}));
}

TEST(ItemsForHost, MoreHostsThanItems) {
  constexpr uint64_t kHosts = 5;
  for (std::optional<int64_t> seed : {std::optional<int64_t>(), std::optional<int64_t>(9)}) {
    Order all;
    for (uint64_t host = 0; host < kHosts; ++host) {
      Order items = ItemsForHost(
          3, seed, 0, HostShard{.host_index = host, .host_count = kHosts, .sharded = true});
      EXPECT_EQ(items.size(), host < 3 ? 1u : 0u) << host;
      all.insert(all.end(), items.begin(), items.end());
    }
    EXPECT_TRUE(IsPermutation(all));
    EXPECT_EQ(all.size(), 3u);
  }
  EXPECT_TRUE(
      ItemsForHost(0, 1, 0, HostShard{.host_index = 0, .host_count = 2, .sharded = true}).empty());
}

TEST(ItemsForHost, HugeHostCountDoesNotWrap) {
  HostShard shard{
      .host_index = 1, .host_count = std::numeric_limits<uint64_t>::max(), .sharded = true};
  EXPECT_EQ(ItemsForHost(3, std::nullopt, 0, shard), (Order{1}));
}

}  // namespace
}  // namespace trainfeed
