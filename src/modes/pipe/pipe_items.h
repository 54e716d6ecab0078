// What a Pipe channel streams (contract §3.4, §4.4): a list of units, each streaming one or more
// items in order.
//
// A unit is what ShuffleConfig permutes and ShardedByS3Key shares out: an object of an S3Prefix
// listing (in listing order), a ManifestFile entry (in manifest order) or an AugmentedManifestFile
// line (in line order). A prefix object or manifest entry streams one item, its bytes; an
// augmented-manifest line streams one item per AttributeNames entry: the referenced object's bytes
// for a `-ref` attribute, the value's text otherwise. With RecordWrapperType=RecordIO every item
// becomes one record. Every object's size and ETag are known before streaming starts (from the
// listing, or a HEAD), so the prefetcher can plan ranged parts and budget bytes up front, and every
// GET is pinned to that ETag: an object replaced mid-job fails the epoch instead of mixing versions.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataset/sharding.h"
#include "store/object_store.h"

namespace trainfeed {

struct PipeItem {
  // Literal bytes (a non-ref augmented-manifest attribute) instead of an object.
  bool is_text = false;
  std::string text;   // is_text only
  std::string where;  // is_text only: "s3://b/manifest.jsonl line 3 attribute 'label'"
  // An object: stores[store] holds it.
  uint32_t store = 0;
  ObjectRef object;
  uint64_t size = 0;
  std::string etag;  // "" = not pinned (a store that reports none)
};

// Read-only once built, so the prefetcher's threads share it without locks. The stores are
// thread-safe (object_store.h).
struct PipeItems {
  std::vector<std::unique_ptr<ObjectStore>> stores;
  std::vector<PipeItem> items;
  // Unit u streams items [unit_begin[u], unit_begin[u + 1]); size is units + 1.
  std::vector<uint64_t> unit_begin{0};

  uint64_t unit_count() const { return unit_begin.size() - 1; }
  // Appends a unit holding the given items.
  void AddUnit(std::vector<PipeItem> unit_items);
  // "s3://bucket/key" (the store's naming) or the text item's `where`.
  std::string Describe(const PipeItem& item) const;
  std::string Describe(uint64_t item) const { return Describe(items[item]); }
};

// The item indices `shard` streams in `epoch`, in order: ItemsForHost over the units (so the
// permutation depends on the seed and the real epoch number), each unit expanded to its items.
std::vector<uint64_t> EpochItems(const PipeItems& items, std::optional<int64_t> seed,
                                 uint64_t epoch, const HostShard& shard);

}  // namespace trainfeed
