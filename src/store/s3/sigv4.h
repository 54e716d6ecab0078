// AWS Signature Version 4 for the Authorization header, written against the published rules and
// test vectors (S3 API reference examples and the generic aws4 test suite).
//
// Only header signing is implemented: no presigned URLs, no chunked (streaming) payloads. S3's
// flavour is the default: the canonical URI is taken as given (S3 encodes object keys once and
// never normalizes paths), and x-amz-content-sha256 is added when the service is "s3".
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trainfeed {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // "" unless temporary (STS) credentials

  // True when there is nothing to sign with (anonymous access).
  bool empty() const { return access_key_id.empty() && secret_access_key.empty(); }
};

// Hex SHA-256 of an empty body: the payload hash of every GET/HEAD/DELETE.
inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);
// Raw 32-byte HMAC-SHA256 of `data` under `key`.
std::string HmacSha256(std::string_view key, std::string_view data);
// Lower-case hex of arbitrary bytes.
std::string HexEncode(std::string_view bytes);

// URI-encodes per the SigV4 rules: A-Z a-z 0-9 - _ . ~ are kept, every other byte becomes %XX
// (upper-case hex, over the UTF-8 bytes). '/' is kept when !encode_slash, which is how an object
// key becomes a canonical URI path; query names and values use encode_slash = true.
std::string UriEncode(std::string_view s, bool encode_slash);

struct SigV4Request {
  std::string method;  // "GET", "PUT", ...
  // The request path exactly as sent, already URI-encoded once ("/bucket/my%20key"). Not
  // normalized: S3 keys may legitimately contain "//" or "/./".
  std::string canonical_uri;
  // Raw (unencoded) query parameters; the signer encodes and sorts them. A parameter without a
  // value ("?lifecycle") is {"lifecycle", ""}.
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign; must include "host". Names in any case; repeated names are allowed.
  // x-amz-date (and for s3 x-amz-content-sha256) are set by the signer and replace any given.
  std::vector<std::pair<std::string, std::string>> headers;
  // Hex SHA-256 of the body, or kUnsignedPayload.
  std::string payload_hash;
};

struct SigV4Params {
  std::string region;
  std::string service = "s3";
  std::chrono::system_clock::time_point now;  // becomes x-amz-date (UTC, second precision)
};

struct SigV4Signature {
  // Intermediate steps, for tests and --verbose debugging of SignatureDoesNotMatch. They contain
  // the session token (it is a signed header) but never the secret key.
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // lower-case hex
  std::string authorization;  // the full Authorization header value
  std::string amz_date;       // "20130524T000000Z"
  // What the caller must add to the request as sent: Authorization, x-amz-date,
  // x-amz-content-sha256 (service "s3" only) and x-amz-security-token (when a token is set).
  std::vector<std::pair<std::string, std::string>> headers_to_add;
};

// Signs `request`. `credentials` must not be empty(): anonymous requests are sent unsigned.
SigV4Signature SignV4(const SigV4Request& request, const AwsCredentials& credentials,
                      const SigV4Params& params);

}  // namespace trainfeed
