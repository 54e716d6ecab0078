#include "store/s3/sigv4.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace trainfeed {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::sys_days;
using std::chrono::year;

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Finds a header in SigV4Signature::headers_to_add; "" when absent.
std::string Added(const SigV4Signature& sig, std::string_view name) {
  for (const auto& [n, v] : sig.headers_to_add) {
    if (n == name) return v;
  }
  return "";
}

bool HasAdded(const SigV4Signature& sig, std::string_view name) {
  for (const auto& h : sig.headers_to_add) {
    if (h.first == name) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Primitives.

TEST(Sha256HexTest, KnownDigests) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex(""), kEmptyPayloadSha256);
  // FIPS 180-2 "abc".
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HmacSha256Test, Rfc4231TestCase2) {
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(UriEncodeTest, UnreservedCharactersAreKept) {
  const std::string unreserved =
      "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  EXPECT_EQ(UriEncode(unreserved, true), unreserved);
  EXPECT_EQ(UriEncode("~", true), "~");
}

TEST(UriEncodeTest, ReservedCharactersAreEncodedUpperCase) {
  EXPECT_EQ(UriEncode("my key", false), "my%20key");
  EXPECT_EQ(UriEncode("a+b=c", true), "a%2Bb%3Dc");
  EXPECT_EQ(UriEncode("100%", true), "100%25");
  EXPECT_EQ(UriEncode("test$file.text", false), "test%24file.text");
  EXPECT_EQ(UriEncode("a&b?c#d:e@f,g;h*i'j(k)l!m", true),
            "a%26b%3Fc%23d%3Ae%40f%2Cg%3Bh%2Ai%27j%28k%29l%21m");
}

TEST(UriEncodeTest, EncodesUtf8Bytes) {
  EXPECT_EQ(UriEncode("\xC3\xA9", true), "%C3%A9");             // é
  EXPECT_EQ(UriEncode("caf\xC3\xA9/x", false), "caf%C3%A9/x");  // café/x
  EXPECT_EQ(UriEncode("\xE1\x88\xB4", true), "%E1%88%B4");      // ሴ
}

TEST(UriEncodeTest, SlashHandling) {
  // Object keys: slashes stay, including empty and dot segments (S3 never normalizes).
  EXPECT_EQ(UriEncode("a//b/./c/../d", false), "a//b/./c/../d");
  EXPECT_EQ(UriEncode("a//b", true), "a%2F%2Fb");
}

// ---------------------------------------------------------------------------------------------
// S3 API reference, "Signature Calculations for the Authorization Header: Transferring Payload
// in a Single Chunk (AWS Signature Version 4)", section "Examples: Signature Calculations".
// Canonical requests, string-to-sign hashes and signatures are copied from that page.

class S3DocExamplesTest : public ::testing::Test {
 protected:
  static constexpr char kHost[] = "examplebucket.s3.amazonaws.com";
  AwsCredentials creds_{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  SigV4Params params_{"us-east-1", "s3", sys_days(year(2013) / 5 / 24)};  // 20130524T000000Z
};

TEST_F(S3DocExamplesTest, GetObject) {
  SigV4Request req;
  req.method = "GET";
  req.canonical_uri = "/test.txt";
  req.headers = {{"Host", kHost}, {"Range", "bytes=0-9"}};
  req.payload_hash = std::string(kEmptyPayloadSha256);

  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(
      sig.canonical_request,
      "GET\n"
      "/test.txt\n"
      "\n"
      "host:examplebucket.s3.amazonaws.com\n"
      "range:bytes=0-9\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n"
      "\n"
      "host;range;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(sig.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  // The page prints the header without spaces after the commas; both forms are accepted and the
  // SDKs (and the aws4 test suite) use ", ".
  EXPECT_EQ(sig.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(sig.amz_date, "20130524T000000Z");
  EXPECT_EQ(Added(sig, "Authorization"), sig.authorization);
  EXPECT_EQ(Added(sig, "x-amz-date"), "20130524T000000Z");
  EXPECT_EQ(Added(sig, "x-amz-content-sha256"), kEmptyPayloadSha256);
  EXPECT_FALSE(HasAdded(sig, "x-amz-security-token"));
}

TEST_F(S3DocExamplesTest, PutObject) {
  const std::string body = "Welcome to Amazon S3.";
  SigV4Request req;
  req.method = "PUT";
  req.canonical_uri = "/" + UriEncode("test$file.text", false);
  req.headers = {{"Host", kHost},
                 {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                 {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  req.payload_hash = Sha256Hex(body);
  ASSERT_EQ(req.payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");

  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(
      sig.canonical_request,
      "PUT\n"
      "/test%24file.text\n"
      "\n"
      "date:Fri, 24 May 2013 00:00:00 GMT\n"
      "host:examplebucket.s3.amazonaws.com\n"
      "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
      "x-amz-date:20130524T000000Z\n"
      "x-amz-storage-class:REDUCED_REDUNDANCY\n"
      "\n"
      "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
      "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(sig.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST_F(S3DocExamplesTest, GetBucketLifecycle) {
  SigV4Request req;
  req.method = "GET";
  req.canonical_uri = "/";
  req.query = {{"lifecycle", ""}};
  req.headers = {{"Host", kHost}};
  req.payload_hash = std::string(kEmptyPayloadSha256);

  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(
      sig.canonical_request,
      "GET\n"
      "/\n"
      "lifecycle=\n"
      "host:examplebucket.s3.amazonaws.com\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n"
      "\n"
      "host;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(sig.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST_F(S3DocExamplesTest, GetBucketListObjects) {
  SigV4Request req;
  req.method = "GET";
  req.canonical_uri = "/";
  req.query = {{"prefix", "J"}, {"max-keys", "2"}};  // out of order on purpose
  req.headers = {{"Host", kHost}};
  req.payload_hash = std::string(kEmptyPayloadSha256);

  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(
      sig.canonical_request,
      "GET\n"
      "/\n"
      "max-keys=2&prefix=J\n"
      "host:examplebucket.s3.amazonaws.com\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n"
      "\n"
      "host;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
  EXPECT_EQ(sig.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

// ---------------------------------------------------------------------------------------------
// AWS's generic SigV4 test suite (aws-sig-v4-test-suite, as shipped in botocore's
// tests/unit/auth/aws4_testsuite and aws-c-auth's tests/aws-signing-test-suite/v4). Expected
// Authorization headers are the suite's .authz / header-signed-request.txt values; canonical
// requests and string-to-sign hashes are its .creq / .sts files. Only cases that do not depend on
// path normalization are used, since S3 must not normalize.

class Aws4TestSuite : public ::testing::Test {
 protected:
  static constexpr char kHost[] = "example.amazonaws.com";
  static constexpr char kCredential[] =
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ";
  AwsCredentials creds_{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  // 20150830T123600Z
  SigV4Params params_{"us-east-1", "service",
                      sys_days(year(2015) / 8 / 30) + hours(12) + minutes(36)};

  SigV4Request Get(Pairs headers = {}) const {
    SigV4Request req;
    req.method = "GET";
    req.canonical_uri = "/";
    req.headers = {{"Host", kHost}};
    req.headers.insert(req.headers.end(), headers.begin(), headers.end());
    req.payload_hash = std::string(kEmptyPayloadSha256);
    return req;
  }
};

TEST_F(Aws4TestSuite, GetVanilla) {
  SigV4Signature sig = SignV4(Get(), creds_, params_);
  EXPECT_EQ(sig.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=host;x-amz-date, "
                "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  // Not S3: no x-amz-content-sha256, neither added nor signed.
  EXPECT_FALSE(HasAdded(sig, "x-amz-content-sha256"));
  EXPECT_FALSE(HasAdded(sig, "x-amz-security-token"));
  EXPECT_EQ(Added(sig, "x-amz-date"), "20150830T123600Z");
  EXPECT_EQ(sig.headers_to_add.size(), 2u);
}

TEST_F(Aws4TestSuite, GetVanillaQueryOrderKeyCase) {
  SigV4Request req = Get();
  req.query = {{"Param2", "value2"}, {"Param1", "value1"}};
  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(sig.canonical_request,
            "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0");
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=host;x-amz-date, "
                "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST_F(Aws4TestSuite, GetVanillaQueryUnreserved) {
  const std::string u = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  SigV4Request req = Get();
  req.query = {{u, u}};
  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(sig.canonical_request,
            "GET\n/\n" + u + "=" + u +
                "\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=host;x-amz-date, "
                "Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

TEST_F(Aws4TestSuite, GetVanillaUtf8Query) {
  SigV4Request req = Get();
  req.query = {{"\xE1\x88\xB4", "bar"}};  // ሴ=bar
  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(sig.canonical_request,
            "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=host;x-amz-date, "
                "Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
}

TEST_F(Aws4TestSuite, GetHeaderKeyDuplicate) {
  SigV4Request req =
      Get({{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}});
  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(sig.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
            "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c");
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=host;my-header1;x-amz-date, "
                "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
}

TEST_F(Aws4TestSuite, GetHeaderValueMultiline) {
  // The suite's request folds one header over three lines ("value1\n  value2\n     value3"); its
  // canonical form is the same as three repeated headers, which is how a client sends it.
  SigV4Request req =
      Get({{"My-Header1", "value1"}, {"My-Header1", "value2"}, {"My-Header1", "value3"}});
  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(sig.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1,value2,value3\n"
            "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=host;my-header1;x-amz-date, "
                "Signature=ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790");
}

TEST_F(Aws4TestSuite, GetHeaderValueTrim) {
  SigV4Request req = Get({{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}});
  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(sig.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
            "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7");
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
                "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

TEST_F(Aws4TestSuite, PostVanilla) {
  SigV4Request req = Get();
  req.method = "POST";
  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(sig.canonical_request,
            "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87");
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=host;x-amz-date, "
                "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST_F(Aws4TestSuite, PostXWwwFormUrlencoded) {
  SigV4Request req = Get({{"Content-Type", "application/x-www-form-urlencoded"}});
  req.method = "POST";
  req.payload_hash = Sha256Hex("Param1=value1");
  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(sig.canonical_request,
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
            "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "content-type;host;x-amz-date\n"
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281");
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=content-type;host;x-amz-date, "
                "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

TEST_F(Aws4TestSuite, PostXWwwFormUrlencodedWithCallerContentSha256) {
  // aws-c-auth's revision of the same case also signs Content-Length and a caller-supplied
  // x-amz-content-sha256: for a non-S3 service that header is the caller's and is kept.
  const std::string hash = Sha256Hex("Param1=value1");
  SigV4Request req = Get({{"Content-Type", "application/x-www-form-urlencoded"},
                          {"Content-Length", "13"},
                          {"x-amz-content-sha256", hash}});
  req.method = "POST";
  req.payload_hash = hash;
  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, "
                "Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b");
  EXPECT_FALSE(HasAdded(sig, "x-amz-content-sha256"));  // the caller already has it
}

TEST_F(Aws4TestSuite, PostStsHeaderBefore) {
  const std::string token =
      "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwA"
      "eMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8p"
      "hUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT"
      "38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabI"
      "Qwj2ICCR/oLxBA==";
  AwsCredentials creds = creds_;
  creds.session_token = token;
  SigV4Request req = Get();
  req.method = "POST";
  SigV4Signature sig = SignV4(req, creds, params_);
  EXPECT_EQ(sig.canonical_request,
            "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
            "x-amz-security-token:" +
                token +
                "\n\nhost;x-amz-date;x-amz-security-token\n"
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6");
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
  EXPECT_EQ(Added(sig, "x-amz-security-token"), token);
  EXPECT_FALSE(HasAdded(sig, "x-amz-content-sha256"));
}

TEST_F(Aws4TestSuite, GetVanillaWithSessionToken) {
  // aws-c-auth's get-vanilla-with-session-token.
  AwsCredentials creds = creds_;
  creds.session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
  SigV4Signature sig = SignV4(Get(), creds, params_);
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                "Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
}

// ---------------------------------------------------------------------------------------------
// Properties beyond the published vectors.

TEST_F(Aws4TestSuite, SignerOwnedHeadersReplaceCallerCopies) {
  // A stale X-Amz-Date from the caller must not be joined with the signer's ("a,b").
  SigV4Signature sig = SignV4(Get({{"X-Amz-Date", "19990101T000000Z"}, {"Authorization", "stale"}}),
                              creds_, params_);
  EXPECT_EQ(sig.authorization,
            std::string(kCredential) +
                "SignedHeaders=host;x-amz-date, "
                "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST_F(S3DocExamplesTest, CanonicalUriIsNotNormalized) {
  SigV4Request req;
  req.method = "GET";
  req.canonical_uri = "/examplebucket/a//b/./c/../" + UriEncode("my key+=~%", false);
  req.headers = {{"host", kHost}};
  req.payload_hash = std::string(kUnsignedPayload);
  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_EQ(sig.canonical_request.substr(0, sig.canonical_request.find('\n', 4) + 1),
            "GET\n/examplebucket/a//b/./c/../my%20key%2B%3D~%25\n");
  EXPECT_EQ(Added(sig, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
  EXPECT_NE(sig.canonical_request.find("\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n"),
            std::string::npos);
}

TEST_F(S3DocExamplesTest, QueryValuesAreEncodedAndSortedByValue) {
  SigV4Request req;
  req.method = "GET";
  req.canonical_uri = "/";
  req.query = {{"prefix", "a b/c"}, {"list-type", "2"}, {"k", "b"}, {"k", "a"}, {"empty", ""}};
  req.headers = {{"host", kHost}};
  req.payload_hash = std::string(kEmptyPayloadSha256);
  SigV4Signature sig = SignV4(req, creds_, params_);
  EXPECT_NE(sig.canonical_request.find("\nempty=&k=a&k=b&list-type=2&prefix=a%20b%2Fc\n"),
            std::string::npos)
      << sig.canonical_request;
}

TEST_F(S3DocExamplesTest, SecretNeverAppearsInOutput) {
  AwsCredentials creds{"AKIDTEST", "Sup3r/Secret+Key/NeverPrintMe", "token-value"};
  SigV4Request req;
  req.method = "GET";
  req.canonical_uri = "/k";
  req.headers = {{"host", kHost}};
  req.payload_hash = std::string(kEmptyPayloadSha256);
  SigV4Signature sig = SignV4(req, creds, params_);
  for (const std::string* s :
       {&sig.canonical_request, &sig.string_to_sign, &sig.signature, &sig.authorization}) {
    EXPECT_EQ(s->find("Sup3r"), std::string::npos) << *s;
  }
  for (const auto& [name, value] : sig.headers_to_add) {
    EXPECT_EQ(value.find("Sup3r"), std::string::npos) << name;
  }
}

TEST_F(S3DocExamplesTest, DifferentSecretOrDateChangesSignature) {
  SigV4Request req;
  req.method = "GET";
  req.canonical_uri = "/test.txt";
  req.headers = {{"Host", kHost}, {"Range", "bytes=0-9"}};
  req.payload_hash = std::string(kEmptyPayloadSha256);
  const std::string base = SignV4(req, creds_, params_).signature;

  AwsCredentials other = creds_;
  other.secret_access_key.back() = 'X';
  EXPECT_NE(SignV4(req, other, params_).signature, base);

  SigV4Params later = params_;
  later.now += std::chrono::seconds(1);
  SigV4Signature s = SignV4(req, creds_, later);
  EXPECT_EQ(s.amz_date, "20130524T000001Z");
  EXPECT_NE(s.signature, base);
}

}  // namespace
}  // namespace trainfeed
