// S3ObjectStore against a real S3 implementation (Ceph radosgw): signatures, listing, ranges,
// conditional reads, multipart and error reporting, as a real server judges them.
#include "store/s3/s3_object_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

#include "store/retry.h"
#include "tests/integration/s3_test_env.h"

namespace trainfeed {
namespace {

using testing::Ramp;

class S3ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::TestStoreOptions();
    ASSERT_FALSE(options_.config.endpoint.empty());
    store_ = std::make_unique<S3ObjectStore>(options_);
    bucket_ = testing::UniqueBucket(::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(store_->CreateBucket(bucket_).ok());
  }

  std::string GetAll(const std::string& key, std::optional<ByteRange> range = std::nullopt) {
    StringSink sink;
    GetRequest request{{bucket_, key}, range, ""};
    Result<GetResult> r = store_->Get(request, sink);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return sink.bytes;
  }

  std::vector<std::string> ListAll(const std::string& prefix, int max_keys = 1000) {
    std::vector<std::string> keys;
    ListRequest request;
    request.bucket = bucket_;
    request.prefix = prefix;
    request.max_keys = max_keys;
    do {
      Result<ListPage> page = store_->List(request);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) break;
      for (auto& o : page->objects) keys.push_back(o.key);
      request.continuation_token = page->next_continuation_token;
    } while (!request.continuation_token.empty());
    return keys;
  }

  S3StoreOptions options_;
  std::unique_ptr<S3ObjectStore> store_;
  std::string bucket_;
};

TEST_F(S3ObjectStoreTest, PutHeadGetRoundTrip) {
  std::string body = Ramp(100'000, 7);
  Result<std::string> etag = store_->Put({bucket_, "dir/obj.bin"}, body);
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  Result<ObjectInfo> head = store_->Head({bucket_, "dir/obj.bin"});
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, body.size());
  EXPECT_EQ(head->etag, *etag);
  EXPECT_GT(head->last_modified.time_since_epoch().count(), 0);
  EXPECT_EQ(GetAll("dir/obj.bin"), body);
}

TEST_F(S3ObjectStoreTest, WrongSecretIsRejectedAndNeverPrinted) {
  S3StoreOptions bad = options_;
  bad.config.credentials.secret_access_key = "WRONG-SECRET-d41d8cd98f";
  S3ObjectStore store(bad);
  Result<ListPage> page = store.List({bucket_, "", "", "", "", 10});
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), ErrorCode::kPermissionDenied) << page.status().ToString();
  EXPECT_NE(page.status().message().find("SignatureDoesNotMatch"), std::string::npos)
      << page.status().message();
  EXPECT_EQ(page.status().message().find("WRONG-SECRET"), std::string::npos);
}

TEST_F(S3ObjectStoreTest, AnonymousAccessToPrivateBucketIsDenied) {
  S3StoreOptions anon = options_;
  anon.config.anonymous = true;
  anon.config.credentials = {};
  S3ObjectStore store(anon);
  Result<ListPage> page = store.List({bucket_, "", "", "", "", 10});
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), ErrorCode::kPermissionDenied) << page.status().ToString();
}

TEST_F(S3ObjectStoreTest, MissingBucketIsOneClearLine) {
  Result<ListPage> page = store_->List({"no-such-bucket-tf", "", "", "", "", 10});
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(page.status().message().find("NoSuchBucket: bucket 'no-such-bucket-tf' does not exist at http://"),
            std::string::npos)
      << page.status().message();
}

TEST_F(S3ObjectStoreTest, MissingKeyIsNotFound) {
  StringSink sink;
  Result<GetResult> r = store_->Get({{bucket_, "nope"}, std::nullopt, ""}, sink);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("NoSuchKey"), std::string::npos) << r.status().message();
  Result<ObjectInfo> head = store_->Head({bucket_, "nope"});
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().code(), ErrorCode::kNotFound);
}

TEST_F(S3ObjectStoreTest, OddKeysRoundTripThroughSigningAndListing) {
  std::vector<std::string> keys = {"a b.txt",   "a+b.txt",     "a=b.txt", "a~b.txt",
                                   "a%20b.txt", "unicode/é-ü-日本", "sp ace/x y", "double//slash",
                                   "semi;colon", "q?mark",     "hash#tag",  "amp&er",
                                   "star*", "quote'\"", "lt<gt>", "tab\tkey"};
  for (size_t i = 0; i < keys.size(); ++i) {
    Result<std::string> put = store_->Put({bucket_, keys[i]}, Ramp(10 + i, i));
    ASSERT_TRUE(put.ok()) << keys[i] << ": " << put.status().ToString();
  }
  std::vector<std::string> listed = ListAll("");
  std::vector<std::string> expected = keys;
  std::sort(expected.begin(), expected.end());  // std::string compares bytes: S3's order
  EXPECT_EQ(listed, expected);
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(GetAll(keys[i]), Ramp(10 + i, i)) << keys[i];
}

TEST_F(S3ObjectStoreTest, PaginatesPast1000KeysInByteOrder) {
  constexpr int kCount = 1234;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kCount; i += 8) {
        // Mixed widths and separators so byte order differs from numeric and from DFS order.
        std::string key = "p/" + std::to_string(i) + (i % 3 ? "-x" : "/y");
        if (!store_->Put({bucket_, key}, std::to_string(i)).ok()) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  std::vector<std::string> listed = ListAll("p/");
  ASSERT_EQ(listed.size(), static_cast<size_t>(kCount));
  EXPECT_TRUE(std::is_sorted(listed.begin(), listed.end()));
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()).size(), listed.size());
  EXPECT_EQ(ListAll("p/", 333), listed);  // smaller pages, same result
}

TEST_F(S3ObjectStoreTest, DelimiterGroupsCommonPrefixes) {
  for (const char* k : {"d/a/1", "d/a/2", "d/b/1", "d/c", "d-e"}) {
    ASSERT_TRUE(store_->Put({bucket_, k}, "x").ok());
  }
  Result<ListPage> page = store_->List({bucket_, "d/", "/", "", "", 1000});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->common_prefixes, (std::vector<std::string>{"d/a/", "d/b/"}));
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "d/c");
}

TEST_F(S3ObjectStoreTest, RangesBehaveLikeS3) {
  std::string body = Ramp(1000, 3);
  ASSERT_TRUE(store_->Put({bucket_, "r"}, body).ok());
  EXPECT_EQ(GetAll("r", ByteRange{0, 1}), body.substr(0, 1));
  EXPECT_EQ(GetAll("r", ByteRange{999, 1000}), body.substr(999));
  EXPECT_EQ(GetAll("r", ByteRange{123, 457}), body.substr(123, 334));
  EXPECT_EQ(GetAll("r", ByteRange{900, 5000}), body.substr(900));  // end clamped
  StringSink sink;
  Result<GetResult> past = store_->Get({{bucket_, "r"}, ByteRange{1000, 1001}, ""}, sink);
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.status().code(), ErrorCode::kInvalidArgument) << past.status().ToString();
}

TEST_F(S3ObjectStoreTest, IfMatchDetectsAChangedObject) {
  Result<std::string> v1 = store_->Put({bucket_, "k"}, "version one");
  ASSERT_TRUE(v1.ok());
  ASSERT_TRUE(store_->Put({bucket_, "k"}, "version two!").ok());
  StringSink sink;
  Result<GetResult> r = store_->Get({{bucket_, "k"}, ByteRange{0, 4}, *v1}, sink);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kPreconditionFailed) << r.status().ToString();
  EXPECT_TRUE(sink.bytes.empty());
}

TEST_F(S3ObjectStoreTest, EmptyObject) {
  ASSERT_TRUE(store_->Put({bucket_, "empty"}, "").ok());
  StringSink sink;
  Result<GetResult> r = store_->Get({{bucket_, "empty"}, std::nullopt, ""}, sink);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bytes, 0u);
  EXPECT_FALSE(r->etag.empty());
}

TEST_F(S3ObjectStoreTest, MultipartUploadAssemblesPartsInOrder) {
  ObjectRef ref{bucket_, "big/multi.bin"};
  Result<std::string> id = store_->CreateMultipartUpload(ref);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  std::vector<std::string> parts = {Ramp(5 << 20, 1), Ramp(5 << 20, 2), Ramp(1234, 3)};
  std::vector<CompletedPart> done;
  for (int i = 2; i >= 0; --i) {  // out of order on purpose
    Result<std::string> etag = store_->UploadPart(ref, *id, i + 1, parts[i]);
    ASSERT_TRUE(etag.ok()) << etag.status().ToString();
    done.insert(done.begin(), {i + 1, *etag});
  }
  Result<std::string> etag = store_->CompleteMultipartUpload(ref, *id, done);
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_TRUE(etag->ends_with("-3")) << *etag;
  EXPECT_EQ(GetAll(ref.key), parts[0] + parts[1] + parts[2]);
}

TEST_F(S3ObjectStoreTest, AbortedMultipartUploadLeavesNoObject) {
  ObjectRef ref{bucket_, "aborted"};
  Result<std::string> id = store_->CreateMultipartUpload(ref);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(store_->UploadPart(ref, *id, 1, Ramp(5 << 20)).ok());
  ASSERT_TRUE(store_->AbortMultipartUpload(ref, *id).ok());
  EXPECT_EQ(store_->Head(ref).status().code(), ErrorCode::kNotFound);
  Result<std::string> late = store_->UploadPart(ref, *id, 2, "x");
  EXPECT_EQ(late.status().code(), ErrorCode::kNotFound) << late.status().ToString();
}

TEST_F(S3ObjectStoreTest, ConnectionRefusedIsRetryableAndNamesTheEndpoint) {
  S3StoreOptions dead = options_;
  dead.config.endpoint = "http://127.0.0.1:1";
  S3ObjectStore store(dead);
  Result<ObjectInfo> r = store.Head({bucket_, "k"});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsRetryable(r.status())) << r.status().ToString();
  EXPECT_NE(r.status().message().find("127.0.0.1:1"), std::string::npos);
}

}  // namespace
}  // namespace trainfeed
