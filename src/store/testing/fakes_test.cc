#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "store/testing/fake_object_store.h"
#include "store/testing/fault_injecting_object_store.h"
#include "store/testing/string_sink.h"

namespace trainfeed {
namespace {

// Checks a PutRamp body as it streams, without keeping it.
class RampCheckingSink : public ByteSink {
 public:
  RampCheckingSink(uint64_t seed, uint64_t offset) : seed_(seed), next_(offset) {}
  Status Append(const char* data, size_t size) override {
    for (size_t i = 0; i < size; ++i, ++next_) {
      if (static_cast<unsigned char>(data[i]) != (seed_ + next_) % 251) {
        return DataLossError("wrong byte at offset " + std::to_string(next_));
      }
    }
    bytes_ += size;
    return OkStatus();
  }
  uint64_t bytes_ = 0;

 private:
  uint64_t seed_;
  uint64_t next_;
};

class FixedClock : public Clock {
 public:
  std::chrono::system_clock::time_point Now() override { return now_; }
  std::chrono::steady_clock::time_point Monotonic() override { return {}; }
  void SleepFor(std::chrono::nanoseconds) override {}
  std::chrono::system_clock::time_point now_ =
      std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
};

GetRequest MakeGet(const std::string& bucket, const std::string& key,
                   std::optional<ByteRange> range = std::nullopt, std::string if_match = "") {
  GetRequest request;
  request.object = {bucket, key};
  request.range = range;
  request.if_match = std::move(if_match);
  return request;
}

// Every key and common prefix under `prefix`, page by page.
std::vector<std::string> ListAll(ObjectStore& store, const std::string& bucket,
                                 const std::string& prefix, int max_keys,
                                 const std::string& delimiter = "",
                                 const std::string& start_after = "") {
  std::vector<std::string> out;
  ListRequest request;
  request.bucket = bucket;
  request.prefix = prefix;
  request.delimiter = delimiter;
  request.start_after = start_after;
  request.max_keys = max_keys;
  for (int pages = 0; pages < 100000; ++pages) {
    Result<ListPage> page = store.List(request);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    EXPECT_LE(page->objects.size() + page->common_prefixes.size(), size_t(max_keys));
    std::vector<std::string> items = page->common_prefixes;
    for (const ObjectInfo& info : page->objects) items.push_back(info.key);
    std::sort(items.begin(), items.end());
    out.insert(out.end(), items.begin(), items.end());
    if (page->next_continuation_token.empty()) break;
    request.continuation_token = page->next_continuation_token;
  }
  return out;
}

// S3 allows "a" and "a/b" side by side, unlike a directory tree.
const std::vector<std::string> kKeys = {"a-c",  "a/b", "a",     "a0",         "a b",
                                        "a+b",  "a=b", "a/b-c", "a/b/c",      "\xc3\xa9t\xc3\xa9",
                                        "Zed",  "z",   "\xff",  "sp ace/x y", "a/x/y/z",
                                        "0/1/2"};

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// ---------------------------------------------------------------- FakeObjectStore

TEST(FakeObjectStoreTest, MissingBucketIsNoSuchBucket) {
  FakeObjectStore store;
  ObjectRef ref{"nope", "k"};
  StringSink sink;
  ListRequest list;
  list.bucket = "nope";
  Status statuses[] = {store.List(list).status(),
                       store.Head(ref).status(),
                       store.Get(MakeGet("nope", "k"), sink).status(),
                       store.Put(ref, "x").status(),
                       store.Delete(ref),
                       store.CreateMultipartUpload(ref).status(),
                       store.PutRamp("nope", "k", 10).status()};
  for (const Status& s : statuses) {
    EXPECT_EQ(s.code(), ErrorCode::kNotFound) << s.ToString();
    EXPECT_NE(s.message().find("NoSuchBucket"), std::string::npos) << s.ToString();
  }
  store.CreateBucket("nope");
  EXPECT_TRUE(store.Put(ref, "x").ok());
}

TEST(FakeObjectStoreTest, PutGetHeadRoundTrip) {
  FixedClock clock;
  FakeObjectStore store(&clock);
  store.CreateBucket("b");
  std::string body("bin\0ary", 7);
  Result<std::string> etag = store.Put({"b", "dir/k"}, body);
  ASSERT_TRUE(etag.ok());
  EXPECT_EQ(etag->size(), 16u);
  StringSink sink;
  Result<GetResult> got = store.Get(MakeGet("b", "dir/k"), sink);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(sink.bytes, body);
  EXPECT_EQ(got->etag, *etag);
  EXPECT_EQ(got->object_size, 7u);
  EXPECT_EQ(got->bytes, 7u);
  Result<ObjectInfo> info = store.Head({"b", "dir/k"});
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 7u);
  EXPECT_EQ(info->etag, *etag);
  EXPECT_EQ(info->last_modified, clock.now_);
  // The ETag is a function of the content.
  EXPECT_EQ(*store.Put({"b", "other"}, body), *etag);
  EXPECT_NE(*store.Put({"b", "other"}, "different"), *etag);
  EXPECT_EQ(*store.Contents({"b", "dir/k"}), body);

  Result<ObjectInfo> missing = store.Head({"b", "missing"});
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find("mem://b/missing"), std::string::npos);
  EXPECT_EQ(store.Put({"b", ""}, "x").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store.Describe({"b", "k"}), "mem://b/k");
}

TEST(FakeObjectStoreTest, ListsInByteOrderAcrossPages) {
  FakeObjectStore store;
  store.CreateBucket("b");
  for (const std::string& key : kKeys) ASSERT_TRUE(store.Put({"b", key}, key).ok());
  for (int max_keys : {1, 2, 7, 1000}) {
    SCOPED_TRACE(max_keys);
    EXPECT_EQ(ListAll(store, "b", "", max_keys), Sorted(kKeys));
  }
  std::vector<std::string> keys = ListAll(store, "b", "", 1000);
  auto pos = [&](const std::string& k) { return std::find(keys.begin(), keys.end(), k); };
  EXPECT_LT(pos("a-c"), pos("a/b"));
  EXPECT_LT(pos("z"), pos("\xc3\xa9t\xc3\xa9"));  // unsigned bytes: 0xc3 > 'z'
  EXPECT_EQ(keys.back(), "\xff");
}

TEST(FakeObjectStoreTest, ListPrefixDelimiterAndStartAfter) {
  FakeObjectStore store;
  store.CreateBucket("b");
  for (const std::string& key : kKeys) ASSERT_TRUE(store.Put({"b", key}, "").ok());
  EXPECT_EQ(ListAll(store, "b", "a/", 1000),
            (std::vector<std::string>{"a/b", "a/b-c", "a/b/c", "a/x/y/z"}));
  EXPECT_EQ(ListAll(store, "b", "a/b", 1000), (std::vector<std::string>{"a/b", "a/b-c", "a/b/c"}));
  std::vector<std::string> want = {"a", "a b", "a+b", "a-c", "a/", "a0", "a=b"};
  for (int max_keys : {1, 2, 1000}) {
    EXPECT_EQ(ListAll(store, "b", "a", max_keys, "/"), want) << max_keys;
  }
  EXPECT_EQ(ListAll(store, "b", "a/", 1000, "/"),
            (std::vector<std::string>{"a/b", "a/b-c", "a/b/", "a/x/"}));
  EXPECT_EQ(
      ListAll(store, "b", "", 1000, "/", "a/b"),
      (std::vector<std::string>{"a/", "a0", "a=b", "sp ace/", "z", "\xc3\xa9t\xc3\xa9", "\xff"}));
  EXPECT_EQ(ListAll(store, "b", "a", 1000, "", "a0"), (std::vector<std::string>{"a=b"}));
  EXPECT_TRUE(ListAll(store, "b", "nothing", 1000).empty());
}

TEST(FakeObjectStoreTest, ListPagesAreCappedAndTokensChecked) {
  FakeObjectStore store;
  store.CreateBucket("b");
  for (int i = 0; i < 1500; ++i) ASSERT_TRUE(store.Put({"b", std::to_string(i)}, "").ok());
  ListRequest request;
  request.bucket = "b";
  request.max_keys = 5000;
  Result<ListPage> page = store.List(request);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->objects.size(), 1000u);
  EXPECT_FALSE(page->next_continuation_token.empty());
  EXPECT_EQ(ListAll(store, "b", "", 999).size(), 1500u);
  request.continuation_token = "bogus";
  EXPECT_EQ(store.List(request).status().code(), ErrorCode::kInvalidArgument);
  request.continuation_token.clear();
  request.max_keys = 0;
  EXPECT_EQ(store.List(request).status().code(), ErrorCode::kInvalidArgument);
}

TEST(FakeObjectStoreTest, GetRangesLikeS3) {
  FakeObjectStore store;
  store.CreateBucket("b");
  ASSERT_TRUE(store.PutRamp("b", "r", 100, 7).ok());
  EXPECT_EQ(*store.Contents({"b", "r"}), FakeObjectStore::RampBytes(7, 0, 100));
  auto get = [&](uint64_t begin, uint64_t end, StringSink& sink) {
    return store.Get(MakeGet("b", "r", ByteRange{begin, end}), sink);
  };
  StringSink one;
  Result<GetResult> r = get(50, 51, one);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(one.bytes, FakeObjectStore::RampBytes(7, 50, 51));
  EXPECT_EQ(static_cast<unsigned char>(one.bytes[0]), (7 + 50) % 251);
  EXPECT_EQ(r->bytes, 1u);
  EXPECT_EQ(r->object_size, 100u);
  StringSink clamped;
  r = get(90, 500, clamped);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(clamped.bytes, FakeObjectStore::RampBytes(7, 90, 100));
  EXPECT_EQ(r->bytes, 10u);
  StringSink past;
  EXPECT_EQ(get(100, 200, past).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(get(3, 3, past).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(past.bytes.empty());
}

TEST(FakeObjectStoreTest, IfMatchFailsAfterOverwrite) {
  FakeObjectStore store;
  store.CreateBucket("b");
  Result<std::string> v1 = store.Put({"b", "k"}, "one");
  StringSink sink;
  EXPECT_TRUE(store.Get(MakeGet("b", "k", std::nullopt, *v1), sink).ok());
  ASSERT_TRUE(store.Put({"b", "k"}, "two").ok());
  StringSink stale;
  Result<GetResult> r = store.Get(MakeGet("b", "k", std::nullopt, *v1), stale);
  EXPECT_EQ(r.status().code(), ErrorCode::kPreconditionFailed);
  EXPECT_TRUE(stale.bytes.empty());
}

TEST(FakeObjectStoreTest, CountsCallsAndBytes) {
  FakeObjectStore store;
  store.CreateBucket("b");
  const uint64_t kSize = uint64_t{64} << 20;
  const uint64_t kRange = uint64_t{8} << 20;
  ASSERT_TRUE(store.PutRamp("b", "big", kSize, 3).ok());
  EXPECT_EQ(store.put_calls(), 0);  // setup is not traffic
  for (uint64_t begin = 0; begin < kSize; begin += kRange) {
    RampCheckingSink sink(3, begin);
    Result<GetResult> r = store.Get(MakeGet("b", "big", ByteRange{begin, begin + kRange}), sink);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(sink.bytes_, kRange);
  }
  EXPECT_EQ(store.get_calls(), 8);
  EXPECT_EQ(store.get_bytes(), static_cast<int64_t>(kSize));
  ASSERT_TRUE(store.Head({"b", "big"}).ok());
  EXPECT_FALSE(store.Head({"b", "gone"}).ok());  // failures count too
  ListRequest list;
  list.bucket = "b";
  ASSERT_TRUE(store.List(list).ok());
  ASSERT_TRUE(store.Delete({"b", "x"}).ok());
  EXPECT_EQ(store.head_calls(), 2);
  EXPECT_EQ(store.list_calls(), 1);
  EXPECT_EQ(store.delete_calls(), 1);
  store.ResetCounters();
  EXPECT_EQ(store.get_calls(), 0);
  EXPECT_EQ(store.get_bytes(), 0);
}

TEST(FakeObjectStoreTest, GetDeliversInChunksWithoutHoldingTheLock) {
  FakeObjectStore store;
  store.CreateBucket("b");
  store.set_get_chunk_size(10);
  Result<std::string> v1 = store.PutRamp("b", "k", 95, 1);
  // This sink calls back into the store, which would deadlock if Get held the lock, and
  // replaces the object: the Get in progress must still deliver the old version whole.
  class ReentrantSink : public ByteSink {
   public:
    explicit ReentrantSink(FakeObjectStore& store) : store_(store) {}
    Status Append(const char* data, size_t size) override {
      if (data_.empty()) TF_RETURN_IF_ERROR(store_.Put({"b", "k"}, "new").status());
      data_.append(data, size);
      ++appends_;
      return OkStatus();
    }
    FakeObjectStore& store_;
    std::string data_;
    int appends_ = 0;
  };
  ReentrantSink sink(store);
  Result<GetResult> r = store.Get(MakeGet("b", "k"), sink);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->etag, *v1);
  EXPECT_EQ(sink.data_, FakeObjectStore::RampBytes(1, 0, 95));
  EXPECT_EQ(sink.appends_, 10);
  EXPECT_EQ(*store.Contents({"b", "k"}), "new");
}

TEST(FakeObjectStoreTest, MultipartRoundTrip) {
  FakeObjectStore store;
  store.CreateBucket("b");
  store.set_min_part_size(4);
  ObjectRef ref{"b", "mp"};
  Result<std::string> id = store.CreateMultipartUpload(ref);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(store.pending_uploads(), 1u);
  Result<std::string> e3 = store.UploadPart(ref, *id, 3, "tail");
  Result<std::string> e1 = store.UploadPart(ref, *id, 1, "first-");
  Result<std::string> e2 = store.UploadPart(ref, *id, 2, "WRONG");
  e2 = store.UploadPart(ref, *id, 2, "second-");  // a part may be sent again
  ASSERT_TRUE(e1.ok() && e2.ok() && e3.ok());
  EXPECT_EQ(store.Head(ref).status().code(), ErrorCode::kNotFound);
  Result<std::string> etag =
      store.CompleteMultipartUpload(ref, *id, {{1, *e1}, {2, *e2}, {3, *e3}});
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_TRUE(etag->ends_with("-3"));
  EXPECT_EQ(*store.Contents(ref), "first-second-tail");
  EXPECT_EQ(store.Head(ref)->etag, *etag);
  EXPECT_EQ(store.pending_uploads(), 0u);
  EXPECT_EQ(store.create_multipart_calls(), 1);
  EXPECT_EQ(store.upload_part_calls(), 4);
  EXPECT_EQ(store.complete_multipart_calls(), 1);
  EXPECT_EQ(store.CompleteMultipartUpload(ref, *id, {{1, *e1}}).status().code(),
            ErrorCode::kNotFound);
}

TEST(FakeObjectStoreTest, MultipartErrorsLikeS3) {
  FakeObjectStore store;
  store.CreateBucket("b");
  ObjectRef ref{"b", "mp"};
  Result<std::string> id = store.CreateMultipartUpload(ref);
  Result<std::string> e1 = store.UploadPart(ref, *id, 1, "small");
  Result<std::string> e2 = store.UploadPart(ref, *id, 2, "last");
  ASSERT_TRUE(e1.ok() && e2.ok());
  auto complete = [&](std::vector<CompletedPart> parts) {
    return store.CompleteMultipartUpload(ref, *id, parts).status();
  };
  auto expect_invalid = [](const Status& s, std::string_view what) {
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find(what), std::string::npos) << s.ToString();
  };
  expect_invalid(complete({}), "MalformedXML");
  expect_invalid(complete({{2, *e2}, {1, *e1}}), "InvalidPartOrder");
  expect_invalid(complete({{1, *e1}, {2, "bogus"}}), "InvalidPart");
  expect_invalid(complete({{1, *e1}, {3, *e2}}), "InvalidPart");
  expect_invalid(complete({{1, *e1}, {2, *e2}}), "EntityTooSmall");
  expect_invalid(store.UploadPart(ref, *id, 10001, "x").status(), "part number");
  // Upload ids belong to their object.
  EXPECT_EQ(store.UploadPart({"b", "other"}, *id, 1, "x").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store.UploadPart(ref, "no-such-id", 1, "x").status().code(), ErrorCode::kNotFound);
  // A single (last) part may be small.
  ASSERT_TRUE(complete({{2, *e2}}).ok());
  EXPECT_EQ(*store.Contents(ref), "last");
}

TEST(FakeObjectStoreTest, AbortAndDelete) {
  FakeObjectStore store;
  store.CreateBucket("b");
  ObjectRef ref{"b", "k"};
  Result<std::string> id = store.CreateMultipartUpload(ref);
  ASSERT_TRUE(store.UploadPart(ref, *id, 1, "x").ok());
  EXPECT_TRUE(store.AbortMultipartUpload(ref, *id).ok());
  EXPECT_EQ(store.pending_uploads(), 0u);
  EXPECT_EQ(store.AbortMultipartUpload(ref, *id).code(), ErrorCode::kNotFound);
  EXPECT_EQ(store.UploadPart(ref, *id, 1, "x").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store.Head(ref).status().code(), ErrorCode::kNotFound);

  ASSERT_TRUE(store.Put(ref, "x").ok());
  EXPECT_TRUE(store.Delete(ref).ok());
  EXPECT_TRUE(store.Delete(ref).ok());  // idempotent, as on S3
  EXPECT_EQ(store.Head(ref).status().code(), ErrorCode::kNotFound);
}

TEST(FakeObjectStoreTest, RampBytesAreConsistentAcrossRanges) {
  std::string whole = FakeObjectStore::RampBytes(300, 0, 1000);
  EXPECT_EQ(static_cast<unsigned char>(whole[0]), 300 % 251);
  EXPECT_EQ(FakeObjectStore::RampBytes(300, 251, 600), whole.substr(251, 349));
  EXPECT_EQ(whole.substr(0, 251), whole.substr(251, 251));  // period 251
  EXPECT_TRUE(FakeObjectStore::RampBytes(0, 5, 5).empty());
}

TEST(FakeObjectStoreTest, ConcurrentUse) {
  FakeObjectStore store;
  store.CreateBucket("b");
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
        if (!store.PutRamp("b", key, 100, t).ok()) ++errors;
        RampCheckingSink sink(t, 0);
        if (!store.Get(MakeGet("b", key), sink).ok()) ++errors;
        ListRequest list;
        list.bucket = "b";
        list.max_keys = 10;
        if (!store.List(list).ok()) ++errors;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(ListAll(store, "b", "", 1000).size(), 800u);
  EXPECT_EQ(store.get_calls(), 800);
}

// ---------------------------------------------------------------- FaultInjectingObjectStore

class FaultInjectingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_.CreateBucket("b");
    ASSERT_TRUE(fake_.PutRamp("b", "k", 100, 5).ok());
    fake_.ResetCounters();
  }
  FakeObjectStore fake_;
};

TEST_F(FaultInjectingTest, CallsThroughWithoutFaults) {
  FaultInjectingObjectStore store(fake_, nullptr);
  StringSink sink;
  ASSERT_TRUE(store.Get(MakeGet("b", "k"), sink).ok());
  EXPECT_EQ(sink.bytes, FakeObjectStore::RampBytes(5, 0, 100));
  ASSERT_TRUE(store.Head({"b", "k"}).ok());
  EXPECT_EQ(store.calls(), 2u);
  EXPECT_EQ(store.faults_injected(), 0u);
  EXPECT_EQ(fake_.get_calls(), 1);
  EXPECT_EQ(store.Describe({"b", "k"}), "mem://b/k");
}

TEST_F(FaultInjectingTest, FailsChosenCallsWithoutCallingThrough) {
  FaultInjectingObjectStore store(fake_, [](const FaultContext& c) -> std::optional<Fault> {
    if (c.method == StoreMethod::kHead && c.method_call_index == 0) {
      return Fault::Error(UnavailableError("503 SlowDown"));
    }
    return std::nullopt;
  });
  Result<ObjectInfo> first = store.Head({"b", "k"});
  EXPECT_EQ(first.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(fake_.head_calls(), 0);
  EXPECT_TRUE(store.Head({"b", "k"}).ok());
  EXPECT_EQ(fake_.head_calls(), 1);
  EXPECT_EQ(store.faults_injected(), 1u);
}

TEST_F(FaultInjectingTest, ContextDescribesEachCall) {
  std::vector<FaultContext> seen;
  FaultInjectingObjectStore store(fake_, [&](const FaultContext& c) -> std::optional<Fault> {
    seen.push_back(c);
    return std::nullopt;
  });
  StringSink sink;
  ASSERT_TRUE(store.Get(MakeGet("b", "k", ByteRange{10, 20}), sink).ok());
  ListRequest list;
  list.bucket = "b";
  list.prefix = "pre";
  ASSERT_TRUE(store.List(list).ok());
  ASSERT_TRUE(store.Get(MakeGet("b", "k"), sink).ok());
  Result<std::string> id = store.CreateMultipartUpload({"b", "up"});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(store.UploadPart({"b", "up"}, *id, 7, "x").ok());

  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[0].method, StoreMethod::kGet);
  EXPECT_EQ(seen[0].object.key, "k");
  ASSERT_TRUE(seen[0].range.has_value());
  EXPECT_EQ(seen[0].range->begin, 10u);
  EXPECT_EQ(seen[0].range->end, 20u);
  EXPECT_EQ(seen[1].method, StoreMethod::kList);
  EXPECT_EQ(seen[1].object.bucket, "b");
  EXPECT_EQ(seen[1].object.key, "pre");
  EXPECT_EQ(seen[2].method, StoreMethod::kGet);
  EXPECT_FALSE(seen[2].range.has_value());
  EXPECT_EQ(seen[2].call_index, 2u);
  EXPECT_EQ(seen[2].method_call_index, 1u);
  EXPECT_EQ(seen[4].method, StoreMethod::kUploadPart);
  EXPECT_EQ(seen[4].part_number, 7);
  EXPECT_EQ(StoreMethodName(seen[4].method), "UploadPart");
}

TEST_F(FaultInjectingTest, ResetMidBodyThenResume) {
  fake_.set_get_chunk_size(10);
  FaultInjectingObjectStore store(fake_, [](const FaultContext& c) -> std::optional<Fault> {
    if (c.method == StoreMethod::kGet && c.method_call_index == 0) {
      return Fault::ErrorAfterBytes(37, UnavailableError("connection reset"));
    }
    return std::nullopt;
  });
  StringSink sink;
  Result<GetResult> r = store.Get(MakeGet("b", "k"), sink);
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(sink.bytes, FakeObjectStore::RampBytes(5, 0, 37));  // cut inside a chunk
  // Resume where the sink stopped, as a retrying reader would.
  r = store.Get(MakeGet("b", "k", ByteRange{sink.bytes.size(), 100}), sink);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bytes, 63u);
  EXPECT_EQ(sink.bytes, FakeObjectStore::RampBytes(5, 0, 100));
  EXPECT_EQ(fake_.get_calls(), 2);
}

TEST_F(FaultInjectingTest, PartialGetEdgeCases) {
  std::optional<Fault> next;
  FaultInjectingObjectStore store(fake_, [&](const FaultContext&) { return next; });
  // Cut before the first byte.
  next = Fault::ErrorAfterBytes(0, UnavailableError("reset"));
  StringSink none;
  EXPECT_EQ(store.Get(MakeGet("b", "k"), none).status().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(none.bytes.empty());
  // The body ends before the cut: every byte arrives and the call still fails.
  next = Fault::ErrorAfterBytes(1000, UnavailableError("reset after body"));
  StringSink all;
  EXPECT_EQ(store.Get(MakeGet("b", "k"), all).status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(all.bytes.size(), 100u);
  // A silently short body reports success with fewer bytes.
  next = Fault::ShortBody(60);
  StringSink short_sink;
  Result<GetResult> r = store.Get(MakeGet("b", "k"), short_sink);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes, 60u);
  EXPECT_EQ(r->object_size, 100u);
  EXPECT_EQ(short_sink.bytes, FakeObjectStore::RampBytes(5, 0, 60));
  // The target's own error wins over a fault that never got to cut.
  next = Fault::ErrorAfterBytes(10, UnavailableError("reset"));
  StringSink missing;
  EXPECT_EQ(store.Get(MakeGet("b", "missing"), missing).status().code(), ErrorCode::kNotFound);
  // So does the caller's sink.
  class FailingSink : public ByteSink {
   public:
    Status Append(const char*, size_t) override { return CancelledError("reader gone"); }
  };
  FailingSink failing;
  EXPECT_EQ(store.Get(MakeGet("b", "k"), failing).status().code(), ErrorCode::kCancelled);
  // An OK fault on a method that cannot be cut is no fault.
  next = Fault::ShortBody(1);
  EXPECT_TRUE(store.Head({"b", "k"}).ok());
  EXPECT_EQ(store.faults_injected(), 5u);
}

TEST_F(FaultInjectingTest, FaultsEveryMethod) {
  std::vector<StoreMethod> failed;
  bool armed = true;
  FaultInjectingObjectStore store(fake_, [&](const FaultContext& c) -> std::optional<Fault> {
    if (!armed) return std::nullopt;
    failed.push_back(c.method);
    return Fault::Error(UnavailableError(std::string(StoreMethodName(c.method)) + " failed"));
  });
  ObjectRef ref{"b", "k"};
  StringSink sink;
  ListRequest list;
  list.bucket = "b";
  EXPECT_FALSE(store.List(list).ok());
  EXPECT_FALSE(store.Head(ref).ok());
  EXPECT_FALSE(store.Get(MakeGet("b", "k"), sink).ok());
  EXPECT_FALSE(store.Put(ref, "x").ok());
  EXPECT_FALSE(store.Delete(ref).ok());
  EXPECT_FALSE(store.CreateMultipartUpload(ref).ok());
  EXPECT_FALSE(store.UploadPart(ref, "id", 1, "x").ok());
  EXPECT_FALSE(store.CompleteMultipartUpload(ref, "id", {}).ok());
  Status abort = store.AbortMultipartUpload(ref, "id");
  EXPECT_EQ(abort.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(abort.message(), "AbortMultipartUpload failed");
  EXPECT_EQ(failed.size(), size_t(kNumStoreMethods));
  EXPECT_EQ(fake_.list_calls() + fake_.head_calls() + fake_.get_calls() + fake_.put_calls() +
                fake_.delete_calls() + fake_.create_multipart_calls() + fake_.upload_part_calls() +
                fake_.complete_multipart_calls() + fake_.abort_multipart_calls(),
            0);
  EXPECT_EQ(*fake_.Contents(ref), FakeObjectStore::RampBytes(5, 0, 100));  // untouched

  store.set_hook(nullptr);
  EXPECT_TRUE(store.Put(ref, "x").ok());
  EXPECT_EQ(store.calls(), uint64_t(kNumStoreMethods) + 1);
}

}  // namespace
}  // namespace trainfeed
