// Which items (objects, manifest entries or augmented-manifest lines) a host streams in an epoch,
// and in what order: ShuffleConfig and ShardedByS3Key (contract §4.5, §7, §10).
//
// Items are indices into the caller's list sorted by key (UTF-8 bytes); for augmented manifests,
// line order. Each epoch visits them in EpochOrder; ShardedByS3Key gives the item at position i of
// that order to host i mod n. Every host computes the same order from (Seed, epoch) alone, so
// hosts agree on disjoint, complete shards without talking, and a reshuffle also moves items
// between hosts. File mode uses epoch 0.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace trainfeed {

// The permutation of [0, item_count) to visit in `epoch`: the identity without a seed; otherwise
// exactly this algorithm, which other languages can reproduce bit for bit (std::shuffle and
// std::uniform_int_distribution differ between standard libraries, so they are not used).
// All arithmetic is on unsigned 64-bit integers, wrapping modulo 2^64:
//
//   mix64(z):  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//              z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//              return z ^ (z >> 31)
//   state   =  mix64(mix64(uint64(seed)) ^ epoch)        seed as 64-bit two's complement
//   next():    state = state + 0x9E3779B97F4A7C15        (SplitMix64)
//              return mix64(state)
//   bounded(r), r >= 1, uniform in [0, r) (Lemire's multiply-and-reject):
//              m = next() * r as a 128-bit product; lo = m mod 2^64
//              if lo < r:
//                t = (2^64 - r) mod r
//                while lo < t: m = next() * r as a 128-bit product; lo = m mod 2^64
//              return m >> 64
//   order = [0, 1, ..., item_count - 1]
//   for i = item_count - 1 down to 1:                     (Fisher-Yates)
//     j = bounded(i + 1); swap(order[i], order[j])
//
// Golden values live in sharding_test.cc; changing any of this reshuffles every job's data.
// Memory: 8 bytes per item (10M items: 80 MB).
std::vector<uint64_t> EpochOrder(uint64_t item_count, std::optional<int64_t> seed, uint64_t epoch);

// One host's place in the channel's distribution.
struct HostShard {
  uint64_t host_index = 0;  // position of this host in resourceconfig.json "hosts"
  uint64_t host_count = 1;  // hosts receiving the channel
  bool sharded = false;     // ShardedByS3Key; false for FullyReplicated
};

// Whether the host streams the item at `position_in_epoch_order`: always when fully replicated;
// with ShardedByS3Key when position mod host_count == host_index.
// REQUIRES: host_index < host_count (a host_count of 0 takes nothing).
bool TakesItem(uint64_t position_in_epoch_order, const HostShard& shard);

// The item indices this host streams in `epoch`, in streaming order: EpochOrder filtered by
// TakesItem. Empty when there are more hosts than items and this host is past the last one.
std::vector<uint64_t> ItemsForHost(uint64_t item_count, std::optional<int64_t> seed, uint64_t epoch,
                                   const HostShard& shard);

}  // namespace trainfeed
