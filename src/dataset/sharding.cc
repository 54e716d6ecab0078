#include "dataset/sharding.h"

#include <numeric>
#include <utility>

namespace trainfeed {
namespace {

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// 64 x 64 -> 128-bit product from 32-bit halves: portable, unlike unsigned __int128.
void Multiply128(uint64_t a, uint64_t b, uint64_t* hi, uint64_t* lo) {
  uint64_t a_lo = a & 0xFFFFFFFFULL, a_hi = a >> 32;
  uint64_t b_lo = b & 0xFFFFFFFFULL, b_hi = b >> 32;
  uint64_t lo_lo = a_lo * b_lo;
  uint64_t hi_lo = a_hi * b_lo;
  uint64_t lo_hi = a_lo * b_hi;
  uint64_t hi_hi = a_hi * b_hi;
  uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xFFFFFFFFULL) + lo_hi;
  *hi = hi_hi + (hi_lo >> 32) + (cross >> 32);
  *lo = (cross << 32) | (lo_lo & 0xFFFFFFFFULL);
}

// SplitMix64, with the bounded draw the header specifies.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t state) : state_(state) {}

  uint64_t Next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return Mix64(state_);
  }

  // Uniform in [0, range) without modulo bias. REQUIRES: range >= 1.
  uint64_t Bounded(uint64_t range) {
    uint64_t hi, lo;
    Multiply128(Next(), range, &hi, &lo);
    if (lo < range) {
      uint64_t threshold = (0 - range) % range;  // 2^64 mod range
      while (lo < threshold) Multiply128(Next(), range, &hi, &lo);
    }
    return hi;
  }

 private:
  uint64_t state_;
};

}  // namespace

std::vector<uint64_t> EpochOrder(uint64_t item_count, std::optional<int64_t> seed, uint64_t epoch) {
  std::vector<uint64_t> order(item_count);
  std::iota(order.begin(), order.end(), uint64_t{0});
  if (!seed.has_value() || item_count < 2) return order;
  SplitMix64 rng(Mix64(Mix64(static_cast<uint64_t>(*seed)) ^ epoch));
  // The swap targets do not depend on the array, so draw a batch of them first and prefetch:
  // on large lists each random swap is otherwise a cache miss, and that dominates the run time.
  constexpr uint64_t kBatch = 64;
  uint64_t targets[kBatch];
  uint64_t i = item_count - 1;
  while (i >= 1) {
    uint64_t batch = i < kBatch ? i : kBatch;
    for (uint64_t b = 0; b < batch; ++b) {
      targets[b] = rng.Bounded(i - b + 1);
#if defined(__GNUC__)
      __builtin_prefetch(&order[targets[b]], 1);
#endif
    }
    for (uint64_t b = 0; b < batch; ++b, --i) std::swap(order[i], order[targets[b]]);
  }
  return order;
}

bool TakesItem(uint64_t position_in_epoch_order, const HostShard& shard) {
  if (!shard.sharded) return true;
  if (shard.host_count == 0) return false;
  return position_in_epoch_order % shard.host_count == shard.host_index;
}

std::vector<uint64_t> ItemsForHost(uint64_t item_count, std::optional<int64_t> seed, uint64_t epoch,
                                   const HostShard& shard) {
  if (!shard.sharded) return EpochOrder(item_count, seed, epoch);
  std::vector<uint64_t> items;
  if (shard.host_count == 0 || shard.host_index >= item_count) return items;
  items.reserve((item_count - shard.host_index - 1) / shard.host_count + 1);
  // Without a seed the order is the identity, so skip building it.
  std::vector<uint64_t> order;
  if (seed.has_value()) order = EpochOrder(item_count, seed, epoch);
  for (uint64_t pos = shard.host_index;; pos += shard.host_count) {
    items.push_back(seed.has_value() ? order[pos] : pos);
    if (item_count - pos <= shard.host_count) break;  // not `pos < n`: pos + count may wrap
  }
  return items;
}

}  // namespace trainfeed
