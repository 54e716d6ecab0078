#include "store/s3/s3_xml.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <pugixml.hpp>
#include <sstream>
#include <string>

namespace trainfeed {
namespace {

using std::chrono::system_clock;

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(TRAINFEED_TESTDATA_DIR) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing testdata " << name;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Seconds since the epoch of a UTC civil time, computed independently of the parser.
system_clock::time_point Utc(int y, unsigned mo, unsigned d, int h, int mi, int s) {
  using namespace std::chrono;
  return sys_days(year(y) / month(mo) / day(d)) + hours(h) + minutes(mi) + seconds(s);
}

std::string ListBody(std::string_view inner) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
         "<Name>b</Name>" +
         std::string(inner) + "</ListBucketResult>";
}

std::string OneObject(std::string_view key, std::string_view size = "1",
                      std::string_view modified = "2024-01-02T03:04:05.000Z") {
  return "<Contents><Key>" + std::string(key) + "</Key><LastModified>" + std::string(modified) +
         "</LastModified><ETag>&quot;e&quot;</ETag><Size>" + std::string(size) +
         "</Size></Contents>";
}

// --- ListObjectsV2, golden bodies ---

TEST(ParseListObjectsV2Test, TruncatedPage) {
  Result<ListPage> page = ParseListObjectsV2(ReadTestdata("list_truncated.xml"));
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->next_continuation_token,
            "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM+bn4i7yvZw==");
  ASSERT_EQ(page->objects.size(), 3u);
  EXPECT_EQ(page->objects[0].key, "imagenet/train/shard-00000.tar");
  EXPECT_EQ(page->objects[0].size, 268435456u);
  EXPECT_EQ(page->objects[0].etag, "9b2cf535f27731c974343645a3985328");
  EXPECT_EQ(page->objects[0].last_modified, Utc(2024, 3, 11, 9, 14, 2));
  EXPECT_EQ(page->objects[1].etag, "d41d8cd98f00b204e9800998ecf8427e-3");
  EXPECT_EQ(page->objects[1].size, 402653184u);
  EXPECT_EQ(page->objects[2].key, "imagenet/train/shard-00002.tar");
  EXPECT_EQ(page->objects[2].size, 5u);
  EXPECT_EQ(page->objects[2].last_modified, Utc(2024, 3, 12, 17, 50, 30));
  EXPECT_TRUE(page->common_prefixes.empty());
}

TEST(ParseListObjectsV2Test, LastPageHasNoToken) {
  Result<ListPage> page = ParseListObjectsV2(ReadTestdata("list_last_page.xml"));
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->next_continuation_token, "");
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[1].key, "imagenet/train/shard-00004.tar");
  EXPECT_EQ(page->objects[1].size, 0u);
  EXPECT_EQ(page->objects[1].etag, "92eb5ffee6ae2fec3ad71c777531578f-17");
}

TEST(ParseListObjectsV2Test, EncodedKeysAreFormDecoded) {
  Result<ListPage> page = ParseListObjectsV2(ReadTestdata("list_encoded_keys.xml"));
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 6u);
  EXPECT_EQ(page->objects[0].key, "data/100%.csv");
  EXPECT_EQ(page->objects[1].key, "data/a+b.txt");  // %2B is a literal plus
  EXPECT_EQ(page->objects[2].key, "data/caf\xC3\xA9 & cr\xC3\xA8me.json");
  EXPECT_EQ(page->objects[3].key, "data/line\nbreak.txt");      // why we ask for encoding
  EXPECT_EQ(page->objects[4].key, "data/run books/notes.txt");  // '+' is a space
  EXPECT_EQ(page->objects[5].key, "data/\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E/\xF0\x9F\x93\xB7.jpg");
  EXPECT_EQ(page->objects[5].size, 15u);
}

TEST(ParseListObjectsV2Test, RawKeysStayRawWithoutEncodingType) {
  // A server that ignores encoding-type=url says so by leaving out <EncodingType>.
  Result<ListPage> page = ParseListObjectsV2(ReadTestdata("list_raw_keys.xml"));
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 3u);
  EXPECT_EQ(page->objects[0].key, "raw/100%.csv");
  EXPECT_EQ(page->objects[1].key, "raw/Tom & Jerry.mp4");
  EXPECT_EQ(page->objects[2].key, "raw/a+b.txt");
  EXPECT_EQ(page->objects[2].last_modified, Utc(2024, 1, 2, 3, 4, 5));
}

TEST(ParseListObjectsV2Test, CommonPrefixes) {
  Result<ListPage> page = ParseListObjectsV2(ReadTestdata("list_common_prefixes.xml"));
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "datasets/README.md");
  ASSERT_EQ(page->common_prefixes.size(), 3u);
  EXPECT_EQ(page->common_prefixes[0], "datasets/coco/");
  EXPECT_EQ(page->common_prefixes[1], "datasets/open images/");
  EXPECT_EQ(page->common_prefixes[2], "datasets/\xED\x95\x9C\xEA\xB8\x80/");
}

TEST(ParseListObjectsV2Test, EmptyListing) {
  Result<ListPage> page = ParseListObjectsV2(ReadTestdata("list_empty.xml"));
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->objects.empty());
  EXPECT_TRUE(page->common_prefixes.empty());
  EXPECT_EQ(page->next_continuation_token, "");
}

TEST(ParseListObjectsV2Test, ErrorBodyMapsLikeAnHttpError) {
  Result<ListPage> page = ParseListObjectsV2(ReadTestdata("error_no_such_bucket.xml"));
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(page.status().message().find("NoSuchBucket"), std::string::npos);
  EXPECT_NE(page.status().message().find("7XK2M4R9QBTN3HFW"), std::string::npos);
}

// --- ListObjectsV2, bodies that must be refused ---

TEST(ParseListObjectsV2Test, TruncatedWithoutTokenIsDataLoss) {
  for (const std::string& inner :
       {std::string("<IsTruncated>true</IsTruncated>") + OneObject("a"),
        std::string(
            "<IsTruncated>true</IsTruncated><NextContinuationToken></NextContinuationToken>")}) {
    Result<ListPage> page = ParseListObjectsV2(ListBody(inner));
    ASSERT_FALSE(page.ok()) << inner;
    EXPECT_EQ(page.status().code(), ErrorCode::kDataLoss);
    EXPECT_NE(page.status().message().find("NextContinuationToken"), std::string::npos);
  }
}

TEST(ParseListObjectsV2Test, TokenIgnoredWhenNotTruncated) {
  Result<ListPage> page = ParseListObjectsV2(ListBody(
      "<NextContinuationToken>abc</NextContinuationToken><IsTruncated>false</IsTruncated>"));
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->next_continuation_token, "");
}

TEST(ParseListObjectsV2Test, TokenIsNeverDecoded) {
  Result<ListPage> page =
      ParseListObjectsV2(ListBody("<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
                                  "<NextContinuationToken>a+b%2F==</NextContinuationToken>"));
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->next_continuation_token, "a+b%2F==");
}

TEST(ParseListObjectsV2Test, IsTruncatedIsRequiredAndSingle) {
  for (const std::string& inner :
       {OneObject("a"), std::string("<IsTruncated>maybe</IsTruncated>"),
        std::string("<IsTruncated>false</IsTruncated><IsTruncated>true</IsTruncated>"
                    "<NextContinuationToken>t</NextContinuationToken>")}) {
    Result<ListPage> page = ParseListObjectsV2(ListBody(inner));
    ASSERT_FALSE(page.ok()) << inner;
    EXPECT_EQ(page.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(page.status().message().find("IsTruncated"), std::string::npos);
  }
}

TEST(ParseListObjectsV2Test, MalformedXmlNamesDocumentAndOffset) {
  const std::string golden = ReadTestdata("list_truncated.xml");
  for (const std::string& body :
       {std::string("not xml"), golden.substr(0, golden.size() / 2),
        std::string("<ListBucketResult><IsTruncated>false</Truncated></ListBucketResult>")}) {
    Result<ListPage> page = ParseListObjectsV2(body);
    ASSERT_FALSE(page.ok()) << body;
    EXPECT_EQ(page.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(page.status().message().rfind("ListObjectsV2 response: malformed XML at offset ", 0),
              0u)
        << page.status().message();
  }
}

TEST(ParseListObjectsV2Test, EmptyBody) {
  for (std::string_view body : {"", " \r\n"}) {
    Result<ListPage> page = ParseListObjectsV2(body);
    ASSERT_FALSE(page.ok());
    EXPECT_EQ(page.status().message(), "ListObjectsV2 response: empty body");
  }
}

TEST(ParseListObjectsV2Test, RefusesWrongShapes) {
  const std::string bodies[] = {
      "<ListAllMyBucketsResult/>",
      "<html><body>502 Bad Gateway</body></html>",
      "<!DOCTYPE ListBucketResult><ListBucketResult><IsTruncated>false</IsTruncated>"
      "</ListBucketResult>",
      "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult><Extra/>",
      ListBody("<EncodingType>base64</EncodingType><IsTruncated>false</IsTruncated>"),
      ListBody("<IsTruncated>false</IsTruncated><Contents><Size>1</Size></Contents>"),
      ListBody("<IsTruncated>false</IsTruncated>" + OneObject("")),
      ListBody("<IsTruncated>false</IsTruncated><Contents><Key>a</Key></Contents>"),
      ListBody("<IsTruncated>false</IsTruncated><Contents><Key>a</Key><Key>b</Key>"
               "<Size>1</Size></Contents>"),
      ListBody("<IsTruncated>false</IsTruncated><CommonPrefixes><Prefix></Prefix>"
               "</CommonPrefixes>"),
  };
  for (const std::string& body : bodies) {
    Result<ListPage> page = ParseListObjectsV2(body);
    ASSERT_FALSE(page.ok()) << body;
    EXPECT_EQ(page.status().code(), ErrorCode::kInvalidArgument) << body;
    EXPECT_EQ(page.status().message().rfind("ListObjectsV2 response", 0), 0u);
  }
}

TEST(ParseListObjectsV2Test, Sizes) {
  auto size_of = [](std::string_view size) -> Result<uint64_t> {
    Result<ListPage> page =
        ParseListObjectsV2(ListBody("<IsTruncated>false</IsTruncated>" + OneObject("k", size)));
    if (!page.ok()) return page.status();
    return page->objects.at(0).size;
  };
  EXPECT_EQ(*size_of("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(*size_of(" 42\n"), 42u);
  for (std::string_view bad : {"", "-1", "+1", "12x", "1.5", "18446744073709551616", "0x10"}) {
    Result<uint64_t> size = size_of(bad);
    ASSERT_FALSE(size.ok()) << bad;
    EXPECT_NE(size.status().message().find("Size"), std::string::npos);
    EXPECT_NE(size.status().message().find("\"k\""), std::string::npos);  // names the key
  }
}

TEST(ParseListObjectsV2Test, Timestamps) {
  auto time_of = [](std::string_view modified) -> Result<system_clock::time_point> {
    Result<ListPage> page = ParseListObjectsV2(
        ListBody("<IsTruncated>false</IsTruncated>" + OneObject("k", "1", modified)));
    if (!page.ok()) return page.status();
    return page->objects.at(0).last_modified;
  };
  const system_clock::time_point base = Utc(2009, 10, 12, 17, 50, 30);
  EXPECT_EQ(*time_of("2009-10-12T17:50:30.000Z"), base);
  EXPECT_EQ(*time_of("2009-10-12T17:50:30Z"), base);
  EXPECT_EQ(*time_of("2009-10-12T17:50:30.5Z"), base + std::chrono::milliseconds(500));
  EXPECT_EQ(*time_of("2009-10-12T17:50:30.123456Z"), base + std::chrono::microseconds(123456));
  EXPECT_EQ(*time_of("2009-10-12T19:50:30+02:00"), base);
  EXPECT_EQ(*time_of("2009-10-12T12:20:30-05:30"), base);
  EXPECT_EQ(*time_of("1970-01-01T00:00:00.000Z"), system_clock::time_point{});
  EXPECT_EQ(*time_of("2024-02-29T00:00:00Z"), Utc(2024, 2, 29, 0, 0, 0));
  for (std::string_view bad :
       {"", "2009-10-12", "2009-10-12T17:50:30", "2009-10-12 17:50:30Z", "2009-13-12T17:50:30Z",
        "2023-02-29T00:00:00Z", "2009-10-12T24:00:00Z", "2009-10-12T17:50:30.Z",
        "2009-10-12T17:50:30.000ZZ", "Mon, 12 Oct 2009 17:50:30 GMT", "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z"}) {
    Result<system_clock::time_point> time = time_of(bad);
    ASSERT_FALSE(time.ok()) << bad;
    EXPECT_NE(time.status().message().find("LastModified"), std::string::npos);
  }
}

TEST(ParseListObjectsV2Test, PercentDecoding) {
  auto key_of = [](std::string_view encoded) -> Result<std::string> {
    Result<ListPage> page = ParseListObjectsV2(ListBody(
        "<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>" + OneObject(encoded)));
    if (!page.ok()) return page.status();
    return page->objects.at(0).key;
  };
  EXPECT_EQ(*key_of("a+b"), "a b");
  EXPECT_EQ(*key_of("a%2Bb"), "a+b");
  EXPECT_EQ(*key_of("%c3%a9%C3%A9"), "\xC3\xA9\xC3\xA9");
  EXPECT_EQ(*key_of("a%00b"), std::string("a\0b", 3));
  EXPECT_EQ(*key_of("%25%2525"), "%%25");
  for (std::string_view bad : {"%", "a%2", "%zz", "%%", "a%g0"}) {
    Result<std::string> key = key_of(bad);
    ASSERT_FALSE(key.ok()) << bad;
    EXPECT_EQ(key.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(key.status().message().find("url encoding"), std::string::npos);
  }
}

TEST(ParseListObjectsV2Test, ToleratesPrefixesCdataAndUnknownElements) {
  const std::string body =
      "<s3:ListBucketResult xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<s3:IsTruncated> false </s3:IsTruncated><s3:Future>x</s3:Future>"
      "<s3:Contents><s3:Key>a<![CDATA[&<b>]]>c</s3:Key><s3:Size>3</s3:Size>"
      "<s3:RestoreStatus><s3:IsRestoreInProgress>true</s3:IsRestoreInProgress>"
      "</s3:RestoreStatus></s3:Contents></s3:ListBucketResult>";
  Result<ListPage> page = ParseListObjectsV2(body);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "a&<b>c");
  EXPECT_EQ(page->objects[0].etag, "");
  EXPECT_EQ(page->objects[0].last_modified, system_clock::time_point{});
}

TEST(ParseListObjectsV2Test, WhitespaceKeyIsKeptVerbatim) {
  Result<ListPage> page =
      ParseListObjectsV2(ListBody("<IsTruncated>false</IsTruncated>" + OneObject(" ")));
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->objects.at(0).key, " ");
}

// --- Error documents ---

TEST(ParseS3ErrorTest, Goldens) {
  std::optional<S3Error> error = ParseS3Error(ReadTestdata("error_no_such_bucket.xml"));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, "NoSuchBucket");
  EXPECT_EQ(error->message, "The specified bucket does not exist");
  EXPECT_EQ(error->resource, "trainfeed-missing");
  EXPECT_EQ(error->request_id, "7XK2M4R9QBTN3HFW");

  error = ParseS3Error(ReadTestdata("error_access_denied.xml"));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, "AccessDenied");
  EXPECT_EQ(error->message, "Access Denied");
  EXPECT_EQ(error->resource, "");
  EXPECT_EQ(error->request_id, "3B5QH8V1ZKD2YF0M");

  error = ParseS3Error(ReadTestdata("error_signature_does_not_match.xml"));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, "SignatureDoesNotMatch");
  EXPECT_EQ(error->request_id, "9PXA1C7D4E2F8G6H");

  error = ParseS3Error(ReadTestdata("error_slow_down.xml"));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, "SlowDown");
  EXPECT_EQ(error->message, "Please reduce your request rate.");
}

TEST(ParseS3ErrorTest, ResourceFromBucketAndKey) {
  std::optional<S3Error> error = ParseS3Error(
      "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
      "<BucketName>b</BucketName><Key>dir/k</Key><RequestId>R</RequestId></Error>");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->resource, "b/dir/k");
  error = ParseS3Error("<Error><Code>NoSuchKey</Code><Resource>/b/k</Resource></Error>");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->resource, "/b/k");
}

TEST(ParseS3ErrorTest, NotAnErrorDocument) {
  for (const std::string& body :
       {std::string(""), std::string("<html><body>Bad Gateway</body></html>"),
        std::string("<Error><Code>x</Code>"), ReadTestdata("list_empty.xml"),
        std::string("{\"error\":\"nope\"}")}) {
    EXPECT_FALSE(ParseS3Error(body).has_value()) << body;
  }
}

// --- Multipart ---

TEST(ParseInitiateMultipartUploadTest, Golden) {
  Result<std::string> id =
      ParseInitiateMultipartUpload(ReadTestdata("initiate_multipart_upload.xml"));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, "VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA.4Tq_zjm6wGo-");
}

TEST(ParseInitiateMultipartUploadTest, Refusals) {
  Result<std::string> id = ParseInitiateMultipartUpload(
      "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
      "</InitiateMultipartUploadResult>");
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("UploadId"), std::string::npos);

  id = ParseInitiateMultipartUpload(ReadTestdata("error_access_denied.xml"));
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), ErrorCode::kPermissionDenied);

  id = ParseInitiateMultipartUpload("<InitiateMultipartUploadResult>");
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("CreateMultipartUpload response"), std::string::npos);
}

TEST(ParseCompleteMultipartUploadTest, Golden) {
  Result<std::string> etag =
      ParseCompleteMultipartUpload(ReadTestdata("complete_multipart_upload.xml"));
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_EQ(*etag, "3858f62230ac3c915f300c664312c11f-3");
}

TEST(ParseCompleteMultipartUploadTest, ErrorIn200IsRetryable) {
  Result<std::string> etag =
      ParseCompleteMultipartUpload(ReadTestdata("complete_multipart_upload_error.xml"));
  ASSERT_FALSE(etag.ok());
  EXPECT_EQ(etag.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(etag.status().message(),
            "CompleteMultipartUpload response is an error: InternalError: We "
            "encountered an internal error. Please try again. (request id 656C76696E672773)");
}

TEST(ParseCompleteMultipartUploadTest, ErrorCodesIn200) {
  auto code_of = [](std::string_view s3_code) {
    return ParseCompleteMultipartUpload("<Error><Code>" + std::string(s3_code) +
                                        "</Code><Message>m</Message></Error>")
        .status()
        .code();
  };
  EXPECT_EQ(code_of("SlowDown"), ErrorCode::kUnavailable);
  EXPECT_EQ(code_of("InternalError"), ErrorCode::kUnavailable);
  EXPECT_EQ(code_of("NoSuchUpload"), ErrorCode::kNotFound);
  EXPECT_EQ(code_of("InvalidPart"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of("SomethingNew"), ErrorCode::kInternal);
  EXPECT_EQ(code_of(""), ErrorCode::kInternal);
}

TEST(ParseCompleteMultipartUploadTest, EmptyEtagAsCephSendsIt) {
  // Ceph RGW's real answer: success, but the ETag must be looked up.
  Result<std::string> etag = ParseCompleteMultipartUpload(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUploadResult "
      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>http://h/b/z</Location>"
      "<Bucket>b</Bucket><Key>z</Key><ETag></ETag></CompleteMultipartUploadResult>");
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_EQ(*etag, "");
}

TEST(ParseCompleteMultipartUploadTest, MissingEtagElementIsAnError) {
  Result<std::string> etag =
      ParseCompleteMultipartUpload("<CompleteMultipartUploadResult></CompleteMultipartUploadResult>");
  ASSERT_FALSE(etag.ok());
  EXPECT_EQ(etag.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(etag.status().message().find("ETag"), std::string::npos);
}

TEST(BuildCompleteMultipartUploadBodyTest, ExactBody) {
  EXPECT_EQ(BuildCompleteMultipartUploadBody({{1, "a54357aff0632cce46d942af68356b38"},
                                              {2, "\"0c78aef83f66abc1fa1e8477f296d394\""}}),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Part><PartNumber>1</PartNumber><ETag>\"a54357aff0632cce46d942af68356b38\"</ETag>"
            "</Part>"
            "<Part><PartNumber>2</PartNumber><ETag>\"0c78aef83f66abc1fa1e8477f296d394\"</ETag>"
            "</Part></CompleteMultipartUpload>");
}

TEST(BuildCompleteMultipartUploadBodyTest, EscapesAndRoundTrips) {
  const std::vector<CompletedPart> parts = {{1, "a&b<c>d"}, {10000, "x\"y"}};
  const std::string body = BuildCompleteMultipartUploadBody(parts);
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(body.c_str())) << body;
  pugi::xml_node root = doc.child("CompleteMultipartUpload");
  ASSERT_TRUE(root);
  std::vector<std::pair<std::string, std::string>> seen;
  for (pugi::xml_node part : root.children("Part")) {
    seen.emplace_back(part.child_value("PartNumber"), part.child_value("ETag"));
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], (std::pair<std::string, std::string>("1", "\"a&b<c>d\"")));
  EXPECT_EQ(seen[1], (std::pair<std::string, std::string>("10000", "\"x\"y\"")));
}

TEST(BuildCompleteMultipartUploadBodyTest, NoParts) {
  EXPECT_NE(BuildCompleteMultipartUploadBody({}).find(
                "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                "</CompleteMultipartUpload>"),
            std::string::npos);
}

// --- Error mapping and messages ---

TEST(ErrorCodeForHttpTest, Table) {
  struct Case {
    long status;
    std::string_view s3_code;
    ErrorCode want;
  };
  const Case cases[] = {
      {404, "NoSuchKey", ErrorCode::kNotFound},
      {404, "NoSuchBucket", ErrorCode::kNotFound},
      {404, "NoSuchUpload", ErrorCode::kNotFound},
      {404, "", ErrorCode::kNotFound},  // HEAD: no body
      {403, "AccessDenied", ErrorCode::kPermissionDenied},
      {403, "InvalidAccessKeyId", ErrorCode::kPermissionDenied},
      {403, "SignatureDoesNotMatch", ErrorCode::kPermissionDenied},
      {403, "RequestTimeTooSkewed", ErrorCode::kPermissionDenied},
      {400, "ExpiredToken", ErrorCode::kPermissionDenied},
      {401, "", ErrorCode::kPermissionDenied},
      {403, "", ErrorCode::kPermissionDenied},
      {412, "PreconditionFailed", ErrorCode::kPreconditionFailed},
      {412, "", ErrorCode::kPreconditionFailed},
      {503, "SlowDown", ErrorCode::kUnavailable},
      {400, "RequestTimeout", ErrorCode::kUnavailable},
      {500, "InternalError", ErrorCode::kUnavailable},
      {503, "ServiceUnavailable", ErrorCode::kUnavailable},
      {500, "", ErrorCode::kUnavailable},
      {502, "", ErrorCode::kUnavailable},
      {503, "", ErrorCode::kUnavailable},
      {504, "", ErrorCode::kUnavailable},
      {429, "", ErrorCode::kUnavailable},
      {408, "", ErrorCode::kUnavailable},
      {400, "InvalidArgument", ErrorCode::kInvalidArgument},
      {416, "InvalidRange", ErrorCode::kInvalidArgument},
      {416, "", ErrorCode::kInvalidArgument},
      {400, "EntityTooSmall", ErrorCode::kInvalidArgument},
      {409, "BucketNotEmpty", ErrorCode::kInvalidArgument},
      {400, "SomethingNew", ErrorCode::kInvalidArgument},
      {301, "PermanentRedirect", ErrorCode::kInvalidArgument},
      {307, "", ErrorCode::kInvalidArgument},
      {599, "SomethingNew", ErrorCode::kUnavailable},
      {200, "InternalError", ErrorCode::kUnavailable},
      {200, "SomethingNew", ErrorCode::kInternal},
      {0, "", ErrorCode::kInternal},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ErrorCodeForHttp(c.status, c.s3_code), c.want) << c.status << " " << c.s3_code;
  }
}

TEST(DescribeS3ErrorTest, Formats) {
  EXPECT_EQ(DescribeS3Error(404, ParseS3Error(ReadTestdata("error_no_such_bucket.xml"))),
            "NoSuchBucket: The specified bucket does not exist (request id 7XK2M4R9QBTN3HFW)");
  EXPECT_EQ(DescribeS3Error(503, std::nullopt), "HTTP 503");
  EXPECT_EQ(DescribeS3Error(403, S3Error{"AccessDenied", "", "", ""}), "AccessDenied");
  EXPECT_EQ(DescribeS3Error(400, S3Error{"", "bad\r\nthing", "", "R1"}),
            "HTTP 400: bad  thing (request id R1)");
  const std::string long_message(5000, 'x');
  EXPECT_LT(DescribeS3Error(500, S3Error{"InternalError", long_message, "", ""}).size(), 600u);
}

}  // namespace
}  // namespace trainfeed
