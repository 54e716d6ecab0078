#include "modes/pipe/pipe_items.h"

#include <bit>
#include <new>

namespace trainfeed {

namespace {

// Segment k starts at item kFirst * (2^k - 1).
struct SegmentPlace {
  int segment;
  size_t offset;
};

SegmentPlace Place(size_t i, size_t first) {
  const size_t q = i / first + 1;
  const int k = std::bit_width(q) - 1;
  return {k, i - first * ((size_t{1} << k) - 1)};
}

}  // namespace

ItemList::~ItemList() {
  const size_t n = size_.load();
  for (size_t i = 0; i < n; ++i) Slot(i)->~PipeItem();
  for (int k = 0; k < kSegments && segments_[k] != nullptr; ++k) {
    ::operator delete(segments_[k], std::align_val_t{alignof(PipeItem)});
  }
}

PipeItem* ItemList::Slot(size_t i) const {
  SegmentPlace p = Place(i, kFirstSegment);
  return segments_[p.segment] + p.offset;
}

void ItemList::push_back(PipeItem item) {
  const size_t n = size_.load(std::memory_order_relaxed);
  SegmentPlace p = Place(n, kFirstSegment);
  if (segments_[p.segment] == nullptr) {
    // Raw storage: a large segment stays virtual until items are written into it.
    segments_[p.segment] = static_cast<PipeItem*>(::operator new(
        (kFirstSegment << p.segment) * sizeof(PipeItem), std::align_val_t{alignof(PipeItem)}));
  }
  new (segments_[p.segment] + p.offset) PipeItem(std::move(item));
  size_.store(n + 1, std::memory_order_release);
}

PipeItems::~PipeItems() {
  stop_listing_.store(true);
  if (lister_.joinable()) lister_.join();
}

void PipeItems::AddUnit(std::vector<PipeItem> unit_items) {
  // Until now every unit was one item; the table starts here.
  if (unit_begin.empty()) {
    for (uint64_t i = 0; i <= items.size(); ++i) unit_begin.push_back(i);
  }
  for (PipeItem& item : unit_items) items.push_back(std::move(item));
  unit_begin.push_back(items.size());
}

std::string PipeItems::Describe(const PipeItem& item) const {
  if (item.is_text) return item.where;
  if (item.store < stores.size() && stores[item.store]) {
    return stores[item.store]->Describe(item.object);
  }
  return item.object.bucket + "/" + item.object.key;
}

void PipeItems::StreamListing(PageLister list) {
  listing_done_.store(false);
  lister_ = std::thread([this, list = std::move(list)] {
    Status status = list(
        [this](std::vector<PipeItem> page) {
          for (PipeItem& item : page) items.push_back(std::move(item));
          ListingProgressed();
        },
        stop_listing_);
    listing_status_ = std::move(status);
    {
      std::lock_guard<std::mutex> lock(listing_mu_);
      listing_done_.store(true, std::memory_order_release);
    }
    listing_cv_.notify_all();
    ListingProgressed();
  });
}

void PipeItems::ListingProgressed() {
  std::lock_guard<std::mutex> lock(listing_mu_);
  if (on_progress_) on_progress_();
}

bool PipeItems::listing_done() const { return listing_done_.load(std::memory_order_acquire); }

Status PipeItems::listing_status() const { return listing_done() ? listing_status_ : OkStatus(); }

void PipeItems::WaitListed() const {
  std::unique_lock<std::mutex> lock(listing_mu_);
  listing_cv_.wait(lock, [this] { return listing_done(); });
}

void PipeItems::OnListingProgress(std::function<void()> callback) const {
  std::lock_guard<std::mutex> lock(listing_mu_);
  on_progress_ = std::move(callback);
}

std::vector<uint64_t> EpochItems(const PipeItems& items, std::optional<int64_t> seed,
                                 uint64_t epoch, const HostShard& shard) {
  std::vector<uint64_t> units = ItemsForHost(items.unit_count(), seed, epoch, shard);
  if (items.unit_begin.empty()) return units;  // one item per unit: the same
  std::vector<uint64_t> order;
  order.reserve(units.size());
  for (uint64_t u : units) {
    for (uint64_t i = items.unit_begin[u]; i < items.unit_begin[u + 1]; ++i) order.push_back(i);
  }
  return order;
}

uint64_t ListingOrderItem(uint64_t position, const HostShard& shard) {
  // TakesItem gives position p of the identity order to host p mod n.
  return shard.sharded ? shard.host_index + position * shard.host_count : position;
}

}  // namespace trainfeed
