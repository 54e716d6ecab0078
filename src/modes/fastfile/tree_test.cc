#include "modes/fastfile/tree.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "store/testing/fake_object_store.h"

namespace trainfeed {
namespace {

using NodeId = FileTree::NodeId;
using std::chrono::system_clock;

ObjectInfo Obj(std::string key, uint64_t size = 1, int64_t mtime_s = 1'700'000'000,
               std::string etag = "e") {
  ObjectInfo info;
  info.key = std::move(key);
  info.size = size;
  info.etag = std::move(etag);
  info.last_modified = system_clock::time_point(std::chrono::seconds(mtime_s));
  return info;
}

FileTree Build(const std::string& prefix, const std::vector<ObjectInfo>& objects) {
  Result<FileTree> tree = BuildFileTree(prefix, objects);
  EXPECT_TRUE(tree.ok()) << tree.status().ToString();
  return std::move(tree).value();
}

// Resolves "a/b/c" from the root; kNoNode if any step is missing.
NodeId Resolve(const FileTree& tree, std::string_view path) {
  NodeId id = FileTree::kRootId;
  size_t start = 0;
  while (start <= path.size() && !path.empty()) {
    size_t end = std::min(path.find('/', start), path.size());
    id = tree.Lookup(id, path.substr(start, end - start));
    if (id == FileTree::kNoNode) return id;
    start = end + 1;
  }
  return id;
}

// Every path in the tree, depth first in readdir order; folders end in '/'.
std::vector<std::string> Walk(const FileTree& tree, NodeId dir = FileTree::kRootId) {
  std::vector<std::string> out;
  for (size_t i = 0; i < tree.ChildCount(dir); ++i) {
    NodeId child = tree.Child(dir, i);
    out.push_back(tree.Path(child) + (tree.IsDir(child) ? "/" : ""));
    if (tree.IsDir(child)) {
      for (std::string& p : Walk(tree, child)) out.push_back(std::move(p));
    }
  }
  return out;
}

TEST(TreeTest, NestedKeysBecomeFoldersAndFiles) {
  FileTree tree =
      Build("data/", {Obj("data/a.txt", 5), Obj("data/x/y/z.bin", 7), Obj("data/x/b", 3)});
  EXPECT_EQ(Walk(tree), (std::vector<std::string>{"a.txt", "x/", "x/b", "x/y/", "x/y/z.bin"}));
  NodeId z = Resolve(tree, "x/y/z.bin");
  ASSERT_NE(z, FileTree::kNoNode);
  EXPECT_FALSE(tree.IsDir(z));
  EXPECT_EQ(tree.Size(z), 7u);
  EXPECT_EQ(tree.Name(z), "z.bin");
  EXPECT_EQ(tree.Path(z), "x/y/z.bin");
  EXPECT_EQ(tree.Key(z), "data/x/y/z.bin");
  EXPECT_EQ(tree.Parent(z), Resolve(tree, "x/y"));
  EXPECT_EQ(tree.Parent(FileTree::kRootId), FileTree::kRootId);
  EXPECT_EQ(tree.Name(FileTree::kRootId), "");
  EXPECT_EQ(tree.report().files, 3u);
  EXPECT_EQ(tree.report().folders, 2u);
  EXPECT_EQ(tree.report().bytes, 15u);
  EXPECT_EQ(tree.node_count(), 6u);
  // Names are NUL-terminated in place, for fuse_add_direntry.
  EXPECT_EQ(tree.Name(z).data()[tree.Name(z).size()], '\0');
}

TEST(TreeTest, BucketRootPrefix) {
  FileTree tree = Build("", {Obj("top.csv"), Obj("train/part-0")});
  EXPECT_EQ(Walk(tree), (std::vector<std::string>{"top.csv", "train/", "train/part-0"}));
  EXPECT_EQ(tree.Key(Resolve(tree, "train/part-0")), "train/part-0");
}

TEST(TreeTest, ObjectCarriesTheListing) {
  FileTree tree = Build("p/", {Obj("p/d/f", 42, 1'600'000'000, "abc-3")});
  ObjectInfo info = tree.Object(Resolve(tree, "d/f"));
  EXPECT_EQ(info.key, "p/d/f");
  EXPECT_EQ(info.size, 42u);
  EXPECT_EQ(info.etag, "abc-3");
  EXPECT_EQ(info.last_modified, system_clock::time_point(std::chrono::seconds(1'600'000'000)));
}

TEST(TreeTest, FolderMarkersMakeFoldersNotFiles) {
  FileTree tree =
      Build("data/", {Obj("data/", 0, 100), Obj("data/empty/", 0, 200), Obj("data/sub/", 0, 300),
                      Obj("data/sub/f", 1, 250), Obj("data/deep/er/", 0, 50)});
  EXPECT_EQ(Walk(tree), (std::vector<std::string>{"deep/", "deep/er/", "empty/", "sub/", "sub/f"}));
  EXPECT_TRUE(tree.IsDir(Resolve(tree, "empty")));
  EXPECT_EQ(tree.ChildCount(Resolve(tree, "empty")), 0u);
  EXPECT_EQ(tree.report().folder_markers, 4u);
  EXPECT_EQ(tree.report().files, 1u);
  EXPECT_EQ(tree.report().skipped_keys, 0u);
  // A marker dates its folder; a folder is as new as the newest thing below it.
  auto seconds = [&](std::string_view path) {
    return std::chrono::duration_cast<std::chrono::seconds>(
               tree.LastModified(Resolve(tree, path)).time_since_epoch())
        .count();
  };
  EXPECT_EQ(seconds("empty"), 200);
  EXPECT_EQ(seconds("sub"), 300);
  EXPECT_EQ(seconds("deep"), 50);
  EXPECT_EQ(seconds(""), 300);
}

TEST(TreeTest, FolderWinsOverFileOfTheSameNameInEitherOrder) {
  for (bool file_first : {true, false}) {
    std::vector<ObjectInfo> objects = {Obj("p/a", 9), Obj("p/a/b", 2)};
    if (!file_first) std::swap(objects[0], objects[1]);
    FileTree tree = Build("p/", objects);
    NodeId a = Resolve(tree, "a");
    ASSERT_NE(a, FileTree::kNoNode);
    EXPECT_TRUE(tree.IsDir(a)) << file_first;
    EXPECT_EQ(tree.Size(a), 0u);
    EXPECT_EQ(tree.Etag(a), "");
    EXPECT_EQ(Walk(tree), (std::vector<std::string>{"a/", "a/b"}));
    EXPECT_EQ(tree.report().hidden_files, 1u);
    EXPECT_EQ(tree.report().hidden_examples, std::vector<std::string>{"p/a"});
    EXPECT_EQ(tree.report().files, 1u);
  }
}

TEST(TreeTest, FolderMarkerHidesFileOfTheSameName) {
  FileTree tree = Build("p/", {Obj("p/m", 4), Obj("p/m/"), Obj("p/x/y", 1), Obj("p/x")});
  EXPECT_TRUE(tree.IsDir(Resolve(tree, "m")));
  EXPECT_TRUE(tree.IsDir(Resolve(tree, "x")));
  EXPECT_EQ(tree.report().hidden_files, 2u);
  EXPECT_EQ(tree.report().hidden_examples, (std::vector<std::string>{"p/m", "p/x"}));
}

TEST(TreeTest, DeepCollisionNamesTheHiddenKey) {
  FileTree tree = Build("p/", {Obj("p/a/b"), Obj("p/a/b/c/d")});
  EXPECT_EQ(tree.report().hidden_examples, std::vector<std::string>{"p/a/b"});
  EXPECT_EQ(Walk(tree), (std::vector<std::string>{"a/", "a/b/", "a/b/c/", "a/b/c/d"}));
}

TEST(TreeTest, DuplicateKeyKeepsTheFirstListing) {
  FileTree tree = Build("p/", {Obj("p/f", 1, 1, "first"), Obj("p/f", 2, 2, "second")});
  EXPECT_EQ(tree.Etag(Resolve(tree, "f")), "first");
  EXPECT_EQ(tree.report().files, 1u);
  EXPECT_EQ(tree.report().hidden_files, 0u);
}

TEST(TreeTest, HostileKeysAreSkippedNeverEscape) {
  std::string nul_key = std::string("p/nul") + '\0' + "x";
  std::vector<ObjectInfo> objects = {Obj("p/a//b"),
                                     Obj("p//abs"),
                                     Obj("p/./dot"),
                                     Obj("p/../up"),
                                     Obj("p/x/.."),
                                     Obj("p/x/./y"),
                                     Obj(nul_key),
                                     Obj("p/" + std::string(256, 'n')),
                                     Obj("p/a//"),
                                     Obj("p/ok"),
                                     Obj("p/" + std::string(255, 'k')),
                                     Obj("p/..."),
                                     Obj("p/.hidden")};
  FileTree tree = Build("p/", objects);
  EXPECT_EQ(tree.report().skipped_keys, 9u);
  EXPECT_EQ(tree.report().skipped_examples.size(), TreeBuildReport::kMaxExamples);
  EXPECT_EQ(tree.report().skipped_examples[0], "p/a//b");
  std::vector<std::string> expected = {"...", ".hidden", std::string(255, 'k'), "ok"};
  EXPECT_EQ(Walk(tree), expected);
  EXPECT_EQ(Resolve(tree, ".."), FileTree::kNoNode);
  EXPECT_EQ(Resolve(tree, "a"), FileTree::kNoNode);  // nothing of a skipped key is created
}

TEST(TreeTest, KeysOutsideThePrefixAreSkipped) {
  FileTree tree = Build("p/", {Obj("q/x"), Obj("p/y")});
  EXPECT_EQ(tree.report().skipped_keys, 1u);
  EXPECT_EQ(Walk(tree), std::vector<std::string>{"y"});
}

TEST(TreeTest, ChildrenSortedByBytesWhateverTheListingOrder) {
  // "a-c" < "a/b" as keys ('-' < '/') but "a" < "a-c" as names: listing order is not name order.
  std::vector<std::string> names = {"b",   "a-c", "Z",  "a", "\xc3\xa9t\xc3\xa9",
                                    "a.1", "_",   "10", "9"};
  std::vector<ObjectInfo> objects;
  for (const std::string& n : names) objects.push_back(Obj("p/" + n + (n == "a" ? "/b" : "")));
  std::mt19937 rng(7);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(objects.begin(), objects.end(), rng);
    FileTree tree = Build("p/", objects);
    std::vector<std::string> got;
    for (size_t i = 0; i < tree.ChildCount(FileTree::kRootId); ++i) {
      got.emplace_back(tree.Name(tree.Child(FileTree::kRootId, i)));
    }
    std::vector<std::string> want = names;
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
    EXPECT_EQ(got.front(), "10");
    EXPECT_EQ(got.back(), "\xc3\xa9t\xc3\xa9");  // UTF-8 sorts after ASCII, as unsigned bytes
    for (const std::string& n : names) {
      NodeId id = tree.Lookup(FileTree::kRootId, n);
      ASSERT_NE(id, FileTree::kNoNode) << n;
      EXPECT_EQ(tree.Name(id), n);
    }
  }
}

TEST(TreeTest, LookupMisses) {
  FileTree tree = Build("p/", {Obj("p/d/f"), Obj("p/g")});
  EXPECT_EQ(tree.Lookup(FileTree::kRootId, "nope"), FileTree::kNoNode);
  EXPECT_EQ(tree.Lookup(FileTree::kRootId, ""), FileTree::kNoNode);
  EXPECT_EQ(tree.Lookup(FileTree::kRootId, "d/f"), FileTree::kNoNode);
  EXPECT_EQ(tree.Lookup(Resolve(tree, "g"), "x"), FileTree::kNoNode);  // a file has no children
  EXPECT_EQ(tree.Lookup(Resolve(tree, "d"), "f"), Resolve(tree, "d/f"));
  EXPECT_TRUE(tree.Contains(FileTree::kRootId));
  EXPECT_TRUE(tree.Contains(tree.node_count()));
  EXPECT_FALSE(tree.Contains(0));
  EXPECT_FALSE(tree.Contains(tree.node_count() + 1));
}

TEST(TreeTest, Attributes) {
  FileTree tree = Build("p/", {Obj("p/f", 1025, 1'650'000'000), Obj("p/d/e/x"), Obj("p/d/g/y"),
                               Obj("p/d/z"), Obj("p/empty", 0)});
  struct stat st;
  tree.FillAttributes(Resolve(tree, "f"), 1234, 5678, &st);
  EXPECT_EQ(st.st_mode, S_IFREG | 0444);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_size, 1025);
  EXPECT_EQ(st.st_blocks, 3);
  EXPECT_EQ(st.st_blksize, 1 << 20);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'650'000'000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 0);
  EXPECT_EQ(st.st_ctim.tv_sec, 1'650'000'000);
  EXPECT_EQ(st.st_ino, Resolve(tree, "f"));

  tree.FillAttributes(Resolve(tree, "empty"), 0, 0, &st);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_blocks, 0);

  tree.FillAttributes(Resolve(tree, "d"), 0, 0, &st);
  EXPECT_EQ(st.st_mode, S_IFDIR | 0555);
  EXPECT_EQ(st.st_nlink, 4u);  // 2 + subfolders e and g
  EXPECT_EQ(st.st_size, 0);

  tree.FillAttributes(FileTree::kRootId, 0, 0, &st);
  EXPECT_EQ(st.st_ino, 1u);
  EXPECT_EQ(st.st_nlink, 3u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'700'000'000);
}

TEST(TreeTest, SubSecondTimesSurvive) {
  ObjectInfo info = Obj("p/f");
  info.last_modified += std::chrono::milliseconds(250);
  FileTree tree = Build("p/", {info});
  struct stat st;
  tree.FillAttributes(Resolve(tree, "f"), 0, 0, &st);
  EXPECT_EQ(st.st_mtim.tv_nsec, 250'000'000);
}

TEST(TreeTest, HundredThousandObjectsStayCompact) {
  std::vector<ObjectInfo> objects;
  objects.reserve(100'000);
  for (int i = 0; i < 100'000; ++i) {
    char key[96];
    std::snprintf(key, sizeof(key), "datasets/imagenet/train/n%08d/img_%07d.JPEG", i / 1000, i);
    // A multipart ETag, as S3 gives large objects: the longest common form.
    objects.push_back(Obj(key, 110'000, 1'700'000'000, "0123456789abcdef0123456789abcdef-12"));
  }
  FileTreeBuilder builder("datasets/imagenet/");
  for (const ObjectInfo& o : objects) builder.Add(o);
  Result<FileTree> tree = builder.Finish();
  ASSERT_TRUE(tree.ok());
  double per_object = static_cast<double>(tree->MemoryBytes()) / 100'000;
  std::printf("tree memory: %.1f bytes per object (%zu nodes, %.1f MiB)\n", per_object,
              tree->node_count(), static_cast<double>(tree->MemoryBytes()) / (1 << 20));
  EXPECT_LT(per_object, 128);
  EXPECT_EQ(tree->report().files, 100'000u);
  EXPECT_EQ(tree->report().folders, 101u);
  NodeId f = Resolve(*tree, "train/n00000042/img_0042123.JPEG");
  ASSERT_NE(f, FileTree::kNoNode);
  EXPECT_EQ(tree->Key(f), "datasets/imagenet/train/n00000042/img_0042123.JPEG");
}

TEST(TreeTest, FolderPrefixRule) {
  auto check = [](const char* uri) { return CheckFolderPrefix(*ParseStoreUri(uri)); };
  EXPECT_TRUE(check("s3://bucket").ok());
  EXPECT_TRUE(check("s3://bucket/").ok());
  EXPECT_TRUE(check("s3://bucket/train/").ok());
  EXPECT_TRUE(check("file:///data/train/").ok());
  Status s = check("s3://bucket/train");
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'s3://bucket/train/'"), std::string::npos) << s.message();
  EXPECT_FALSE(check("s3://bucket/train-01/data.csv").ok());
}

TEST(FastFileListTest, ListsEveryPageWithMarkers) {
  FakeObjectStore store;
  store.CreateBucket("b");
  for (int i = 0; i < 2500; ++i) {
    ASSERT_TRUE(
        store.PutRamp("b", "ds/shard-" + std::to_string(i % 5) + "/f" + std::to_string(i), i % 3)
            .ok());
  }
  ASSERT_TRUE(store.Put({"b", "ds/only-marker/"}, "").ok());
  ASSERT_TRUE(store.Put({"b", "ds-other/x"}, "x").ok());  // shares the raw prefix "ds"
  Result<FileTree> tree = ListFileTree(store, *ParseStoreUri("s3://b/ds/"));
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_GE(store.list_calls(), 3);
  EXPECT_EQ(tree->report().files, 2500u);
  EXPECT_EQ(tree->ChildCount(FileTree::kRootId), 6u);
  NodeId f = Resolve(*tree, "shard-2/f7");
  ASSERT_NE(f, FileTree::kNoNode);
  EXPECT_EQ(tree->Size(f), 1u);
  EXPECT_FALSE(tree->Etag(f).empty());
  EXPECT_TRUE(tree->IsDir(Resolve(*tree, "only-marker")));
}

TEST(FastFileListTest, ParallelListingBuildsTheSameTreeAsOneListing) {
  FakeObjectStore store;
  store.CreateBucket("b");
  std::mt19937 rng(3);
  auto put = [&](const std::string& key, uint64_t size) {
    ASSERT_TRUE(store.PutRamp("b", key, size).ok());
  };
  // Files at every depth, folders of very different sizes, markers, a file shadowed by a folder,
  // a '//' key, and a flat folder with more keys than one page.
  for (int i = 0; i < 1200; ++i) put("ds/flat/f" + std::to_string(i), i % 7);
  for (int d = 0; d < 40; ++d) {
    for (int i = 0; i < int(rng() % 30); ++i) {
      put("ds/nested/d" + std::to_string(d) + "/e" + std::to_string(i % 3) + "/g" + std::to_string(i), 1);
    }
  }
  put("ds/top.txt", 3);
  put("ds/nested/mid.txt", 4);
  put("ds/marker/", 0);
  put("ds/nested", 5);
  put("ds/bad//name", 1);
  put("dsx/not-under-prefix", 1);
  for (int parallelism : {1, 2, 16}) {
    Result<FileTree> parallel = ListFileTree(store, *ParseStoreUri("s3://b/ds/"), nullptr, parallelism);
    ASSERT_TRUE(parallel.ok()) << parallel.status().ToString();
    // Reference: one recursive listing, built in listing order.
    std::vector<ObjectInfo> listed;
    ListRequest request{"b", "ds/", "", "", "", 1000};
    do {
      Result<ListPage> page = store.List(request);
      ASSERT_TRUE(page.ok());
      listed.insert(listed.end(), page->objects.begin(), page->objects.end());
      request.continuation_token = page->next_continuation_token;
    } while (!request.continuation_token.empty());
    FileTree reference = Build("ds/", listed);
    ASSERT_EQ(parallel->node_count(), reference.node_count()) << parallelism;
    std::vector<std::string> got, want;
    for (NodeId id = 1; id <= reference.node_count(); ++id) {
      want.push_back(reference.Path(id) + (reference.IsDir(id) ? "/" : " " + std::to_string(reference.Size(id))));
      got.push_back(parallel->Path(id) + (parallel->IsDir(id) ? "/" : " " + std::to_string(parallel->Size(id))));
    }
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    EXPECT_TRUE(got == want) << "parallelism " << parallelism;
    EXPECT_EQ(parallel->report().files, reference.report().files);
    EXPECT_EQ(parallel->report().hidden_files, 1u);
    EXPECT_EQ(parallel->report().skipped_keys, 1u);
    EXPECT_EQ(parallel->report().folder_markers, 1u);
  }
}

TEST(FastFileListTest, EmptyPrefixMissingBucketAndCancel) {
  FakeObjectStore store;
  store.CreateBucket("b");
  ASSERT_TRUE(store.Put({"b", "ds/marker/"}, "").ok());
  Result<FileTree> empty = ListFileTree(store, *ParseStoreUri("s3://b/ds/"));
  EXPECT_EQ(empty.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(empty.status().message().find("no objects match s3://b/ds/"), std::string::npos);
  EXPECT_EQ(ListFileTree(store, *ParseStoreUri("s3://missing/")).status().code(),
            ErrorCode::kNotFound);
  std::atomic<bool> cancel{true};
  EXPECT_EQ(ListFileTree(store, *ParseStoreUri("s3://b/"), &cancel).status().code(),
            ErrorCode::kCancelled);
}

}  // namespace
}  // namespace trainfeed
