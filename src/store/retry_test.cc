#include "store/retry.h"

#include <gtest/gtest.h>

#include "store/testing/fake_object_store.h"
#include "store/testing/fault_injecting_object_store.h"
#include "store/testing/string_sink.h"

namespace trainfeed {
namespace {

// Records sleeps instead of sleeping.
class FakeClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() override { return {}; }
  std::chrono::steady_clock::time_point Monotonic() override { return {}; }
  void SleepFor(std::chrono::nanoseconds d) override { sleeps.push_back(d); }
  std::vector<std::chrono::nanoseconds> sleeps;
};

class RetryTest : public ::testing::Test {
 protected:
  RetryTest() {
    fake_.CreateBucket("b");
    fake_.set_get_chunk_size(1000);
    auto faulty = std::make_unique<FaultInjectingObjectStore>(
        fake_, [this](const FaultContext& c) { return hook_ ? hook_(c) : std::nullopt; });
    faulty_ = faulty.get();
    store_ = std::make_unique<RetryingObjectStore>(std::move(faulty), RetryOptions{}, clock_);
  }
  FakeObjectStore fake_;
  FakeClock clock_;
  FaultInjectingObjectStore* faulty_;
  std::unique_ptr<RetryingObjectStore> store_;
  FaultInjectingObjectStore::Hook hook_;
};

TEST_F(RetryTest, RetriesUnavailableThenSucceeds) {
  ASSERT_TRUE(fake_.PutRamp("b", "k", 10, 1).ok());
  hook_ = [](const FaultContext& c) -> std::optional<Fault> {
    if (c.method_call_index < 2) return Fault::Error(UnavailableError("503 SlowDown"));
    return std::nullopt;
  };
  Result<ObjectInfo> r = store_->Head({"b", "k"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(faulty_->calls(), 3u);
  ASSERT_EQ(clock_.sleeps.size(), 2u);
  // Full jitter: each sleep lies within its ceiling (50 ms, then 100 ms).
  EXPECT_LE(clock_.sleeps[0], std::chrono::milliseconds(50));
  EXPECT_LE(clock_.sleeps[1], std::chrono::milliseconds(100));
}

TEST_F(RetryTest, DoesNotRetryPermanentErrors) {
  for (Status s : {NotFoundError("NoSuchKey"), PermissionDeniedError("AccessDenied"),
                   InvalidArgumentError("bad"), PreconditionFailedError("412")}) {
    hook_ = [s](const FaultContext&) { return Fault::Error(s); };
    uint64_t before = faulty_->calls();
    Result<ObjectInfo> r = store_->Head({"b", "k"});
    EXPECT_EQ(r.status().code(), s.code());
    EXPECT_EQ(faulty_->calls() - before, 1u) << s.ToString();
  }
  EXPECT_TRUE(clock_.sleeps.empty());
}

TEST_F(RetryTest, GivesUpAfterMaxAttemptsWithBoundedBackoff) {
  hook_ = [](const FaultContext&) { return Fault::Error(UnavailableError("503 SlowDown")); };
  Result<ListPage> r = store_->List({"b", "", "", "", "", 1000});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("gave up after 8 attempts"), std::string::npos);
  EXPECT_EQ(faulty_->calls(), 8u);
  ASSERT_EQ(clock_.sleeps.size(), 7u);
  for (auto s : clock_.sleeps) EXPECT_LE(s, std::chrono::milliseconds(5000));
}

TEST_F(RetryTest, GetResumesFromLastByteWithIfMatch) {
  ASSERT_TRUE(fake_.PutRamp("b", "big", 10'000, 5).ok());
  std::vector<FaultContext> seen;
  hook_ = [&](const FaultContext& c) -> std::optional<Fault> {
    seen.push_back(c);
    if (c.method == StoreMethod::kGet && c.method_call_index < 2) {
      return Fault::ErrorAfterBytes(3000, UnavailableError("connection reset"));
    }
    return std::nullopt;
  };
  StringSink sink;
  Result<GetResult> r = store_->Get({{"b", "big"}, std::nullopt, ""}, sink);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(sink.bytes == FakeObjectStore::RampBytes(5, 0, 10'000)) << "bytes differ";
  EXPECT_EQ(sink.begins, 1) << "the caller sees one response";
  EXPECT_EQ(r->bytes, 10'000u);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_FALSE(seen[0].range.has_value());
  ASSERT_TRUE(seen[1].range.has_value());
  EXPECT_EQ(seen[1].range->begin, 3000u);
  EXPECT_EQ(seen[2].range->begin, 6000u);
  EXPECT_EQ(seen[2].range->end, 10'000u);
}

TEST_F(RetryTest, ResumedRangeKeepsTheCallersEnd) {
  ASSERT_TRUE(fake_.PutRamp("b", "big", 10'000, 5).ok());
  hook_ = [&](const FaultContext& c) -> std::optional<Fault> {
    if (c.method_call_index == 0) return Fault::ErrorAfterBytes(100, UnavailableError("reset"));
    return std::nullopt;
  };
  StringSink sink;
  Result<GetResult> r = store_->Get({{"b", "big"}, ByteRange{1000, 2000}, ""}, sink);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(sink.bytes == FakeObjectStore::RampBytes(5, 1000, 2000)) << "bytes differ";
}

TEST_F(RetryTest, ObjectReplacedBetweenAttemptsIsNeverSpliced) {
  ASSERT_TRUE(fake_.PutRamp("b", "k", 10'000, 1).ok());
  hook_ = [&](const FaultContext& c) -> std::optional<Fault> {
    if (c.method_call_index == 0) {
      return Fault::ErrorAfterBytes(4000, UnavailableError("reset"));
    }
    return std::nullopt;
  };
  StringSink sink;
  // Replace the object after the first attempt fails: the resume must be refused (If-Match).
  FaultInjectingObjectStore::Hook first = hook_;
  hook_ = [&](const FaultContext& c) -> std::optional<Fault> {
    if (c.method_call_index == 1) {
      EXPECT_TRUE(fake_.PutRamp("b", "k", 10'000, 2).ok());
    }
    return first(c);
  };
  Result<GetResult> r = store_->Get({{"b", "k"}, std::nullopt, ""}, sink);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kPreconditionFailed) << r.status().ToString();
  EXPECT_TRUE(sink.bytes == FakeObjectStore::RampBytes(1, 0, 4000)) << "bytes differ";
}

TEST_F(RetryTest, SinkErrorsAreNotRetried) {
  ASSERT_TRUE(fake_.PutRamp("b", "k", 100, 1).ok());
  class FailingSink final : public ByteSink {
   public:
    Status Append(const char*, size_t) override { return UnavailableError("disk hiccup"); }
  } sink;
  Result<GetResult> r = store_->Get({{"b", "k"}, std::nullopt, ""}, sink);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(faulty_->calls(), 1u);
}

}  // namespace
}  // namespace trainfeed
