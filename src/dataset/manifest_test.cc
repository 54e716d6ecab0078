#include "dataset/manifest.h"

#include <gtest/gtest.h>

#include <string>

namespace trainfeed {
namespace {

constexpr std::string_view kUri = "s3://b/m.json";

std::string ErrorOf(std::string_view json) {
  Result<Manifest> r = ParseManifest(json, kUri);
  if (r.ok()) return "OK";
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  return r.status().message();
}

TEST(ParseManifest, AppendsEntriesVerbatimToThePrefix) {
  Result<Manifest> r = ParseManifest(R"([ {"prefix": "s3://customer_bucket/some/prefix/"},
      "relative/path/to/custdata-1",
      "relative/path/custdata-2" ])",
                                     kUri);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->prefix.scheme, StoreUri::Scheme::kS3);
  EXPECT_EQ(r->prefix.bucket, "customer_bucket");
  EXPECT_EQ(r->prefix.key, "some/prefix/");
  EXPECT_EQ(r->keys, (std::vector<std::string>{"some/prefix/relative/path/to/custdata-1",
                                               "some/prefix/relative/path/custdata-2"}));
}

TEST(ParseManifest, InsertsNoSlash) {
  Result<Manifest> r = ParseManifest(R"([{"prefix": "s3://b/data/train"}, "-1.csv", "/x"])", kUri);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->keys, (std::vector<std::string>{"data/train-1.csv", "data/train/x"}));
}

TEST(ParseManifest, KeepsManifestOrderAndDuplicates) {
  Result<Manifest> r = ParseManifest(R"([{"prefix": "s3://b/p/"}, "z", "a", "z"])", kUri);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->keys, (std::vector<std::string>{"p/z", "p/a", "p/z"}));
}

TEST(ParseManifest, BucketRootPrefix) {
  Result<Manifest> r = ParseManifest(R"([{"prefix": "s3://b/"}, "k1", "d/k2"])", kUri);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->prefix.key, "");
  EXPECT_EQ(r->keys, (std::vector<std::string>{"k1", "d/k2"}));
}

TEST(ParseManifest, AcceptsFilePrefix) {
  Result<Manifest> r = ParseManifest(R"([{"prefix": "file:///srv/data/"}, "a.csv"])", kUri);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->prefix.scheme, StoreUri::Scheme::kFile);
  EXPECT_EQ(r->prefix.bucket, "");
  EXPECT_EQ(r->keys, (std::vector<std::string>{"srv/data/a.csv"}));
}

TEST(ParseManifest, OnlyThePrefixParsesToNoKeys) {
  Result<Manifest> r = ParseManifest(R"([{"prefix": "s3://b/p/"}])", kUri);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->keys.empty());
}

TEST(ParseManifest, IgnoresOtherMembersOfThePrefixObject) {
  Result<Manifest> r = ParseManifest(
      R"([{"note": {"a": [1, {"prefix": 5}]}, "prefix": "s3://b/p/", "x": [[]]}, "k"])", kUri);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->keys, (std::vector<std::string>{"p/k"}));
}

TEST(ParseManifest, UnicodeAndEscapesInEntries) {
  Result<Manifest> r =
      ParseManifest(R"([{"prefix": "s3://b/p/"}, "caf\u00e9/\"q\".csv", "日本.txt"])", kUri);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->keys, (std::vector<std::string>{"p/caf\xC3\xA9/\"q\".csv", "p/日本.txt"}));
}

TEST(ParseManifest, ErrorsNameTheManifestAndTheIndex) {
  EXPECT_EQ(ErrorOf(R"([{"prefix": "s3://b/p/"}, "a", "b", 7])"),
            "manifest s3://b/m.json[3]: expected a string, got number");
  EXPECT_EQ(ErrorOf(R"([{"prefix": "s3://b/p/"}, ["a"]])"),
            "manifest s3://b/m.json[1]: expected a string, got array");
  EXPECT_EQ(ErrorOf(R"([{"prefix": "s3://b/p/"}, null])"),
            "manifest s3://b/m.json[1]: expected a string, got null");
  EXPECT_EQ(ErrorOf(R"([{"prefix": "s3://b/p/"}, {"prefix": "s3://b/q/"}])"),
            "manifest s3://b/m.json[1]: expected a string, got object");
}

TEST(ParseManifest, RejectsBadShapes) {
  EXPECT_EQ(ErrorOf(R"({"prefix": "s3://b/p/"})"),
            "manifest s3://b/m.json: expected a JSON array, got object");
  EXPECT_EQ(ErrorOf(R"("s3://b/p/")"), "manifest s3://b/m.json: expected a JSON array, got string");
  EXPECT_EQ(ErrorOf("[]"),
            "manifest s3://b/m.json: empty array; the first element must be {\"prefix\": "
            "\"s3://bucket/prefix/\"}");
  EXPECT_EQ(ErrorOf(R"(["a", "b"])"),
            "manifest s3://b/m.json[0]: expected {\"prefix\": \"s3://bucket/prefix/\"}, got "
            "string");
  EXPECT_EQ(ErrorOf(R"([{"Prefix": "s3://b/p/"}, "a"])"),
            "manifest s3://b/m.json[0]: missing \"prefix\"");
  EXPECT_EQ(ErrorOf(R"([{"prefix": ["s3://b/p/"]}, "a"])"),
            "manifest s3://b/m.json[0]: \"prefix\" must be a string, got array");
  EXPECT_EQ(ErrorOf(R"([{"prefix": "s3://b/p/", "prefix": "s3://b/q/"}])"),
            "manifest s3://b/m.json[0]: \"prefix\" appears twice");
}

TEST(ParseManifest, RejectsBadPrefixes) {
  EXPECT_EQ(ErrorOf(R"([{"prefix": "https://b.s3.amazonaws.com/p/"}])"),
            "manifest s3://b/m.json[0]: prefix 'https://b.s3.amazonaws.com/p/' is not an s3:// "
            "or file:/// URI");
  // A relative file:// prefix would depend on the current directory.
  EXPECT_EQ(ErrorOf(R"([{"prefix": "file://data/"}])"),
            "manifest s3://b/m.json[0]: prefix 'file://data/' is not an s3:// or file:/// URI");
  EXPECT_EQ(ErrorOf(R"([{"prefix": "s3:///p/"}])"),
            "manifest s3://b/m.json[0]: URI 's3:///p/': no bucket name");
  EXPECT_EQ(ErrorOf(R"([{"prefix": "s3://b?x/p/"}])"),
            "manifest s3://b/m.json[0]: URI 's3://b?x/p/': bucket name has character '?'");
}

TEST(ParseManifest, RejectsBadEntries) {
  EXPECT_EQ(ErrorOf(R"([{"prefix": "s3://b"}, "a", ""])"),
            "manifest s3://b/m.json[2]: empty entry under an empty prefix names no object");
  EXPECT_EQ(ErrorOf(R"([{"prefix": "s3://b/p/"}, "a\u0000b"])"),
            "manifest s3://b/m.json[1]: entry has a NUL byte");
  std::string long_entry(1022, 'x');  // "p/" + 1022 bytes = 1024: the S3 limit
  EXPECT_EQ(ErrorOf(R"([{"prefix": "s3://b/p/"}, ")" + long_entry + "\"]"), "OK");
  EXPECT_EQ(ErrorOf(R"([{"prefix": "s3://b/p/"}, ")" + long_entry + "y\"]"),
            "manifest s3://b/m.json[1]: key is 1025 bytes; the limit is 1024");
  // An empty entry under a non-empty prefix names the prefix object itself.
  EXPECT_EQ(ErrorOf(R"([{"prefix": "s3://b/data.csv"}, ""])"), "OK");
}

TEST(ParseManifest, RejectsInvalidJson) {
  std::string error = ErrorOf(R"([{"prefix": "s3://b/p/"}, "a",])");
  EXPECT_TRUE(error.starts_with("manifest s3://b/m.json: invalid JSON: parse error at line 1"))
      << error;
  EXPECT_TRUE(ErrorOf("").starts_with("manifest s3://b/m.json: invalid JSON: ")) << ErrorOf("");
  EXPECT_TRUE(ErrorOf(R"([{"prefix": "s3://b/p/"}, "a")")
                  .starts_with("manifest s3://b/m.json: invalid JSON: "));
  error = ErrorOf(R"([{"prefix": "s3://b/p/"}, "a"] [])");
  EXPECT_TRUE(error.starts_with("manifest s3://b/m.json: invalid JSON: ")) << error;
  error = ErrorOf("[{\"prefix\": \"s3://b/p/\"}, \"\xFF\"]");  // not UTF-8
  EXPECT_TRUE(error.starts_with("manifest s3://b/m.json: invalid JSON: ")) << error;
}

TEST(ParseManifest, MillionEntries) {
  constexpr int kEntries = 1'000'000;
  std::string json = R"([{"prefix": "s3://bucket/datasets/imagenet/train/"})";
  json.reserve(json.size() + kEntries * 24);
  for (int i = 0; i < kEntries; ++i) json += ",\n\"n" + std::to_string(i) + "/img.jpeg\"";
  json += "]";
  Result<Manifest> r = ParseManifest(json, kUri);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->keys.size(), static_cast<size_t>(kEntries));
  EXPECT_EQ(r->keys.front(), "datasets/imagenet/train/n0/img.jpeg");
  EXPECT_EQ(r->keys.back(), "datasets/imagenet/train/n999999/img.jpeg");
}

TEST(LocalNameForManifestKey, IsTheFullKey) {
  Result<std::string> r = LocalNameForManifestKey("some/prefix/relative/path/custdata-1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "some/prefix/relative/path/custdata-1");
}

TEST(LocalNameForManifestKey, RefusesUnsafeKeys) {
  for (std::string_view key : {"", "/etc/passwd", "a/../../b", "./a", "a//b", "a/b/"}) {
    Result<std::string> r = LocalNameForManifestKey(key);
    EXPECT_FALSE(r.ok()) << key;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << key;
  }
  EXPECT_EQ(LocalNameForManifestKey("a/b/").status().message(),
            "key 'a/b/' ends in '/' (a folder marker, not an object); refusing to write it");
}

// ---- AugmentedManifestReader -------------------------------------------------------------------

AugmentedRecord MustRead(const AugmentedManifestReader& reader, std::string_view line,
                         uint64_t line_number = 1) {
  Result<std::optional<AugmentedRecord>> r = reader.Next(line, line_number);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok() || !r->has_value()) return {};
  return **r;
}

std::string ReadError(const AugmentedManifestReader& reader, std::string_view line,
                      uint64_t line_number = 1) {
  Result<std::optional<AugmentedRecord>> r = reader.Next(line, line_number);
  if (r.ok()) return "OK";
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  return r.status().message();
}

TEST(AugmentedManifestReader, EmitsAttributesInAttributeNamesOrder) {
  AugmentedManifestReader reader({"source-ref", "class"});
  AugmentedRecord record = MustRead(
      reader, R"({"class": 3, "source-ref": "s3://bucket/images/0001.jpg", "meta": {"w": 640}})",
      17);
  EXPECT_EQ(record.line_number, 17u);
  ASSERT_EQ(record.attributes.size(), 2u);
  EXPECT_EQ(record.attributes[0].name, "source-ref");
  EXPECT_TRUE(record.attributes[0].is_ref);
  EXPECT_EQ(record.attributes[0].value, "s3://bucket/images/0001.jpg");
  EXPECT_EQ(record.attributes[1].name, "class");
  EXPECT_FALSE(record.attributes[1].is_ref);
  EXPECT_EQ(record.attributes[1].value, "3");
}

TEST(AugmentedManifestReader, ValueTexts) {
  AugmentedManifestReader reader({"s", "i", "neg", "f", "t", "n", "o", "a", "u", "e"});
  AugmentedRecord record = MustRead(
      reader, R"({"s": "a \"cat\"\n", "i": 1, "neg": -12, "f": 1.50, "t": true, "n": null,)"
              R"( "o": {"w": 640, "tags": ["x", "y"]}, "a": [1, 2.5, "é"], "u": "日本", "e": ""})");
  std::vector<std::string> values;
  for (const AugmentedAttribute& a : record.attributes) values.push_back(a.value);
  EXPECT_EQ(values, (std::vector<std::string>{"a \"cat\"\n", "1", "-12", "1.5", "true", "null",
                                              R"({"w":640,"tags":["x","y"]})", R"([1,2.5,"é"])",
                                              "日本", ""}));
}

TEST(AugmentedManifestReader, SkipsBlankLinesAndToleratesLineEnds) {
  AugmentedManifestReader reader({"label"});
  for (std::string_view blank : {"", "\n", "  \t\r\n", "\r\n"}) {
    Result<std::optional<AugmentedRecord>> r = reader.Next(blank, 4);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_FALSE(r->has_value());
  }
  EXPECT_EQ(MustRead(reader, "{\"label\": \"x\"}\r\n").attributes.at(0).value, "x");
}

TEST(AugmentedManifestReader, MissingAttributeNamesLineAndAttribute) {
  AugmentedManifestReader reader({"source-ref", "class"});
  EXPECT_EQ(ReadError(reader, R"({"source-ref": "s3://b/k.jpg", "Class": 1})", 12),
            "line 12: missing attribute 'class'");
  AugmentedManifestReader named({"source-ref", "class"}, "s3://b/m.jsonl");
  EXPECT_EQ(ReadError(named, R"({"class": 1})", 3),
            "augmented manifest s3://b/m.jsonl line 3: missing attribute 'source-ref'");
}

TEST(AugmentedManifestReader, RejectsNonObjectsAndInvalidJson) {
  AugmentedManifestReader reader({"class"});
  EXPECT_EQ(ReadError(reader, "[1, 2]", 5), "line 5: expected a JSON object, got array");
  EXPECT_EQ(ReadError(reader, "\"class\"", 6), "line 6: expected a JSON object, got string");
  std::string error = ReadError(reader, R"({"class": 1)", 7);
  EXPECT_TRUE(error.starts_with("line 7: invalid JSON: ")) << error;
  // Two objects on one line are not JSON Lines.
  error = ReadError(reader, R"({"class": 1} {"class": 2})", 8);
  EXPECT_TRUE(error.starts_with("line 8: invalid JSON: ")) << error;
}

TEST(AugmentedManifestReader, RefValuesMustBeObjectUris) {
  AugmentedManifestReader reader({"image-ref"});
  EXPECT_EQ(MustRead(reader, R"({"image-ref": "file:///srv/img/1.jpg"})").attributes.at(0).value,
            "file:///srv/img/1.jpg");
  EXPECT_EQ(ReadError(reader, R"({"image-ref": 42})", 2),
            "line 2: attribute 'image-ref' must be an s3:// or file:/// URI of an object; got "
            "number");
  EXPECT_EQ(ReadError(reader, R"({"image-ref": "images/1.jpg"})", 3),
            "line 3: attribute 'image-ref' must be an s3:// or file:/// URI of an object; got "
            "'images/1.jpg'");
  EXPECT_EQ(ReadError(reader, R"({"image-ref": "https://b.s3.amazonaws.com/1.jpg"})", 4),
            "line 4: attribute 'image-ref' must be an s3:// or file:/// URI of an object; got "
            "'https://b.s3.amazonaws.com/1.jpg'");
  EXPECT_EQ(ReadError(reader, R"({"image-ref": "s3://bucket/"})", 5),
            "line 5: attribute 'image-ref' must be an s3:// or file:/// URI of an object; "
            "'s3://bucket/' names no object");
  EXPECT_EQ(ReadError(reader, R"({"image-ref": "s3://bucket/dir/"})", 6),
            "line 6: attribute 'image-ref' must be an s3:// or file:/// URI of an object; "
            "'s3://bucket/dir/' names no object");
  EXPECT_EQ(ReadError(reader, R"({"image-ref": "s3:///k.jpg"})", 7),
            "line 7: attribute 'image-ref' must be an s3:// or file:/// URI of an object; URI "
            "'s3:///k.jpg': no bucket name");
  EXPECT_EQ(ReadError(reader, R"({"image-ref": "file://rel/1.jpg"})", 8),
            "line 8: attribute 'image-ref' must be an s3:// or file:/// URI of an object; got "
            "'file://rel/1.jpg'");
}

TEST(AugmentedManifestReader, OnlyTheRefSuffixMakesAReference) {
  AugmentedManifestReader reader({"ref", "x-REF", "source-ref"});
  AugmentedRecord record =
      MustRead(reader, R"({"ref": "s3://b/a", "x-REF": "plain", "source-ref": "s3://b/c"})");
  ASSERT_EQ(record.attributes.size(), 3u);
  EXPECT_FALSE(record.attributes[0].is_ref);
  EXPECT_FALSE(record.attributes[1].is_ref);
  EXPECT_TRUE(record.attributes[2].is_ref);
}

}  // namespace
}  // namespace trainfeed
