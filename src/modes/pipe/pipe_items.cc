#include "modes/pipe/pipe_items.h"

namespace trainfeed {

void PipeItems::AddUnit(std::vector<PipeItem> unit_items) {
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

std::vector<uint64_t> EpochItems(const PipeItems& items, std::optional<int64_t> seed,
                                 uint64_t epoch, const HostShard& shard) {
  std::vector<uint64_t> units = ItemsForHost(items.unit_count(), seed, epoch, shard);
  if (items.items.size() == items.unit_count()) return units;  // one item per unit: the same
  std::vector<uint64_t> order;
  order.reserve(units.size());
  for (uint64_t u : units) {
    for (uint64_t i = items.unit_begin[u]; i < items.unit_begin[u + 1]; ++i) order.push_back(i);
  }
  return order;
}

}  // namespace trainfeed
