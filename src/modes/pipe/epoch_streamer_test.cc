#include "modes/pipe/epoch_streamer.h"

#include <zlib.h>

#include <algorithm>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "dataset/recordio.h"
#include "store/testing/fake_object_store.h"

namespace trainfeed {
namespace {

// Collects an epoch in memory. With close_after set, behaves like a reader that closes the FIFO
// once it has that many bytes (the write that crosses the mark fails with EPIPE's meaning).
class StringPipeWriter final : public PipeWriter {
 public:
  explicit StringPipeWriter(std::optional<uint64_t> close_after = std::nullopt,
                            std::chrono::microseconds delay_per_append = {})
      : close_after_(close_after), delay_(delay_per_append) {}
  Status Append(const char* data, size_t size) override {
    if (on_append) on_append();
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    if (close_after_ && bytes.size() + size > *close_after_) {
      bytes.append(data, *close_after_ - bytes.size());
      closed_ = true;
      return CancelledError("the reader closed the FIFO");
    }
    bytes.append(data, size);
    return OkStatus();
  }
  bool reader_closed() const override { return closed_; }
  double blocked_seconds() const override { return 0; }
  uint64_t bytes_written() const override { return bytes.size(); }
  std::string bytes;
  std::function<void()> on_append;

 private:
  std::optional<uint64_t> close_after_;
  std::chrono::microseconds delay_;
  bool closed_ = false;
};

std::string Gzip(const std::string& data) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

class EpochStreamerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = std::make_unique<FakeObjectStore>();
    fake_ = store.get();
    fake_->CreateBucket("b");
    items_.stores.push_back(std::move(store));
  }

  // Stores an object; returns its item, as a listing describes it.
  PipeItem PutObject(const std::string& key, const std::string& body) {
    EXPECT_TRUE(fake_->Put({"b", key}, body).ok());
    PipeItem item;
    item.object = {"b", key};
    item.size = body.size();
    Result<ObjectInfo> info = fake_->Head({"b", key});
    EXPECT_TRUE(info.ok());
    if (info.ok()) item.etag = info->etag;
    bodies_.push_back(body);
    return item;
  }

  // Adds an object (and a unit streaming it) with the given body.
  void AddObject(const std::string& key, const std::string& body) {
    items_.AddUnit({PutObject(key, body)});
  }

  // Objects whose listing streams in, `per_page` at a time, on the listing's thread. After the
  // first page the listing waits (up to 10 s) for `resume` to turn true, if one is given; it
  // fails after `fail_after_pages` pages, if set.
  void StreamObjects(int count, int per_page, std::atomic<bool>* resume = nullptr,
                     std::optional<int> fail_after_pages = std::nullopt) {
    std::vector<std::vector<PipeItem>> pages;
    for (int i = 0; i < count; ++i) {
      if (i % per_page == 0) pages.emplace_back();
      pages.back().push_back(
          PutObject("s" + std::to_string(100 + i), FakeObjectStore::RampBytes(i, 0, 3000 + 7 * i)));
    }
    items_.items.push_back(std::move(pages[0][0]));  // the first item is listed before streaming
    pages[0].erase(pages[0].begin());
    items_.StreamListing([pages = std::move(pages), resume, fail_after_pages](
                             const auto& add_page, const std::atomic<bool>& stop) mutable {
      for (size_t n = 0; n < pages.size() && !stop.load(); ++n) {
        if (fail_after_pages && static_cast<int>(n) == *fail_after_pages) {
          return UnavailableError("list s3://b/: 503 Slow Down");
        }
        add_page(std::move(pages[n]));
        for (int waited = 0; n == 0 && resume && !resume->load() && waited < 10'000; ++waited) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      }
      return OkStatus();
    });
  }

  void AddRamps(int count, uint64_t size_step, uint64_t base = 1000) {
    for (int i = 0; i < count; ++i) {
      AddObject("k" + std::to_string(100 + i),
                FakeObjectStore::RampBytes(i, 0, base + i * size_step));
    }
  }

  // What epoch `epoch` must contain without wrapping.
  std::string Expected(const PrefetchOptions& p, uint64_t epoch) {
    std::string out;
    for (uint64_t i : EpochItems(items_, p.seed, epoch, p.shard)) out += bodies_[i];
    return out;
  }

  FakeObjectStore* fake_ = nullptr;
  PipeItems items_;
  std::vector<std::string> bodies_;
};

TEST_F(EpochStreamerTest, ConcatenatesObjectsInOrderEveryEpoch) {
  AddRamps(12, 37'000);  // up to ~400 KB: several 64 KiB parts each
  AddObject("k200-empty", "");
  PrefetchOptions p;
  p.part_bytes = 64 << 10;
  p.concurrency = 8;
  EpochStreamer streamer(items_, {}, p);
  streamer.Start();
  for (uint64_t epoch = 0; epoch < 3; ++epoch) {
    StringPipeWriter out;
    Result<EpochStats> stats = streamer.StreamEpoch(epoch, out);
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_EQ(stats->items, 13u);
    EXPECT_EQ(stats->bytes, out.bytes.size());
    EXPECT_FALSE(stats->closed_early);
    ASSERT_TRUE(out.bytes == Expected(p, epoch)) << "epoch " << epoch;
  }
  streamer.Stop();
  // Large objects went as ranged parts; the empty one needed no GET.
  EXPECT_GT(fake_->get_calls(), 3 * 12);
}

TEST_F(EpochStreamerTest, SeededOrderIsReproducibleAndChangesPerEpoch) {
  AddRamps(20, 500);
  PrefetchOptions p;
  p.seed = 42;
  std::string first[2];
  for (int run = 0; run < 2; ++run) {
    EpochStreamer streamer(items_, {}, p);
    streamer.Start();
    for (uint64_t epoch = 0; epoch < 2; ++epoch) {
      StringPipeWriter out;
      ASSERT_TRUE(streamer.StreamEpoch(epoch, out).ok());
      ASSERT_TRUE(out.bytes == Expected(p, epoch));
      if (run == 0 && epoch == 0) first[0] = out.bytes;
      if (run == 0 && epoch == 1) first[1] = out.bytes;
      if (run == 1) {
        EXPECT_TRUE(out.bytes == first[epoch]) << "run 2 differs, epoch " << epoch;
      }
    }
  }
  EXPECT_FALSE(first[0] == first[1]) << "epochs 0 and 1 have the same order";
}

TEST_F(EpochStreamerTest, ShardedHostsTakeEveryItemExactlyOncePerEpoch) {
  AddRamps(31, 100);
  for (uint64_t epoch = 0; epoch < 2; ++epoch) {
    std::multiset<std::string> seen;
    uint64_t total = 0;
    for (uint64_t host = 0; host < 3; ++host) {
      PrefetchOptions p;
      p.seed = 7;
      p.shard = {host, 3, true};
      p.first_epoch = epoch;
      EpochStreamer streamer(items_, {}, p);
      streamer.Start();
      StringPipeWriter out;
      Result<EpochStats> stats = streamer.StreamEpoch(epoch, out);
      ASSERT_TRUE(stats.ok()) << stats.status().ToString();
      ASSERT_TRUE(out.bytes == Expected(p, epoch));
      total += stats->items;
      for (uint64_t i : EpochItems(items_, p.seed, epoch, p.shard)) seen.insert(bodies_[i]);
    }
    EXPECT_EQ(total, 31u);
    std::multiset<std::string> all(bodies_.begin(), bodies_.end());
    EXPECT_TRUE(seen == all) << "epoch " << epoch;
  }
}

TEST_F(EpochStreamerTest, HeldBytesStayWithinTheBudget) {
  AddRamps(40, 0, 100'000);
  PrefetchOptions p;
  p.budget_bytes = 256 << 10;
  p.part_bytes = 64 << 10;
  p.concurrency = 16;
  EpochStreamer streamer(items_, {}, p);
  streamer.Start();
  // A slow reader: the prefetcher fills the budget and must wait.
  StringPipeWriter out(std::nullopt, std::chrono::microseconds(300));
  ASSERT_TRUE(streamer.StreamEpoch(0, out).ok());
  ASSERT_TRUE(out.bytes == Expected(p, 0));
  EXPECT_LE(streamer.peak_prefetched_bytes(), p.budget_bytes);
  EXPECT_GT(streamer.peak_prefetched_bytes(), p.budget_bytes / 2);
}

TEST_F(EpochStreamerTest, RecordIOWrapsEachObjectIncludingAnAlignedMagic) {
  AddRamps(5, 333);
  std::string magic("\x0A\x23\xD7\xCE", 4);
  AddObject("k300-magic", "ABCD" + magic + "EFGH" + magic);
  AddObject("k301-empty", "");
  PrefetchOptions p;
  p.part_bytes = 512;  // whole items still arrive as one piece
  EpochStreamer streamer(items_, {.recordio = true}, p);
  streamer.Start();
  StringPipeWriter out;
  Result<EpochStats> stats = streamer.StreamEpoch(0, out);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  RecordIOReader reader(out.bytes);
  for (size_t i = 0; i < bodies_.size(); ++i) {
    Result<std::optional<std::string>> record = reader.Next();
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    ASSERT_TRUE(record->has_value());
    EXPECT_TRUE(**record == bodies_[i]) << "record " << i;
  }
  Result<std::optional<std::string>> end = reader.Next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
}

TEST_F(EpochStreamerTest, GzipObjectsArriveInflatedAlsoWrapped) {
  std::vector<std::string> plain;
  for (int i = 0; i < 6; ++i) {
    plain.push_back(FakeObjectStore::RampBytes(i, 0, 50'000 + 70'000 * i));
    AddObject("g" + std::to_string(i) + ".gz", Gzip(plain.back()));
  }
  std::string concatenated;
  for (const auto& s : plain) concatenated += s;
  PrefetchOptions p;
  p.part_bytes = 16 << 10;  // compressed objects in several parts, inflated in order
  {
    EpochStreamer streamer(items_, {.gzip = true}, p);
    streamer.Start();
    StringPipeWriter out;
    ASSERT_TRUE(streamer.StreamEpoch(0, out).ok());
    EXPECT_TRUE(out.bytes == concatenated);
  }
  EpochStreamer streamer(items_, {.gzip = true, .recordio = true}, p);
  streamer.Start();
  StringPipeWriter out;
  ASSERT_TRUE(streamer.StreamEpoch(0, out).ok());
  RecordIOReader reader(out.bytes);
  for (const auto& s : plain) {
    Result<std::optional<std::string>> record = reader.Next();
    ASSERT_TRUE(record.ok() && record->has_value());
    EXPECT_TRUE(**record == s);
  }
}

TEST_F(EpochStreamerTest, CorruptGzipFailsNamingTheObject) {
  AddObject("a.gz", Gzip("hello"));
  std::string truncated = Gzip(FakeObjectStore::RampBytes(1, 0, 10'000));
  truncated.resize(truncated.size() / 2);
  AddObject("b.gz", truncated);
  EpochStreamer streamer(items_, {.gzip = true}, {});
  streamer.Start();
  StringPipeWriter out;
  Result<EpochStats> stats = streamer.StreamEpoch(0, out);
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.status().message().find("b.gz"), std::string::npos) << stats.status().ToString();
}

TEST_F(EpochStreamerTest, AugmentedItemsStreamValuesAndReferencedObjects) {
  // Two lines of ["image-ref", "label"]: the object's bytes, then the value's text.
  for (int line = 0; line < 2; ++line) {
    std::string key = "img" + std::to_string(line);
    std::string body = FakeObjectStore::RampBytes(line, 0, 3000 + line);
    ASSERT_TRUE(fake_->Put({"b", key}, body).ok());
    PipeItem ref;
    ref.object = {"b", key};
    ref.size = body.size();
    PipeItem label;
    label.is_text = true;
    label.text = std::to_string(line);
    label.where = "line " + std::to_string(line + 1);
    items_.AddUnit({ref, label});
    bodies_.push_back(body);
    bodies_.push_back(label.text);
  }
  PrefetchOptions p;
  p.seed = 3;  // shuffles lines, never the attributes inside one
  EpochStreamer streamer(items_, {.recordio = true}, p);
  streamer.Start();
  StringPipeWriter out;
  ASSERT_TRUE(streamer.StreamEpoch(0, out).ok());
  RecordIOReader reader(out.bytes);
  for (uint64_t i : EpochItems(items_, p.seed, 0, p.shard)) {
    Result<std::optional<std::string>> record = reader.Next();
    ASSERT_TRUE(record.ok() && record->has_value());
    EXPECT_TRUE(**record == bodies_[i]);
  }
  EXPECT_EQ(EpochItems(items_, p.seed, 0, p.shard).size(), 4u);
}

TEST_F(EpochStreamerTest, RecordIOItemLargerThanTheBudgetFailsNamingIt) {
  AddRamps(2, 10);
  AddObject("huge", FakeObjectStore::RampBytes(0, 0, 300'000));
  PrefetchOptions p;
  p.budget_bytes = 100'000;
  EpochStreamer streamer(items_, {.recordio = true}, p);
  streamer.Start();
  StringPipeWriter out;
  Result<EpochStats> stats = streamer.StreamEpoch(0, out);
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.status().message().find("huge"), std::string::npos) << stats.status().ToString();
  EXPECT_NE(stats.status().message().find("--buffer-size"), std::string::npos);
}

TEST_F(EpochStreamerTest, ReaderClosingEarlyEndsOnlyThatEpoch) {
  AddRamps(30, 5000);
  PrefetchOptions p;
  p.part_bytes = 16 << 10;
  EpochStreamer streamer(items_, {}, p);
  streamer.Start();
  StringPipeWriter early(10'000);
  Result<EpochStats> stats = streamer.StreamEpoch(0, early);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_TRUE(stats->closed_early);
  EXPECT_EQ(early.bytes.size(), 10'000u);
  EXPECT_EQ(stats->bytes, 10'000u);
  for (uint64_t epoch = 1; epoch < 3; ++epoch) {
    StringPipeWriter out;
    stats = streamer.StreamEpoch(epoch, out);
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_FALSE(stats->closed_early);
    EXPECT_TRUE(out.bytes == Expected(p, epoch)) << "epoch " << epoch;
  }
}

TEST_F(EpochStreamerTest, FailedGetEndsTheEpochAtItsPosition) {
  AddRamps(5, 100);
  PipeItem missing;
  missing.object = {"b", "gone"};
  missing.size = 10;
  items_.AddUnit({missing});
  bodies_.push_back("");
  EpochStreamer streamer(items_, {}, {});
  streamer.Start();
  StringPipeWriter out;
  Result<EpochStats> stats = streamer.StreamEpoch(0, out);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(stats.status().message().find("gone"), std::string::npos) << stats.status().ToString();
  // Everything before it was delivered, nothing after.
  std::string before;
  for (int i = 0; i < 5; ++i) before += bodies_[i];
  EXPECT_TRUE(out.bytes == before);
}

TEST_F(EpochStreamerTest, StreamsAListingWhilePagesStillArrive) {
  std::atomic<bool> first_bytes_written{false};
  StreamObjects(40, 8, &first_bytes_written);
  EXPECT_FALSE(items_.listing_done());
  PrefetchOptions p;
  p.concurrency = 4;
  EpochStreamer streamer(items_, {}, p);
  streamer.Start();
  for (uint64_t epoch = 0; epoch < 2; ++epoch) {
    StringPipeWriter out;
    bool written_while_listing = false;
    out.on_append = [&] {
      if (!first_bytes_written.exchange(true)) written_while_listing = !items_.listing_done();
    };
    Result<EpochStats> stats = streamer.StreamEpoch(epoch, out);
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    if (epoch == 0) {
      EXPECT_TRUE(written_while_listing) << "the first byte waited for the listing";
    }
    ASSERT_TRUE(items_.listing_done());
    EXPECT_EQ(stats->items, 40u);
    std::string all;
    for (const std::string& body : bodies_) all += body;
    EXPECT_TRUE(out.bytes == all) << "epoch " << epoch << " is not the listing in order";
  }
}

TEST_F(EpochStreamerTest, ShardedHostFollowsAStreamingListing) {
  StreamObjects(31, 4);
  PrefetchOptions p;
  p.shard = {1, 3, true};
  EpochStreamer streamer(items_, {}, p);
  streamer.Start();
  StringPipeWriter out;
  Result<EpochStats> stats = streamer.StreamEpoch(0, out);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->items, 10u);  // positions 1, 4, ..., 28
  EXPECT_TRUE(out.bytes == Expected(p, 0));
}

TEST_F(EpochStreamerTest, ShuffledEpochWaitsForTheWholeListing) {
  StreamObjects(30, 5);
  PrefetchOptions p;
  p.seed = 11;
  EpochStreamer streamer(items_, {}, p);
  streamer.Start();
  StringPipeWriter out;
  ASSERT_TRUE(streamer.StreamEpoch(0, out).ok());
  EXPECT_EQ(items_.items.size(), 30u);
  EXPECT_TRUE(out.bytes == Expected(p, 0));  // a permutation of all 30
}

TEST_F(EpochStreamerTest, ListingFailureEndsTheEpochWhereItsPagesStop) {
  StreamObjects(20, 5, nullptr, 2);  // pages 0 and 1 arrive: 10 items, then 503
  EpochStreamer streamer(items_, {}, {});
  streamer.Start();
  StringPipeWriter out;
  Result<EpochStats> stats = streamer.StreamEpoch(0, out);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(stats.status().message().find("Slow Down"), std::string::npos);
  std::string listed;
  for (int i = 0; i < 10; ++i) listed += bodies_[i];
  EXPECT_TRUE(out.bytes == listed);
}

TEST_F(EpochStreamerTest, ResumedStreamStartsAtItsItemAndByte) {
  AddRamps(9, 20'000, 5000);  // several 16 KiB parts each
  PrefetchOptions p;
  p.part_bytes = 16 << 10;
  p.seed = 5;
  p.first_epoch = 2;
  p.first_position = 4;
  p.first_offset = 12'345;
  std::vector<uint64_t> order = EpochItems(items_, p.seed, 2, p.shard);
  uint64_t skipped = p.first_offset;
  for (uint64_t k = 0; k < p.first_position; ++k) skipped += bodies_[order[k]].size();
  EpochStreamer streamer(items_, {}, p);
  streamer.Start();
  StringPipeWriter out;
  Result<EpochStats> stats = streamer.StreamEpoch(2, out);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_TRUE(out.bytes == Expected(p, 2).substr(skipped));
  EXPECT_EQ(stats->items, 5u);
  StringPipeWriter next;  // the epochs after it are whole
  ASSERT_TRUE(streamer.StreamEpoch(3, next).ok());
  EXPECT_TRUE(next.bytes == Expected(p, 3));
}

TEST(ListingOrderItemTest, MatchesTheMaterialisedOrderOfEveryHost) {
  for (uint64_t hosts = 1; hosts <= 4; ++hosts) {
    for (uint64_t h = 0; h < hosts; ++h) {
      HostShard shard{h, hosts, hosts > 1};
      std::vector<uint64_t> order = ItemsForHost(23, std::nullopt, 5, shard);
      for (uint64_t k = 0; k < order.size(); ++k) {
        EXPECT_EQ(ListingOrderItem(k, shard), order[k]) << hosts << " hosts, host " << h;
      }
      EXPECT_GE(ListingOrderItem(order.size(), shard), 23u);  // past the end once all are listed
    }
  }
}

TEST(ItemListTest, KeepsAddressesAcrossSegmentsAndReadsWhileGrowing) {
  ItemList list;
  const size_t n = 5000;  // several segments: 1024, 2048, ...
  std::atomic<bool> bad{false};
  std::thread reader([&] {
    // Whatever is published is complete and in place.
    while (list.size() < n) {
      size_t seen = list.size();
      if (seen > 0 && list[seen - 1].size != seen - 1) bad.store(true);
    }
  });
  for (size_t i = 0; i < n; ++i) {
    PipeItem item;
    item.size = i;
    item.object.key = "k" + std::to_string(i);
    list.push_back(std::move(item));
  }
  reader.join();
  EXPECT_FALSE(bad.load());
  const PipeItem* first = &list[0];
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(list[i].object.key, "k" + std::to_string(i));
  EXPECT_EQ(first, &list[0]);
}

TEST(DescribeEpochTest, NamesTheVerdict) {
  EpochStats s;
  s.items = 3;
  s.bytes = 3 << 20;
  s.seconds = 1;
  s.starved_seconds = 0.8;
  s.backpressure_seconds = 0.1;
  EXPECT_NE(DescribeEpoch(s).find("training was starved of input"), std::string::npos);
  s.starved_seconds = 0;
  EXPECT_NE(DescribeEpoch(s).find("input waited on training"), std::string::npos);
}

}  // namespace
}  // namespace trainfeed
