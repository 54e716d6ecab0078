#include "dataset/local_names.h"

#include <gtest/gtest.h>

namespace trainfeed {
namespace {

std::string NameOf(std::string_view prefix, std::string_view key) {
  Result<std::string> r = LocalNameForPrefixKey(prefix, key);
  return r.ok() ? *r : "ERROR: " + r.status().message();
}

TEST(LocalNames, PrefixEndingInSlashStripsIt) {
  EXPECT_EQ(NameOf("data/train/", "data/train/a.csv"), "a.csv");
  EXPECT_EQ(NameOf("data/train/", "data/train/sub/b.csv"), "sub/b.csv");
  EXPECT_EQ(NameOf("", "top.csv"), "top.csv");
}

TEST(LocalNames, PrefixNamingAFolderStripsPrefixAndSlash) {
  EXPECT_EQ(NameOf("prefix/train", "prefix/train/train.csv"), "train.csv");
  EXPECT_EQ(NameOf("prefix/train", "prefix/train/x/y.csv"), "x/y.csv");
}

TEST(LocalNames, PartialNameKeepsNameAfterLastSlash) {
  // The service's rule (not SDK local mode, which would give "-data.csv").
  EXPECT_EQ(NameOf("data/train", "data/train-data.csv"), "train-data.csv");
  EXPECT_EQ(NameOf("data/train", "data/train-01/part.csv"), "train-01/part.csv");
  EXPECT_EQ(NameOf("data/train.csv", "data/train.csv"), "train.csv");
  EXPECT_EQ(NameOf("tr", "train.csv"), "train.csv");
}

TEST(LocalNames, HostileKeysAreRefusedWithTheKeyNamed) {
  EXPECT_EQ(NameOf("", "../../etc/passwd").rfind("ERROR: key '../../etc/passwd'", 0), 0u);
  EXPECT_NE(NameOf("p/", "p/a/../../x").find("'..' component"), std::string::npos);
  EXPECT_NE(NameOf("p/", "p/./x").find("'.' component"), std::string::npos);
  EXPECT_NE(NameOf("p/", "p//etc/passwd").find("absolute"), std::string::npos);
  EXPECT_NE(NameOf("p/", "p/a//b").find("empty path component"), std::string::npos);
  EXPECT_NE(NameOf("p/", std::string("p/a\0b", 5)).find("NUL"), std::string::npos);
  EXPECT_NE(NameOf("p/", "p/" + std::string(256, 'x')).find("255"), std::string::npos);
  EXPECT_EQ(NameOf("p/", "p/" + std::string(255, 'x')), std::string(255, 'x'));
  EXPECT_EQ(NameOf("p/x", "p/x"), "x") << "a prefix naming one object";
}

TEST(LocalNames, OddButSafeCharactersAreKept) {
  EXPECT_EQ(NameOf("p/", "p/a b+c=d~e%20é"), "a b+c=d~e%20é");
  EXPECT_EQ(NameOf("p/", "p/..hidden"), "..hidden");
}

TEST(LocalNames, FolderMarkers) {
  EXPECT_TRUE(IsFolderMarker("a/b/"));
  EXPECT_FALSE(IsFolderMarker("a/b"));
  EXPECT_FALSE(IsFolderMarker(""));
}

}  // namespace
}  // namespace trainfeed
