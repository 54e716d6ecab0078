#include "modes/pipe/resume_point.h"

#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

namespace trainfeed {
namespace {

TEST(ResumeTokenTest, RoundTripsAndRefusesAnythingElse) {
  ResumePoint p{3, 1234, 1 << 20, 0x9f3a01bc};
  std::string token = FormatResumeToken(p);
  EXPECT_EQ(token, "e3.p1234.b1048576.9f3a01bc");
  Result<ResumePoint> back = ParseResumeToken(token);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->epoch, 3u);
  EXPECT_EQ(back->position, 1234u);
  EXPECT_EQ(back->offset, 1u << 20);
  EXPECT_EQ(back->check, 0x9f3a01bcu);
  for (const char* bad : {"", "e3.p1.b0", "e3.p1.b0.123", "e3.p1.b0.9f3a01bcx", "3.1.0.9f3a01bc",
                          "e-1.p1.b0.9f3a01bc", "e3.p1.b0.zzzzzzzz", "e3..p1.b0.9f3a01bc"}) {
    Result<ResumePoint> r = ParseResumeToken(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("resume token"), std::string::npos);
    }
  }
}

TEST(ConsumedTrackerTest, ExactStreamsResumeAtTheByte) {
  ConsumedTracker t(/*exact=*/true);
  t.StartEpoch(2, 0, 0);
  t.Writing(0, 0, 100, false, 0);     // item at position 0: bytes 0..99
  t.Writing(0, 100, 50, true, 100);   // ... 100..149, its end
  t.Writing(1, 0, 0, true, 150);      // an empty object
  t.Writing(2, 0, 1000, false, 150);  // position 2: a piece cut short by a stop
  ResumePoint p = t.At(0);
  EXPECT_EQ(p.epoch, 2u);
  EXPECT_EQ(p.position, 0u);
  EXPECT_EQ(p.offset, 0u);
  p = t.At(120);
  EXPECT_EQ(p.position, 0u);
  EXPECT_EQ(p.offset, 120u);
  p = t.At(150);  // position 0 and the empty object are consumed
  EXPECT_EQ(p.position, 2u);
  EXPECT_EQ(p.offset, 0u);
  p = t.At(175);
  EXPECT_EQ(p.position, 2u);
  EXPECT_EQ(p.offset, 25u);
  p = t.At(400);  // however few of its bytes went out, the reader's count decides
  EXPECT_EQ(p.position, 2u);
  EXPECT_EQ(p.offset, 250u);
}

TEST(ConsumedTrackerTest, FramedStreamsResumeAtWholeItems) {
  ConsumedTracker t(/*exact=*/false);
  t.StartEpoch(0, 5, 0);  // a resumed epoch starts at position 5
  t.Writing(5, 0, 70, true, 0);    // a whole RecordIO record: 80 framed bytes
  t.Writing(6, 0, 64, false, 80);  // a gzip object's parts: inflated sizes unknown ahead
  t.Writing(6, 64, 64, true, 90);
  EXPECT_EQ(t.At(40).position, 5u);
  EXPECT_EQ(t.At(40).offset, 0u);
  EXPECT_EQ(t.At(80).position, 6u);
  EXPECT_EQ(t.At(200).position, 6u);  // mid-object: that object again, from its start
  EXPECT_EQ(t.At(200).offset, 0u);
  t.Finished(300);
  EXPECT_EQ(t.At(299).position, 6u);
  EXPECT_EQ(t.At(300).position, 7u);
}

TEST(ResumeRecorderTest, PinsAPointPastTheLastListedItemToTheItemBefore) {
  PipeItems items;
  for (int i = 0; i < 3; ++i) {
    PipeItem item;
    item.object = {"b", "k" + std::to_string(i)};
    item.size = 10;
    item.etag = "etag" + std::to_string(i);
    items.items.push_back(std::move(item));
  }
  char dir[] = "/tmp/tf-resume-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/state";
  PrefetchOptions prefetch;
  ResumeRecorder recorder(items, prefetch, true, path, std::chrono::milliseconds(0));
  auto token = [&] {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return ParseResumeToken(line);
  };
  ASSERT_TRUE(recorder.StartEpoch(4, 1, 7).ok());  // mid-item: its own check
  Result<ResumePoint> p = token();
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->epoch, 4u);
  EXPECT_EQ(p->offset, 7u);
  EXPECT_EQ(p->check, ItemCheck(items, 1));
  ASSERT_TRUE(recorder.StartEpoch(4, 3, 0).ok());  // past the last item: the one before
  p = token();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->position, 3u);
  EXPECT_EQ(p->check, ItemCheck(items, 2));
  ASSERT_TRUE(recorder.StartEpoch(5, 0, 0).ok());  // an epoch's start pins nothing
  p = token();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->check, 0u);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace trainfeed
