#include "store/local/local_object_store.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "store/testing/string_sink.h"
#include "common/testing/as_nobody.h"

namespace trainfeed {
namespace {

namespace fs = std::filesystem;

class LocalObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string pattern = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/tf-local-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    // Canonical, so that keys are what a listing of "/" reports (no symlinked components).
    dir_ = fs::canonical(pattern).string();
    base_ = dir_.substr(1) + "/";
  }
  void TearDown() override {
    // Undo chmod 000 from the permission test, so the tree can be removed.
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec)) fs::permissions(it->path(), fs::perms::owner_all, ec);
    }
    fs::remove_all(dir_, ec);
  }

  // Writes a file at `rel` below the test directory, creating parents.
  void WriteFile(const std::string& rel, const std::string& content) {
    fs::path p = fs::path(dir_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }
  std::string Key(const std::string& rel) const { return base_ + rel; }

  // Lists every page; fails the test on an error or a page over max_keys.
  std::vector<std::string> ListAll(const std::string& rel_prefix, int max_keys,
                                   const std::string& delimiter = "",
                                   const std::string& start_after = "") {
    std::vector<std::string> out;
    ListRequest request;
    request.prefix = base_ + rel_prefix;
    request.delimiter = delimiter;
    request.max_keys = max_keys;
    request.start_after = start_after;
    for (int pages = 0; pages < 100000; ++pages) {
      Result<ListPage> page = store_.List(request);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) break;
      EXPECT_LE(page->objects.size() + page->common_prefixes.size(), size_t(max_keys));
      // Merge objects and prefixes of this page back into one ordered sequence.
      std::vector<std::string> items;
      for (const ObjectInfo& info : page->objects) items.push_back(info.key.substr(base_.size()));
      for (const std::string& p : page->common_prefixes) items.push_back(p.substr(base_.size()));
      std::sort(items.begin(), items.end());
      out.insert(out.end(), items.begin(), items.end());
      if (page->next_continuation_token.empty()) break;
      request.continuation_token = page->next_continuation_token;
    }
    return out;
  }

  std::string GetAll(const std::string& rel) {
    StringSink sink;
    GetRequest request;
    request.object.key = Key(rel);
    Result<GetResult> result = store_.Get(request, sink);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return sink.bytes;
  }

  std::string dir_;   // absolute path of the test directory
  std::string base_;  // its key prefix, ending in '/'
  LocalObjectStore store_;
};

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());  // std::string compares bytes as unsigned char
  return v;
}

const std::vector<std::string> kOddNames = {
    "a-c",
    "a/b",
    "a0",
    "a b",
    "a+b",
    "a=b",
    "a/b-c",
    "a/x/c",
    "a.b",
    "\xc3\xa9t\xc3\xa9",
    "Zed",
    "z",
    "a/ b",
    "a/b+c/d",
    "a/b=c",
    "sp ace/x y",
    "\xe6\x97\xa5/\xe6\x9c\xac",
    "a/x-c",
    "a--",
    "a,b/c",
    "~tilde",
    "0/1/2/3/4/5",
};

TEST_F(LocalObjectStoreTest, ListsInExactByteOrder) {
  for (const std::string& name : kOddNames) WriteFile(name, name);
  std::vector<std::string> keys = ListAll("", 1000);
  EXPECT_EQ(keys, Sorted(kOddNames));
  // The case a plain sorted DFS gets wrong: '-' (0x2d) sorts before '/' (0x2f).
  auto pos = [&](const std::string& k) { return std::find(keys.begin(), keys.end(), k); };
  EXPECT_LT(pos("a-c"), pos("a/b"));
  EXPECT_LT(pos("a/b"), pos("a0"));
  EXPECT_LT(pos("a/x-c"), pos("a/x/c"));
}

TEST_F(LocalObjectStoreTest, PaginationReturnsEveryKeyOnceInOrder) {
  std::vector<std::string> names = kOddNames;
  for (int i = 0; i < 25; ++i) {
    names.push_back("deep/d" + std::to_string(i % 4) + "/f" + std::to_string(i));
  }
  for (const std::string& name : names) WriteFile(name, "x");
  for (int max_keys : {1, 2, 7, 1000}) {
    SCOPED_TRACE(max_keys);
    EXPECT_EQ(ListAll("", max_keys), Sorted(names));
  }
}

TEST_F(LocalObjectStoreTest, PageSizeIsCappedAt1000LikeS3) {
  for (int i = 0; i < 1005; ++i) WriteFile("many/" + std::to_string(i), "");
  ListRequest request;
  request.prefix = Key("many/");
  request.max_keys = 5000;
  Result<ListPage> page = store_.List(request);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->objects.size(), 1000u);
  EXPECT_FALSE(page->next_continuation_token.empty());
  EXPECT_EQ(ListAll("many/", 300).size(), 1005u);
}

TEST_F(LocalObjectStoreTest, PrefixMatchesMidName) {
  WriteFile("data/train/a", "1");
  WriteFile("data/train/sub/b", "2");
  WriteFile("data/train-01.csv", "3");
  WriteFile("data/test/c", "4");
  WriteFile("data/tr", "5");
  WriteFile("datatrain", "6");
  std::vector<std::string> want = {"data/tr", "data/train-01.csv", "data/train/a",
                                   "data/train/sub/b"};
  EXPECT_EQ(ListAll("data/tr", 1000), want);
  EXPECT_EQ(ListAll("data/tr", 1), want);
  EXPECT_EQ(ListAll("data/train/", 1000),
            (std::vector<std::string>{"data/train/a", "data/train/sub/b"}));
  EXPECT_EQ(ListAll("data/train/a", 1000), (std::vector<std::string>{"data/train/a"}));
}

TEST_F(LocalObjectStoreTest, DelimiterGroupsCommonPrefixes) {
  WriteFile("d/a-c", "");
  WriteFile("d/a/b", "");
  WriteFile("d/a/x/y", "");
  WriteFile("d/a0", "");
  WriteFile("d/b/c/d/e", "");
  WriteFile("d/top", "");
  fs::create_directories(fs::path(dir_) / "d/empty/inner");  // no files: no prefix, as on S3
  std::vector<std::string> want = {"d/a-c", "d/a/", "d/a0", "d/b/", "d/top"};
  for (int max_keys : {1, 2, 3, 1000}) {
    SCOPED_TRACE(max_keys);
    EXPECT_EQ(ListAll("d/", max_keys, "/"), want);
  }
  EXPECT_EQ(ListAll("d/a", 1000, "/"), (std::vector<std::string>{"d/a-c", "d/a/", "d/a0"}));
  EXPECT_EQ(ListAll("d/a/", 1000, "/"), (std::vector<std::string>{"d/a/b", "d/a/x/"}));
  // Any delimiter works, as on S3.
  EXPECT_EQ(ListAll("d/", 1000, "-"),
            (std::vector<std::string>{"d/a-", "d/a/b", "d/a/x/y", "d/a0", "d/b/c/d/e", "d/top"}));
}

TEST_F(LocalObjectStoreTest, StartAfterSkipsKeys) {
  for (const std::string& name : kOddNames) WriteFile(name, "");
  std::vector<std::string> all = Sorted(kOddNames);
  for (size_t i = 0; i < all.size(); i += 5) {
    std::vector<std::string> want(all.begin() + i + 1, all.end());
    EXPECT_EQ(ListAll("", 3, "", base_ + all[i]), want) << all[i];
  }
  // A start_after that is not itself a key.
  std::vector<std::string> after_dir;
  for (const std::string& k : all) {
    if (k > "a/b/") after_dir.push_back(k);
  }
  EXPECT_EQ(after_dir.front(), "a/b=c");
  EXPECT_EQ(ListAll("", 1000, "", base_ + "a/b/"), after_dir);
  EXPECT_EQ(ListAll("", 2, "/", base_ + "a/b/"),
            (std::vector<std::string>{"a/", "a0", "a=b", "sp ace/", "z", "~tilde",
                                      "\xc3\xa9t\xc3\xa9", "\xe6\x97\xa5/"}));
}

TEST_F(LocalObjectStoreTest, MissingPrefixDirectoryGivesEmptyPage) {
  ListRequest request;
  request.prefix = Key("no/such/dir/");
  Result<ListPage> page = store_.List(request);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->objects.empty());
  EXPECT_TRUE(page->next_continuation_token.empty());
  // A prefix no key can have, and one that tries to climb out.
  for (std::string prefix : {base_ + "a//b", base_ + "../x/", std::string("../etc/")}) {
    request.prefix = prefix;
    page = store_.List(request);
    ASSERT_TRUE(page.ok()) << prefix;
    EXPECT_TRUE(page->objects.empty()) << prefix;
  }
}

TEST_F(LocalObjectStoreTest, UnreadableDirectoryIsPermissionDenied) {
  WriteFile("locked/secret", "s");
  WriteFile("open", "o");
  fs::permissions(fs::path(dir_) / "locked", fs::perms::none);
  ListRequest request;
  request.prefix = base_;
  Status status;
  if (::geteuid() != 0) {
    status = store_.List(request).status();
  } else {
    // Root reads any directory, so the listing runs in a child that drops to 'nobody'.
    fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
    status = RunAsNobody([&] { return LocalObjectStore().List(request).status(); });
  }
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), ErrorCode::kPermissionDenied) << status.ToString();
  EXPECT_NE(status.message().find(dir_ + "/locked"), std::string::npos) << status.ToString();
}

TEST_F(LocalObjectStoreTest, SymlinksToFilesListedToDirectoriesNot) {
  WriteFile("real/file", "12345");
  WriteFile("other/x", "x");
  fs::create_symlink(fs::path(dir_) / "real/file", fs::path(dir_) / "link-file");
  fs::create_directory_symlink(fs::path(dir_) / "other", fs::path(dir_) / "link-dir");
  fs::create_symlink(fs::path(dir_) / "nowhere", fs::path(dir_) / "dangling");
  fs::create_directory_symlink(dir_, fs::path(dir_) / "real/loop");  // would cycle if followed
  EXPECT_EQ(ListAll("", 1000), (std::vector<std::string>{"link-file", "other/x", "real/file"}));
  Result<ObjectInfo> info = store_.Head({"", Key("link-file")});
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 5u);
  // A symlinked directory named in the prefix is the user's choice, and is followed.
  EXPECT_EQ(ListAll("link-dir/", 1000), (std::vector<std::string>{"link-dir/x"}));
}

TEST_F(LocalObjectStoreTest, HeadReportsSizeAndChangingEtag) {
  WriteFile("f", "hello");
  Result<ObjectInfo> info = store_.Head({"", Key("f")});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->key, Key("f"));
  EXPECT_EQ(info->size, 5u);
  EXPECT_FALSE(info->etag.empty());
  EXPECT_GT(info->last_modified, std::chrono::system_clock::time_point());
  Result<ObjectInfo> again = store_.Head({"", Key("f")});
  EXPECT_EQ(again->etag, info->etag);
  WriteFile("f", "HELLO");  // same size, in place
  Result<ObjectInfo> changed = store_.Head({"", Key("f")});
  EXPECT_NE(changed->etag, info->etag);

  Result<ObjectInfo> missing = store_.Head({"", Key("nope")});
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir_ + "/nope"), std::string::npos);
  fs::create_directory(fs::path(dir_) / "adir");
  EXPECT_EQ(store_.Head({"", Key("adir")}).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_.Head({"", Key("f/under-a-file")}).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_.Head({"bucket", Key("f")}).status().code(), ErrorCode::kNotFound);
}

TEST_F(LocalObjectStoreTest, GetRanges) {
  std::string content;
  for (int i = 0; i < 100; ++i) content += static_cast<char>('A' + i % 26);
  WriteFile("r", content);
  auto get = [&](uint64_t begin, uint64_t end, StringSink& sink) {
    GetRequest request;
    request.object.key = Key("r");
    request.range = ByteRange{begin, end};
    return store_.Get(request, sink);
  };
  StringSink one;
  Result<GetResult> r = get(42, 43, one);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(one.bytes, content.substr(42, 1));
  EXPECT_EQ(r->bytes, 1u);
  EXPECT_EQ(r->object_size, 100u);

  StringSink mid;
  r = get(10, 60, mid);
  EXPECT_EQ(mid.bytes, content.substr(10, 50));

  StringSink clamped;  // end past the end is clamped, like S3
  r = get(90, 1000, clamped);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(clamped.bytes, content.substr(90));
  EXPECT_EQ(r->bytes, 10u);

  StringSink last;
  r = get(99, 100, last);
  EXPECT_EQ(last.bytes, "V");

  StringSink past;
  r = get(100, 101, past);
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(past.bytes.empty());
  r = get(5, 5, past);
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);

  EXPECT_EQ(GetAll("r"), content);
}

TEST_F(LocalObjectStoreTest, GetEmptyFileAndLargeFileInChunks) {
  WriteFile("empty", "");
  EXPECT_EQ(GetAll("empty"), "");
  StringSink sink;
  GetRequest request;
  request.object.key = Key("empty");
  request.range = ByteRange{0, 1};
  EXPECT_EQ(store_.Get(request, sink).status().code(), ErrorCode::kInvalidArgument);

  std::string big(3 * (1 << 20) + 7, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
  WriteFile("big", big);
  StringSink big_sink;
  request.object.key = Key("big");
  request.range.reset();
  Result<GetResult> r = store_.Get(request, big_sink);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes, big.size());
  EXPECT_TRUE(big_sink.bytes == big);
  EXPECT_GE(big_sink.appends, 4);
}

TEST_F(LocalObjectStoreTest, GetIfMatchFailsAfterChange) {
  WriteFile("f", "version one");
  Result<ObjectInfo> info = store_.Head({"", Key("f")});
  ASSERT_TRUE(info.ok());
  GetRequest request;
  request.object.key = Key("f");
  request.if_match = info->etag;
  StringSink sink;
  Result<GetResult> r = store_.Get(request, sink);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->etag, info->etag);

  ASSERT_TRUE(store_.Put({"", Key("f")}, "version two").ok());
  StringSink stale;
  r = store_.Get(request, stale);
  EXPECT_EQ(r.status().code(), ErrorCode::kPreconditionFailed);
  EXPECT_TRUE(stale.bytes.empty());
}

TEST_F(LocalObjectStoreTest, SinkErrorAbortsGet) {
  class FailingSink : public ByteSink {
   public:
    Status Append(const char*, size_t) override { return CancelledError("reader went away"); }
  };
  WriteFile("f", "data");
  FailingSink sink;
  GetRequest request;
  request.object.key = Key("f");
  EXPECT_EQ(store_.Get(request, sink).status().code(), ErrorCode::kCancelled);
}

TEST_F(LocalObjectStoreTest, PutGetRoundTrip) {
  std::string body("binary\0with nul\xff", 17);
  Result<std::string> etag = store_.Put({"", Key("new/deep/dir/obj")}, body);
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_EQ(GetAll("new/deep/dir/obj"), body);
  Result<ObjectInfo> info = store_.Head({"", Key("new/deep/dir/obj")});
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->etag, *etag);
  EXPECT_EQ(info->size, body.size());

  Result<std::string> etag2 = store_.Put({"", Key("new/deep/dir/obj")}, "v2");
  ASSERT_TRUE(etag2.ok());
  EXPECT_NE(*etag2, *etag);
  EXPECT_EQ(GetAll("new/deep/dir/obj"), "v2");
  // No temporary files remain.
  EXPECT_EQ(ListAll("new/", 1000), (std::vector<std::string>{"new/deep/dir/obj"}));
  EXPECT_EQ(std::distance(fs::directory_iterator(fs::path(dir_) / "new/deep/dir"),
                          fs::directory_iterator()),
            1);
}

TEST_F(LocalObjectStoreTest, PutConflictsBetweenFilesAndDirectories) {
  WriteFile("file", "x");
  WriteFile("dir/child", "y");
  Result<std::string> put = store_.Put({"", Key("file/child")}, "z");
  EXPECT_EQ(put.status().code(), ErrorCode::kAlreadyExists) << put.status().ToString();
  EXPECT_EQ(store_.Put({"", Key("dir")}, "z").status().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(ListAll("", 1000), (std::vector<std::string>{"dir/child", "file"}));
}

TEST_F(LocalObjectStoreTest, FolderMarkerCreatesDirectory) {
  ASSERT_TRUE(store_.Put({"", Key("folder/sub/")}, "").ok());
  EXPECT_TRUE(fs::is_directory(fs::path(dir_) / "folder/sub"));
  EXPECT_TRUE(ListAll("", 1000).empty());
  EXPECT_EQ(store_.Head({"", Key("folder/sub/")}).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_.Put({"", Key("folder/x/")}, "body").status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(store_.Delete({"", Key("folder/sub/")}).ok());
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "folder/sub"));
}

TEST_F(LocalObjectStoreTest, DeleteIsIdempotent) {
  WriteFile("f", "x");
  WriteFile("d/g", "y");
  EXPECT_TRUE(store_.Delete({"", Key("f")}).ok());
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "f"));
  EXPECT_TRUE(store_.Delete({"", Key("f")}).ok());
  EXPECT_TRUE(store_.Delete({"", Key("never/was")}).ok());
  EXPECT_TRUE(store_.Delete({"", Key("d")}).ok());  // a directory is not an object
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "d/g"));
  EXPECT_TRUE(store_.Delete({"", Key("d/")}).ok());  // marker of a non-empty directory
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "d/g"));
}

TEST_F(LocalObjectStoreTest, HostileKeysAreRejected) {
  const std::vector<std::string> hostile = {"",
                                            "/etc/passwd",
                                            "../escape",
                                            base_ + "a/../../x",
                                            base_ + "a//b",
                                            base_ + "./x",
                                            base_ + "x/.",
                                            base_ + "..",
                                            std::string("a\0b", 3),
                                            ".",
                                            "/",
                                            base_ + "x//"};
  for (const std::string& key : hostile) {
    SCOPED_TRACE(key);
    ObjectRef ref{"", key};
    Result<std::string> put = store_.Put(ref, "evil");
    EXPECT_EQ(put.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(put.status().message().find("key '"), std::string::npos);
    EXPECT_EQ(store_.Head(ref).status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(store_.Delete(ref).code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(store_.CreateMultipartUpload(ref).status().code(), ErrorCode::kInvalidArgument);
    StringSink sink;
    GetRequest request;
    request.object = ref;
    EXPECT_EQ(store_.Get(request, sink).status().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_FALSE(fs::exists(fs::path(dir_).parent_path() / "x"));
}

TEST_F(LocalObjectStoreTest, MultipartRoundTrip) {
  LocalObjectStore store({.root = "/", .min_part_size = 4});
  ObjectRef ref{"", Key("mp/out.bin")};
  Result<std::string> id = store.CreateMultipartUpload(ref);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  // Parts in any order; a part may be uploaded again.
  Result<std::string> e3 = store.UploadPart(ref, *id, 3, "tail");
  Result<std::string> e1 = store.UploadPart(ref, *id, 1, "first-");
  Result<std::string> e2 = store.UploadPart(ref, *id, 2, "WRONG-");
  e2 = store.UploadPart(ref, *id, 2, "second-");
  ASSERT_TRUE(e1.ok() && e2.ok() && e3.ok()) << e1.status().ToString();
  // The upload in progress is invisible.
  EXPECT_TRUE(ListAll("mp/", 1000).empty());
  EXPECT_EQ(store.Head(ref).status().code(), ErrorCode::kNotFound);

  Result<std::string> etag =
      store.CompleteMultipartUpload(ref, *id, {{1, *e1}, {2, *e2}, {3, *e3}});
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_EQ(GetAll("mp/out.bin"), "first-second-tail");
  EXPECT_EQ(store.Head(ref)->etag, *etag);
  // Staging is gone: the directory holds only the object.
  EXPECT_EQ(std::distance(fs::directory_iterator(fs::path(dir_) / "mp"), fs::directory_iterator()),
            1);
  EXPECT_EQ(store.CompleteMultipartUpload(ref, *id, {{1, *e1}}).status().code(),
            ErrorCode::kNotFound);
}

TEST_F(LocalObjectStoreTest, MultipartRejectsBadCompletions) {
  ObjectRef ref{"", Key("mp/x")};
  Result<std::string> id = store_.CreateMultipartUpload(ref);
  ASSERT_TRUE(id.ok());
  Result<std::string> e1 = store_.UploadPart(ref, *id, 1, "small");
  Result<std::string> e2 = store_.UploadPart(ref, *id, 2, "last");
  ASSERT_TRUE(e1.ok() && e2.ok());
  auto code = [&](std::vector<CompletedPart> parts) {
    return store_.CompleteMultipartUpload(ref, *id, parts).status().code();
  };
  EXPECT_EQ(code({}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code({{2, *e2}, {1, *e1}}), ErrorCode::kInvalidArgument);      // order
  EXPECT_EQ(code({{1, *e1}, {2, "bogus"}}), ErrorCode::kInvalidArgument);  // ETag
  EXPECT_EQ(code({{1, *e1}, {4, *e2}}), ErrorCode::kInvalidArgument);      // never uploaded
  EXPECT_EQ(code({{1, *e1}, {2, *e2}}), ErrorCode::kInvalidArgument);      // 5 bytes < 5 MiB
  Result<std::string> done = store_.CompleteMultipartUpload(ref, *id, {{2, *e2}});
  ASSERT_TRUE(done.ok()) << done.status().ToString();  // a lone last part may be small
  EXPECT_EQ(GetAll("mp/x"), "last");
  EXPECT_EQ(store_.UploadPart(ref, *id, 0, "x").status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(LocalObjectStoreTest, MultipartAbortAndUnknownIds) {
  ObjectRef ref{"", Key("ab/obj")};
  Result<std::string> id = store_.CreateMultipartUpload(ref);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(store_.UploadPart(ref, *id, 1, "data").ok());
  EXPECT_TRUE(store_.AbortMultipartUpload(ref, *id).ok());
  EXPECT_EQ(std::distance(fs::directory_iterator(fs::path(dir_) / "ab"), fs::directory_iterator()),
            0);
  EXPECT_EQ(store_.AbortMultipartUpload(ref, *id).code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_.UploadPart(ref, *id, 1, "x").status().code(), ErrorCode::kNotFound);
  for (std::string bad : {std::string("../../etc"), std::string("nothex"), std::string(32, 'f')}) {
    EXPECT_EQ(store_.UploadPart(ref, bad, 1, "x").status().code(), ErrorCode::kNotFound) << bad;
    EXPECT_EQ(store_.AbortMultipartUpload(ref, bad).code(), ErrorCode::kNotFound) << bad;
  }
  // An id belongs to its key.
  Result<std::string> other = store_.CreateMultipartUpload({"", Key("ab/other")});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(store_.UploadPart(ref, *other, 1, "x").status().code(), ErrorCode::kNotFound);
}

TEST_F(LocalObjectStoreTest, RootOptionConfinesKeys) {
  LocalObjectStore store({.root = dir_});
  ASSERT_TRUE(store.Put({"", "a/b"}, "x").ok());
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "a/b"));
  EXPECT_EQ(store.Describe({"", "a/b"}), "file://" + dir_ + "/a/b");
  EXPECT_EQ(store_.Describe({"", "data/x"}), "file:///data/x");
  ListRequest request;
  Result<ListPage> page = store.List(request);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "a/b");
}

TEST_F(LocalObjectStoreTest, BadRequestsAreRejected) {
  ListRequest request;
  request.prefix = base_;
  request.continuation_token = "garbage";
  EXPECT_EQ(store_.List(request).status().code(), ErrorCode::kInvalidArgument);
  request.continuation_token.clear();
  request.max_keys = 0;
  EXPECT_EQ(store_.List(request).status().code(), ErrorCode::kInvalidArgument);
  request.max_keys = 10;
  request.bucket = "b";
  EXPECT_EQ(store_.List(request).status().code(), ErrorCode::kNotFound);
}

TEST_F(LocalObjectStoreTest, ConcurrentPutsAndGetsSeeWholeVersions) {
  const std::string a(1 << 16, 'a');
  const std::string b(1 << 16, 'b');
  ASSERT_TRUE(store_.Put({"", Key("race")}, a).ok());
  std::vector<std::thread> threads;
  std::atomic<int> torn{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (t % 2 == 0) {
          EXPECT_TRUE(store_.Put({"", Key("race")}, i % 2 ? a : b).ok());
        } else {
          StringSink sink;
          GetRequest request;
          request.object.key = Key("race");
          Result<GetResult> r = store_.Get(request, sink);
          if (r.ok() && sink.bytes != a && sink.bytes != b) ++torn;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(ListAll("", 1000), (std::vector<std::string>{"race"}));
}

}  // namespace
}  // namespace trainfeed
