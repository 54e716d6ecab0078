#include "job/pipe_channel.h"

#include <map>
#include <mutex>
#include <vector>

#include "dataset/manifest.h"
#include "dataset/recordio.h"
#include "job/channels.h"
#include "modes/file/prefix_download.h"
#include "modes/pipe/resume_point.h"

namespace trainfeed {

namespace {

// Manifests are read whole, as in File mode.
constexpr uint64_t kMaxManifestBytes = 1ull << 30;

// One store per bucket the channel touches (augmented manifests may point anywhere).
class StoreSet {
 public:
  StoreSet(PipeItems& items, const StoreOpenOptions& options) : items_(items), options_(options) {}
  Result<uint32_t> For(const StoreUri& uri) {
    std::string id = uri.scheme == StoreUri::Scheme::kS3 ? "s3:" + uri.bucket : "file:";
    auto it = index_.find(id);
    if (it != index_.end()) return it->second;
    TF_ASSIGN_OR_RETURN(std::unique_ptr<ObjectStore> store, OpenObjectStore(uri, options_));
    items_.stores.push_back(std::move(store));
    uint32_t n = static_cast<uint32_t>(items_.stores.size() - 1);
    index_.emplace(id, n);
    return n;
  }

 private:
  PipeItems& items_;
  const StoreOpenOptions& options_;
  std::map<std::string, uint32_t> index_;
};

PipeItem ObjectItem(uint32_t store, ObjectRef object) {
  PipeItem item;
  item.store = store;
  item.object = std::move(object);
  return item;
}

// A prefix's listing as pipe items, a page at a time. The first page is short: the first byte
// waits for it, not for a full 1,000 keys.
class PrefixPager {
 public:
  PrefixPager(ObjectStore& store, const StoreUri& uri, uint32_t store_index)
      : pages_(store, uri, kFirstPageKeys), bucket_(uri.bucket), store_index_(store_index) {}
  bool done() const { return !pages_.more(); }
  Result<std::vector<PipeItem>> Next() {
    TF_ASSIGN_OR_RETURN(std::vector<ObjectInfo> page, pages_.Next());
    std::vector<PipeItem> items;
    items.reserve(page.size());
    for (ObjectInfo& info : page) {
      PipeItem item = ObjectItem(store_index_, {bucket_, std::move(info.key)});
      item.size = info.size;
      item.etag = std::move(info.etag);
      items.push_back(std::move(item));
    }
    return items;
  }

 private:
  static constexpr int kFirstPageKeys = 32;
  PrefixPages pages_;
  std::string bucket_;
  uint32_t store_index_;
};

// Sizes and ETags of `todo`'s objects, `concurrency` HEADs at a time. The first failure (a missing
// object, no permission) ends it and is returned.
Status HeadObjects(const PipeItems& items, const std::vector<PipeItem*>& todo, int concurrency) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;  // Guarded by mu.
  auto work = [&] {
    for (size_t n; !failed.load() && (n = next.fetch_add(1)) < todo.size();) {
      PipeItem& item = *todo[n];
      Result<ObjectInfo> info = items.stores[item.store]->Head(item.object);
      if (!info.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.exchange(true)) {
          std::string name = items.Describe(item);
          first_error = info.status().message().find(name) == std::string::npos
                            ? info.status().WithContext("HEAD " + name)
                            : info.status();
        }
        return;
      }
      item.size = info->size;
      item.etag = info->etag;
    }
  };
  std::vector<std::thread> threads;
  size_t count = std::min<size_t>(std::max(concurrency, 1), todo.size());
  for (size_t i = 0; i < count; ++i) threads.emplace_back(work);
  for (std::thread& t : threads) t.join();
  return first_error;
}

// Every object item of a fully loaded channel (an augmented manifest's -ref attributes).
Status HeadAll(PipeItems& items, int concurrency) {
  std::vector<PipeItem*> todo;
  for (size_t i = 0; i < items.items.size(); ++i) {
    if (!items.items[i].is_text) todo.push_back(&items.items[i]);
  }
  return HeadObjects(items, todo, concurrency);
}

// A shuffled order covers every item: such a channel starts once its listing is complete.
Status WaitIfShuffled(const PipeItems& items, const PipeChannelConfig& config) {
  if (!config.shuffle_seed) return OkStatus();
  items.WaitListed();
  return items.listing_status();
}

// ManifestFile entries, sized and pinned by HEADs in manifest order: the first batch before the
// channel starts (so a manifest naming missing objects fails at once, before any FIFO), the rest
// on the listing thread while the channel streams. The first byte of a manifest of a million
// entries waits for 32 HEADs, not a million.
Status AddHeadedEntries(PipeItems& items, std::vector<PipeItem> entries,
                        const PipeChannelConfig& config, const std::string& where) {
  constexpr size_t kFirstBatch = 32;
  constexpr size_t kBatch = 1024;
  auto head = [&items, concurrency = config.concurrency](std::vector<PipeItem>& all, size_t begin,
                                                         size_t end) {
    std::vector<PipeItem*> todo;
    for (size_t i = begin; i < end; ++i) todo.push_back(&all[i]);
    return HeadObjects(items, todo, concurrency);
  };
  const size_t first = std::min(entries.size(), kFirstBatch);
  if (Status s = head(entries, 0, first); !s.ok()) return s.WithContext(where);
  for (size_t i = 0; i < first; ++i) items.items.push_back(std::move(entries[i]));
  if (first == entries.size()) return OkStatus();
  items.StreamListing([entries = std::move(entries), first, head, where](
                          const auto& add_page, const std::atomic<bool>& stop) mutable {
    for (size_t begin = first; begin < entries.size() && !stop.load();) {
      const size_t end = std::min(entries.size(), begin + kBatch);
      if (Status s = head(entries, begin, end); !s.ok()) return s.WithContext(where);
      add_page(std::vector<PipeItem>(std::make_move_iterator(entries.begin() + begin),
                                     std::make_move_iterator(entries.begin() + end)));
      begin = end;
    }
    return OkStatus();
  });
  return WaitIfShuffled(items, config);
}

// Starts the stream at the token's point, after checking it against the items.
Status ApplyResumeToken(const std::string& token, const PipeItems& items, FifoChannelOptions& o) {
  TF_ASSIGN_OR_RETURN(ResumePoint point, ParseResumeToken(token));
  const std::string what = "resume token " + token;
  if (point.offset > 0 && (o.stream.gzip || o.stream.recordio)) {
    return InvalidArgumentError(what + ": a byte offset, but RecordIO or Gzip streams resume at "
                                       "whole objects");
  }
  // The point's epoch order covers the whole listing.
  items.WaitListed();
  TF_RETURN_IF_ERROR(items.listing_status());
  // One cache: a shuffled order of millions of items is computed once, not per lookup.
  EpochOrderCache orders;
  std::optional<uint64_t> item =
      ItemAtPosition(items, o.prefetch, point.epoch, point.position, &orders);
  auto pins = [&](std::optional<uint64_t> i) { return i && ItemCheck(items, *i) == point.check; };
  // Just past an item (the epoch's end, or an item unlisted when the token was written): the
  // check is of the item before.
  const bool pinned_before =
      point.offset == 0 && point.position > 0 &&
      pins(ItemAtPosition(items, o.prefetch, point.epoch, point.position - 1, &orders));
  const bool at_start = point.position == 0 && point.offset == 0;
  if (!item) {
    // Past the epoch's last item: that epoch is over. Anything else no longer fits the data.
    const uint64_t length =
        orders.epoch == point.epoch
            ? orders.order.size()
            : EpochItems(items, o.prefetch.seed, point.epoch, o.prefetch.shard).size();
    if (point.position != length || point.offset != 0 || !(pinned_before || at_start)) {
      return InvalidArgumentError(what + ": epoch " + std::to_string(point.epoch) + " has " +
                                  std::to_string(length) +
                                  " items now, not the ones the token was written for (the data "
                                  "changed)");
    }
    point = {point.epoch + 1, 0, 0, 0};
  } else {
    const PipeItem& at = items.items[*item];
    const uint64_t size = at.is_text ? at.text.size() : at.size;
    if (!(at_start || pins(item) || pinned_before) || (point.offset > 0 && point.offset >= size)) {
      return InvalidArgumentError(what + ": position " + std::to_string(point.position) +
                                  " of epoch " + std::to_string(point.epoch) + " is now " +
                                  items.Describe(*item) +
                                  ", not the object the token was written for (the data changed)");
    }
  }
  if (o.prefetch.epoch_count) {
    // --epochs counts from epoch 0, as in the run being resumed.
    const uint64_t total = o.prefetch.first_epoch + *o.prefetch.epoch_count;
    if (point.epoch >= total) {
      return InvalidArgumentError(what + ": all " + std::to_string(total) +
                                  " epochs were already streamed");
    }
    o.prefetch.epoch_count = total - point.epoch;
  }
  o.prefetch.first_epoch = point.epoch;
  o.prefetch.first_position = point.position;
  o.prefetch.first_offset = point.offset;
  return OkStatus();
}

}  // namespace

PipeChannelConfig PipeConfigForChannel(const ChannelSpec& channel) {
  PipeChannelConfig config;
  config.name = channel.name;
  if (channel.s3) config.source = *channel.s3;
  config.compression_type = channel.compression_type;
  config.record_wrapper_type = channel.record_wrapper_type;
  config.shuffle_seed = channel.shuffle_seed;
  return config;
}

Result<std::unique_ptr<PipeItems>> LoadPipeItems(const PipeChannelConfig& config,
                                                 const StoreOpenOptions& options) {
  const std::string where = "channel '" + config.name + "'";
  const S3DataSourceSpec& source = config.source;
  Result<StoreUri> parsed = ParseStoreUri(source.s3_uri);
  if (!parsed.ok()) return parsed.status().WithContext(where);
  const StoreUri& uri = *parsed;
  auto loaded = std::make_unique<PipeItems>();
  PipeItems& items = *loaded;
  StoreSet stores(items, options);
  Result<uint32_t> main_store = stores.For(uri);
  if (!main_store.ok()) return main_store.status().WithContext(where);
  ObjectStore& store = *items.stores[*main_store];

  if (source.s3_data_type.empty() || source.s3_data_type == "S3Prefix") {
    // The first page is listed here, so an empty prefix or a missing bucket fails the channel
    // before any FIFO exists; the rest streams in (or is waited for, when shuffled).
    PrefixPager pager(store, uri, *main_store);
    while (items.items.empty() && !pager.done()) {  // pages of folder markers hold nothing
      Result<std::vector<PipeItem>> page = pager.Next();
      if (!page.ok()) return page.status().WithContext(where);
      for (PipeItem& item : *page) items.items.push_back(std::move(item));
    }
    if (items.items.empty()) return NotFoundError(where + ": no objects under " + uri.ToString());
    if (!pager.done()) {
      items.StreamListing([pager = std::move(pager), where](const auto& add_page,
                                                           const std::atomic<bool>& stop) mutable {
        while (!pager.done() && !stop.load()) {
          Result<std::vector<PipeItem>> page = pager.Next();
          if (!page.ok()) return page.status().WithContext(where);
          add_page(std::move(*page));
        }
        return OkStatus();
      });
    }
    if (Status s = WaitIfShuffled(items, config); !s.ok()) return s;
    return loaded;
  }

  Result<std::string> text = ReadSmallObject(store, uri, kMaxManifestBytes);
  if (!text.ok()) return text.status().WithContext(where);
  if (source.s3_data_type == "ManifestFile") {
    Result<Manifest> manifest = ParseManifest(*text, uri.ToString());
    if (!manifest.ok()) return manifest.status().WithContext(where);
    if (manifest->keys.empty()) return NotFoundError(where + ": the manifest lists no objects");
    Result<uint32_t> s = stores.For(manifest->prefix);
    if (!s.ok()) return s.status().WithContext(where);
    std::vector<PipeItem> entries;
    entries.reserve(manifest->keys.size());
    for (std::string& key : manifest->keys) {
      entries.push_back(ObjectItem(*s, {manifest->prefix.bucket, std::move(key)}));
    }
    if (Status added = AddHeadedEntries(items, std::move(entries), config, where); !added.ok()) {
      return added;
    }
    return loaded;
  } else if (source.s3_data_type == "AugmentedManifestFile") {
    if (source.attribute_names.empty()) {
      return InvalidArgumentError(where + ": an AugmentedManifestFile needs AttributeNames");
    }
    AugmentedManifestReader reader(source.attribute_names, uri.ToString());
    size_t start = 0;
    for (uint64_t line_number = 1; start < text->size(); ++line_number) {
      size_t end = text->find('\n', start);
      if (end == std::string::npos) end = text->size();
      std::string_view line(text->data() + start, end - start);
      start = end + 1;
      Result<std::optional<AugmentedRecord>> record = reader.Next(line, line_number);
      if (!record.ok()) return record.status().WithContext(where);
      if (!*record) continue;
      std::vector<PipeItem> unit;
      for (AugmentedAttribute& a : (*record)->attributes) {
        if (!a.is_ref) {
          PipeItem item;
          item.is_text = true;
          item.text = std::move(a.value);
          item.where = uri.ToString() + " line " + std::to_string(line_number) + " attribute '" +
                       a.name + "'";
          unit.push_back(std::move(item));
          continue;
        }
        Result<StoreUri> ref = ParseStoreUri(a.value);
        if (!ref.ok()) return ref.status().WithContext(where);
        Result<uint32_t> s = stores.For(*ref);
        if (!s.ok()) return s.status().WithContext(where);
        unit.push_back(ObjectItem(*s, ref->ref()));
      }
      items.AddUnit(std::move(unit));
    }
    if (items.unit_count() == 0) {
      return NotFoundError(where + ": the augmented manifest " + uri.ToString() + " has no lines");
    }
  } else {
    return InvalidArgumentError(where + ": S3DataType '" + source.s3_data_type +
                                "' is not one of S3Prefix|ManifestFile|AugmentedManifestFile");
  }
  if (Status s = HeadAll(items, config.concurrency); !s.ok()) return s.WithContext(where);
  return loaded;
}

Result<FifoChannelOptions> FifoOptionsFor(const PipeChannelConfig& config, const PipeItems& items,
                                          const HostIdentity& hosts, const std::string& dir) {
  FifoChannelOptions o;
  o.dir = dir;
  o.channel = config.name;
  o.stream.gzip = config.compression_type == "Gzip";
  o.stream.recordio = config.record_wrapper_type == "RecordIO";
  uint64_t buffer = std::max<uint64_t>(config.buffer_bytes, 1 << 20);
  o.prefetch.budget_bytes = buffer;
  if (o.stream.gzip && o.stream.recordio) {
    // One inflated payload is held whole besides the compressed bytes in flight.
    o.prefetch.budget_bytes = buffer / 2;
    o.stream.max_inflated_bytes = std::min<uint64_t>(buffer / 2, kMaxRecordIOPartBytes);
  }
  o.prefetch.concurrency = config.concurrency;
  o.prefetch.seed = config.shuffle_seed;
  o.prefetch.shard = HostShard{hosts.index(), hosts.hosts.size(),
                               config.source.distribution == "ShardedByS3Key"};
  o.prefetch.first_epoch = config.first_epoch;
  o.prefetch.epoch_count = config.epochs;
  o.state_file = config.state_file;
  // A listing still streaming in has at least this host's first item when the pages so far
  // cover its index; otherwise only the whole listing can tell.
  if (o.prefetch.shard.sharded && o.prefetch.shard.host_index >= items.unit_count()) {
    items.WaitListed();
  }
  if (o.prefetch.shard.sharded && o.prefetch.shard.host_index >= items.unit_count()) {
    return NotFoundError("channel '" + config.name + "': this host (" + hosts.current_host +
                         ") gets none of the " + std::to_string(items.unit_count()) +
                         " items: more hosts than items");
  }
  if (!config.resume_token.empty()) {
    if (Status s = ApplyResumeToken(config.resume_token, items, o); !s.ok()) {
      return s.WithContext("channel '" + config.name + "'");
    }
  }
  return o;
}

PipeChannelStream::PipeChannelStream(PipeChannelConfig config, std::string dir,
                                     std::function<void(const std::string&)> log)
    : config_(std::move(config)), dir_(std::move(dir)), log_(std::move(log)) {}

PipeChannelStream::~PipeChannelStream() { (void)Stop(); }

Status PipeChannelStream::Start(const StoreOpenOptions& store, const HostIdentity& hosts) {
  Result<std::unique_ptr<PipeItems>> items = LoadPipeItems(config_, store);
  if (!items.ok()) return items.status();
  items_ = std::move(*items);
  Result<FifoChannelOptions> options = FifoOptionsFor(config_, *items_, hosts, dir_);
  if (!options.ok()) return options.status();
  if (Status s = PrepareFifos(dir_, config_.name, config_.first_epoch); !s.ok()) {
    return s.WithContext("channel '" + config_.name + "'");
  }
  options->cancel = &cancel_;
  options->on_report = [this](const std::string& line) {
    log_("channel '" + config_.name + "': " + line);
  };
  thread_ = std::thread([this, o = std::move(*options)] {
    Status s = RunFifoChannel(*items_, o);
    if (!s.ok() && !(s.code() == ErrorCode::kCancelled && cancel_.load())) {
      error_ = s;
      failed_.store(true);
      log_("error: " + s.ToString());
    }
  });
  return OkStatus();
}

Status PipeChannelStream::Stop() {
  cancel_.store(true);
  if (thread_.joinable()) thread_.join();
  RemoveFifos(dir_, config_.name);
  return failed_.load() ? error_ : OkStatus();
}

}  // namespace trainfeed
