#include "store/s3/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace trainfeed {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// SigV4 "Trimall": strip both ends and turn each run of blanks into one space, quotes or not.
std::string TrimAll(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (IsBlank(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// "20130524T000000Z" in UTC.
std::string FormatAmzDate(std::chrono::system_clock::time_point now) {
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Overwrites key material before it is freed, so the secret does not linger on the heap.
void Wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service) {
  std::string k_secret = "AWS4";
  k_secret.append(secret);
  std::string k_date = HmacSha256(k_secret, date);
  Wipe(k_secret);
  std::string k_region = HmacSha256(k_date, region);
  Wipe(k_date);
  std::string k_service = HmacSha256(k_region, service);
  Wipe(k_region);
  std::string k_signing = HmacSha256(k_service, "aws4_request");
  Wipe(k_service);
  return k_signing;
}

// The signing key changes only with the date, region, service and secret, but deriving it costs four
// HMACs: with many small GETs that is a visible share of the CPU. Each thread keeps the last one.
// The cache is keyed by a SHA-256 of the secret, so the secret itself is not copied again.
class SigningKeyCache {
 public:
  ~SigningKeyCache() { Wipe(key_); }
  const std::string& Get(std::string_view secret, std::string_view date, std::string_view region,
                         std::string_view service) {
    std::string id = Sha256Hex(secret);
    id.append("/").append(date).append("/").append(region).append("/").append(service);
    if (id != id_ || key_.empty()) {
      Wipe(key_);
      key_ = SigningKey(secret, date, region, service);
      id_ = std::move(id);
    }
    return key_;
  }

 private:
  std::string id_;
  std::string key_;
};

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(UriEncode(name, true), UriEncode(value, true));
  }
  // Sorted by encoded name, then encoded value (byte order), as AWS does.
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

}  // namespace

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_Digest(data.data(), data.size(), md, &md_len, EVP_sha256(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(md), md_len));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &md_len);
  std::string out(reinterpret_cast<const char*>(md), md_len);
  OPENSSL_cleanse(md, sizeof(md));
  return out;
}

std::string UriEncode(std::string_view s, bool encode_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (IsUnreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 0xf]);
    }
  }
  return out;
}

SigV4Signature SignV4(const SigV4Request& request, const AwsCredentials& credentials,
                      const SigV4Params& params) {
  SigV4Signature sig;
  sig.amz_date = FormatAmzDate(params.now);
  const std::string date = sig.amz_date.substr(0, 8);
  const bool is_s3 = params.service == "s3";
  const bool has_token = !credentials.session_token.empty();

  // Headers the signer owns replace any the caller passed, so they can never be signed twice.
  std::vector<std::pair<std::string, std::string>> owned = {{"x-amz-date", sig.amz_date}};
  if (is_s3) owned.emplace_back("x-amz-content-sha256", request.payload_hash);
  if (has_token) owned.emplace_back("x-amz-security-token", credentials.session_token);

  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(request.headers.size() + owned.size());
  for (const auto& [name, value] : request.headers) {
    std::string lower = ToLower(name);
    if (lower == "authorization") continue;
    bool is_owned =
        std::any_of(owned.begin(), owned.end(), [&](const auto& h) { return h.first == lower; });
    if (is_owned) continue;
    headers.emplace_back(std::move(lower), TrimAll(value));
  }
  for (const auto& [name, value] : owned) headers.emplace_back(name, TrimAll(value));
  // Stable: repeated names keep their order when their values are joined below.
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  std::string canonical_headers;
  std::string signed_headers;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i > 0 && headers[i].first == headers[i - 1].first) {
      canonical_headers.back() = ',';  // replaces the previous line's '\n'
    } else {
      if (!signed_headers.empty()) signed_headers.push_back(';');
      signed_headers += headers[i].first;
      canonical_headers += headers[i].first;
      canonical_headers.push_back(':');
    }
    canonical_headers += headers[i].second;
    canonical_headers.push_back('\n');
  }

  sig.canonical_request = request.method + "\n" + request.canonical_uri + "\n" +
                          CanonicalQuery(request.query) + "\n" + canonical_headers + "\n" +
                          signed_headers + "\n" + request.payload_hash;

  const std::string scope = date + "/" + params.region + "/" + params.service + "/aws4_request";
  sig.string_to_sign = std::string(kAlgorithm) + "\n" + sig.amz_date + "\n" + scope + "\n" +
                       Sha256Hex(sig.canonical_request);

  thread_local SigningKeyCache signing_keys;
  const std::string& key =
      signing_keys.Get(credentials.secret_access_key, date, params.region, params.service);
  sig.signature = HexEncode(HmacSha256(key, sig.string_to_sign));

  sig.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
                      scope + ", SignedHeaders=" + signed_headers + ", Signature=" + sig.signature;

  sig.headers_to_add.emplace_back("Authorization", sig.authorization);
  for (auto& h : owned) sig.headers_to_add.push_back(std::move(h));
  return sig;
}

}  // namespace trainfeed
