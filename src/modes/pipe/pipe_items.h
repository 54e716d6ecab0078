// What a Pipe channel streams (contract §3.4, §4.4): a list of units, each streaming one or more
// items in order.
//
// A unit is what ShuffleConfig permutes and ShardedByS3Key shares out: an object of an S3Prefix
// listing (in listing order), a ManifestFile entry (in manifest order) or an AugmentedManifestFile
// line (in line order). A prefix object or manifest entry streams one item, its bytes; an
// augmented-manifest line streams one item per AttributeNames entry: the referenced object's bytes
// for a `-ref` attribute, the value's text otherwise. With RecordWrapperType=RecordIO every item
// becomes one record. Every object's size and ETag are known before it is planned (from the
// listing, or a HEAD), so the prefetcher can plan ranged parts and budget bytes up front, and every
// GET is pinned to that ETag: an object replaced mid-job fails the epoch instead of mixing versions.
//
// An S3Prefix channel without ShuffleConfig streams in listing order, so it need not wait for the
// whole listing: the listing goes on in the background, page by page, while the prefetcher plans
// the items already listed. The first byte of a prefix of millions of objects then waits for one
// page, not thousands. A ManifestFile's HEADs stream in the same way. A shuffled epoch needs the
// whole list first (its permutation covers it).
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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

// Append-only items that one thread may grow while others read the ones already there. Storage is
// segments of doubling size that never move, so an item's address is stable and reading index
// i < size() needs no lock: size() is published after the item is complete.
class ItemList {
 public:
  ItemList() = default;
  ~ItemList();
  ItemList(const ItemList&) = delete;
  ItemList& operator=(const ItemList&) = delete;

  size_t size() const { return size_.load(std::memory_order_acquire); }
  bool empty() const { return size() == 0; }
  // REQUIRES: i < size().
  const PipeItem& operator[](size_t i) const { return *Slot(i); }
  // For filling in items before anyone else reads them (HEAD results).
  PipeItem& operator[](size_t i) { return *Slot(i); }
  // Appends and publishes one item. One writer at a time.
  void push_back(PipeItem item);

 private:
  static constexpr size_t kFirstSegment = 1024;  // items; segment k holds kFirstSegment << k
  static constexpr int kSegments = 48;           // enough for 2^57 items
  PipeItem* Slot(size_t i) const;

  std::array<PipeItem*, kSegments> segments_{};  // raw storage; items [0, size_) are constructed
  std::atomic<size_t> size_{0};
};

// The stores are thread-safe (object_store.h); the items are read-only once listed, so the
// prefetcher's threads share them without locks.
struct PipeItems {
  PipeItems() = default;
  ~PipeItems();  // stops and joins a streamed listing
  PipeItems(const PipeItems&) = delete;
  PipeItems& operator=(const PipeItems&) = delete;

  std::vector<std::unique_ptr<ObjectStore>> stores;
  ItemList items;
  // Unit u streams items [unit_begin[u], unit_begin[u + 1]). Empty while every unit is one item,
  // as in a (streamed) prefix listing.
  std::vector<uint64_t> unit_begin;

  uint64_t unit_count() const { return unit_begin.empty() ? items.size() : unit_begin.size() - 1; }
  // Appends a unit holding the given items. Not while a listing streams in.
  void AddUnit(std::vector<PipeItem> unit_items);
  // "s3://bucket/key" (the store's naming) or the text item's `where`.
  std::string Describe(const PipeItem& item) const;
  std::string Describe(uint64_t item) const { return Describe(items[item]); }

  // ---- A listing that streams in ----
  // Appends one page's items (one per unit); `list` runs on a thread of its own and returns when
  // the listing is complete, failed (its status), or `stop` turned true.
  using PageLister =
      std::function<Status(const std::function<void(std::vector<PipeItem>)>& add_page,
                           const std::atomic<bool>& stop)>;
  void StreamListing(PageLister list);
  // False while a streamed listing may still add items.
  bool listing_done() const;
  // The listing's failure, once listing_done(); OK otherwise.
  Status listing_status() const;
  // Blocks until listing_done().
  void WaitListed() const;
  // Called after every page added and when the listing ends, from the listing's thread; replaces
  // any earlier one, and an empty function removes it (once that returns, it is not called).
  // Const: registering an observer changes no item.
  void OnListingProgress(std::function<void()> callback) const;

 private:
  void ListingProgressed();

  // The prefetcher reads these two under its own lock, which the progress callback takes: so
  // not guarded by listing_mu_. listing_status_ is written once, before listing_done_ turns true.
  std::atomic<bool> listing_done_{true};
  Status listing_status_;
  mutable std::mutex listing_mu_;
  mutable std::condition_variable listing_cv_;  // listing_done_ turned true
  mutable std::function<void()> on_progress_;   // Guarded by listing_mu_.
  std::atomic<bool> stop_listing_{false};
  std::thread lister_;
};

// The item indices `shard` streams in `epoch`, in order: ItemsForHost over the units (so the
// permutation depends on the seed and the real epoch number), each unit expanded to its items.
// REQUIRES: items.listing_done().
std::vector<uint64_t> EpochItems(const PipeItems& items, std::optional<int64_t> seed,
                                 uint64_t epoch, const HostShard& shard);

// Without a seed, the item at `position` of the shard's epoch order: what EpochItems would hold
// there, computed from the position alone, so it works while the listing streams in. Only for
// lists of one item per unit.
uint64_t ListingOrderItem(uint64_t position, const HostShard& shard);

}  // namespace trainfeed
