#include "store/s3/s3_xml.h"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <pugixml.hpp>
#include <utility>

namespace trainfeed {
namespace {

constexpr std::string_view kS3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/";
// Longest piece of server-supplied text quoted in one message.
constexpr size_t kMaxQuoted = 80;
constexpr size_t kMaxMessage = 512;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Server text made safe for a one-line message: control bytes become spaces, long text is cut.
std::string OneLine(std::string_view s, size_t max) {
  std::string out;
  const size_t n = s.size() < max ? s.size() : max;
  out.reserve(n + 3);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7f) ? ' ' : s[i];
  }
  if (s.size() > max) out += "...";
  return out;
}

std::string Quote(std::string_view s) { return "\"" + OneLine(s, kMaxQuoted) + "\""; }

// Element names compared without a namespace prefix: S3 uses a default namespace, but a
// compatible server may bind one to a prefix.
std::string_view LocalName(pugi::xml_node node) {
  std::string_view name = node.name();
  const size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// All character data directly under `node`, so a value split by a CDATA section stays whole.
std::string TextOf(pugi::xml_node node) {
  std::string out;
  for (pugi::xml_node child : node.children()) {
    if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) {
      out += child.value();
    }
  }
  return out;
}

// The first child element called `name`, or an empty node.
pugi::xml_node FirstChild(pugi::xml_node parent, std::string_view name) {
  for (pugi::xml_node child : parent.children()) {
    if (child.type() == pugi::node_element && LocalName(child) == name) return child;
  }
  return {};
}

// The only child element called `name`, or an empty node. A repeated field is an error: which
// copy to believe is a guess, and for IsTruncated a wrong guess silently ends a listing.
Result<pugi::xml_node> OnlyChild(pugi::xml_node parent, std::string_view name,
                                 std::string_view what) {
  pugi::xml_node found;
  for (pugi::xml_node child : parent.children()) {
    if (child.type() != pugi::node_element || LocalName(child) != name) continue;
    if (found) {
      return InvalidArgumentError(std::string(what) + ": <" + std::string(name) +
                                  "> appears more than once");
    }
    found = child;
  }
  return found;
}

// Parses one XML document into `doc` and returns its root element. `what` names the document.
Result<pugi::xml_node> LoadDocument(std::string_view body, std::string_view what,
                                    pugi::xml_document& doc) {
  // Keep whitespace-only values such as a raw key " ", but not the indentation between elements.
  // DOCTYPE is parsed only so that it can be refused: S3 never sends one.
  constexpr unsigned kOptions =
      pugi::parse_default | pugi::parse_ws_pcdata_single | pugi::parse_doctype;
  if (Trim(body).empty()) return InvalidArgumentError(std::string(what) + ": empty body");
  const pugi::xml_parse_result parsed =
      doc.load_buffer(body.data(), body.size(), kOptions, pugi::encoding_auto);
  if (!parsed) {
    return InvalidArgumentError(std::string(what) + ": malformed XML at offset " +
                                std::to_string(parsed.offset) + ": " + parsed.description());
  }
  pugi::xml_node root;
  for (pugi::xml_node child : doc.children()) {
    if (child.type() == pugi::node_doctype) {
      return InvalidArgumentError(std::string(what) + ": unexpected DOCTYPE");
    }
    if (child.type() != pugi::node_element) continue;
    if (root) return InvalidArgumentError(std::string(what) + ": more than one root element");
    root = child;
  }
  return root;  // non-empty: pugixml fails with "No document element found" otherwise
}

S3Error ErrorFromNode(pugi::xml_node root) {
  S3Error error;
  error.code = std::string(Trim(TextOf(FirstChild(root, "Code"))));
  error.message = TextOf(FirstChild(root, "Message"));
  error.request_id = std::string(Trim(TextOf(FirstChild(root, "RequestId"))));
  error.resource = TextOf(FirstChild(root, "Resource"));
  if (error.resource.empty()) {
    error.resource = TextOf(FirstChild(root, "BucketName"));
    const std::string key = TextOf(FirstChild(root, "Key"));
    if (!key.empty()) error.resource += (error.resource.empty() ? "" : "/") + key;
  }
  return error;
}

// An <Error> where a result was expected: S3 may send one with status 200.
Status ErrorDocumentStatus(std::string_view what, pugi::xml_node root) {
  const S3Error error = ErrorFromNode(root);
  return Status(ErrorCodeForHttp(200, error.code),
                std::string(what) + " is an error: " + DescribeS3Error(200, error));
}

// Loads `body` and checks that its root is `expected`; an <Error> root becomes its status.
Result<pugi::xml_node> LoadResult(std::string_view body, std::string_view what,
                                  std::string_view expected, pugi::xml_document& doc) {
  TF_ASSIGN_OR_RETURN(pugi::xml_node root, LoadDocument(body, what, doc));
  if (LocalName(root) == "Error") return ErrorDocumentStatus(what, root);
  if (LocalName(root) != expected) {
    return InvalidArgumentError(std::string(what) + ": root element is <" +
                                OneLine(root.name(), kMaxQuoted) + ">, not <" +
                                std::string(expected) + ">");
  }
  return root;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// S3's encoding-type=url is form encoding ('+' is a space; botocore decodes with unquote_plus).
// A stray '%' is refused rather than kept: it means the key is not what S3 encoded, and a wrong
// key would only fail later as a 404.
std::optional<std::string> FormDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

std::optional<uint64_t> ParseUint64(std::string_view s) {
  s = Trim(s);
  if (s.empty() || s.front() < '0' || s.front() > '9') return std::nullopt;
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::optional<bool> ParseBool(std::string_view s) {
  s = Trim(s);
  if (s == "true" || s == "1") return true;
  if (s == "false" || s == "0") return false;
  return std::nullopt;
}

// Reads `n` decimal digits at s[*pos] and advances past them.
bool ReadDigits(std::string_view s, size_t* pos, size_t n, int* out) {
  if (*pos + n > s.size()) return false;
  int value = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *pos += n;
  *out = value;
  return true;
}

bool Expect(std::string_view s, size_t* pos, std::string_view chars) {
  if (*pos >= s.size() || chars.find(s[*pos]) == std::string_view::npos) return false;
  ++*pos;
  return true;
}

// RFC 3339 / ISO 8601 as S3 writes it: "2009-10-12T17:50:30.000Z". Fractions of any length
// (kept to the nanosecond) and numeric offsets are accepted for S3-compatible servers.
std::optional<std::chrono::system_clock::time_point> ParseTimestamp(std::string_view s) {
  using std::chrono::system_clock;
  s = Trim(s);
  size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!ReadDigits(s, &pos, 4, &year) || !Expect(s, &pos, "-") || !ReadDigits(s, &pos, 2, &month) ||
      !Expect(s, &pos, "-") || !ReadDigits(s, &pos, 2, &day) || !Expect(s, &pos, "Tt") ||
      !ReadDigits(s, &pos, 2, &hour) || !Expect(s, &pos, ":") || !ReadDigits(s, &pos, 2, &minute) ||
      !Expect(s, &pos, ":") || !ReadDigits(s, &pos, 2, &second)) {
    return std::nullopt;
  }
  int64_t nanos = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100'000'000;
    const size_t first = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      nanos += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == first) return std::nullopt;
  }
  int64_t offset_seconds = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    int offset_hour = 0, offset_minute = 0;
    if (!ReadDigits(s, &pos, 2, &offset_hour) || !Expect(s, &pos, ":") ||
        !ReadDigits(s, &pos, 2, &offset_minute) || offset_hour > 23 || offset_minute > 59) {
      return std::nullopt;
    }
    offset_seconds = sign * (offset_hour * 3600 + offset_minute * 60);
  } else {
    return std::nullopt;  // no zone: the time would be a guess
  }
  if (pos != s.size()) return std::nullopt;
  // Second 60 is a leap second, as RFC 3339 allows.
  if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year(year),
                                         std::chrono::month(static_cast<unsigned>(month)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return std::nullopt;
  const int64_t days = std::chrono::sys_days(date).time_since_epoch().count();
  const int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  // system_clock counts nanoseconds in 64 bits here (years 1678..2261); refuse what overflows.
  constexpr int64_t kLimit =
      std::chrono::duration_cast<std::chrono::seconds>(system_clock::duration::max()).count() - 1;
  if (seconds > kLimit || seconds < -kLimit) return std::nullopt;
  return system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(
      std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos)));
}

std::string StripQuotes(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    return etag.substr(1, etag.size() - 2);
  }
  return etag;
}

// A key or common prefix as the caller must use it: decoded if the body says it is encoded.
Result<std::string> KeyValue(pugi::xml_node node, bool url_encoded, std::string_view what) {
  std::string raw = TextOf(node);
  if (!url_encoded) return raw;
  std::optional<std::string> decoded = FormDecode(raw);
  if (!decoded) {
    return InvalidArgumentError(std::string(what) + ": " + Quote(raw) +
                                " is not valid url encoding");
  }
  return *std::move(decoded);
}

Result<ObjectInfo> ParseContents(pugi::xml_node contents, bool url_encoded,
                                 std::string_view doc_what) {
  const std::string what = std::string(doc_what) + ": <Contents>";
  ObjectInfo info;
  TF_ASSIGN_OR_RETURN(pugi::xml_node key, OnlyChild(contents, "Key", what));
  if (!key) return InvalidArgumentError(what + " without <Key>");
  TF_ASSIGN_OR_RETURN(info.key, KeyValue(key, url_encoded, what + " Key"));
  // S3 keys are 1 to 1024 bytes; an empty one would name the prefix itself.
  if (info.key.empty()) return InvalidArgumentError(what + " with an empty <Key>");
  const std::string in_key = what + " for key " + Quote(info.key);

  TF_ASSIGN_OR_RETURN(pugi::xml_node size, OnlyChild(contents, "Size", in_key));
  if (!size) return InvalidArgumentError(in_key + " has no <Size>");
  const std::string size_text = TextOf(size);
  const std::optional<uint64_t> size_value = ParseUint64(size_text);
  if (!size_value) {
    return InvalidArgumentError(in_key + ": Size " + Quote(size_text) +
                                " is not a 64-bit unsigned integer");
  }
  info.size = *size_value;

  TF_ASSIGN_OR_RETURN(pugi::xml_node etag, OnlyChild(contents, "ETag", in_key));
  info.etag = StripQuotes(std::string(Trim(TextOf(etag))));

  TF_ASSIGN_OR_RETURN(pugi::xml_node modified, OnlyChild(contents, "LastModified", in_key));
  if (modified) {
    const std::string text = TextOf(modified);
    const auto time = ParseTimestamp(text);
    if (!time) {
      return InvalidArgumentError(in_key + ": LastModified " + Quote(text) +
                                  " is not an ISO 8601 time with a zone, or is out of range");
    }
    info.last_modified = *time;
  }
  return info;
}

}  // namespace

Result<ListPage> ParseListObjectsV2(std::string_view body) {
  constexpr std::string_view kWhat = "ListObjectsV2 response";
  const std::string what(kWhat);
  pugi::xml_document doc;
  TF_ASSIGN_OR_RETURN(pugi::xml_node root, LoadResult(body, kWhat, "ListBucketResult", doc));

  TF_ASSIGN_OR_RETURN(pugi::xml_node encoding, OnlyChild(root, "EncodingType", kWhat));
  bool url_encoded = false;
  if (encoding) {
    const std::string text = TextOf(encoding);
    if (Trim(text) != "url") {
      return InvalidArgumentError(what + ": unknown EncodingType " + Quote(text));
    }
    url_encoded = true;
  }

  TF_ASSIGN_OR_RETURN(pugi::xml_node truncated_node, OnlyChild(root, "IsTruncated", kWhat));
  // Required: guessing "false" would end a listing early without a word.
  if (!truncated_node) return InvalidArgumentError(what + ": no <IsTruncated>");
  const std::string truncated_text = TextOf(truncated_node);
  const std::optional<bool> truncated = ParseBool(truncated_text);
  if (!truncated) {
    return InvalidArgumentError(what + ": IsTruncated " + Quote(truncated_text) +
                                " is not a boolean");
  }

  ListPage page;
  TF_ASSIGN_OR_RETURN(pugi::xml_node token, OnlyChild(root, "NextContinuationToken", kWhat));
  if (*truncated) {
    // Opaque and never url-encoded: it goes back verbatim (it may hold '+' and '=').
    page.next_continuation_token = TextOf(token);
    if (page.next_continuation_token.empty()) {
      return DataLossError(what +
                           ": IsTruncated is true but there is no NextContinuationToken, so the "
                           "rest of the listing cannot be requested");
    }
  }

  for (pugi::xml_node child : root.children()) {
    if (child.type() != pugi::node_element) continue;
    const std::string_view name = LocalName(child);
    if (name == "Contents") {
      TF_ASSIGN_OR_RETURN(ObjectInfo info, ParseContents(child, url_encoded, kWhat));
      page.objects.push_back(std::move(info));
    } else if (name == "CommonPrefixes") {
      for (pugi::xml_node prefix : child.children()) {
        if (prefix.type() != pugi::node_element || LocalName(prefix) != "Prefix") continue;
        TF_ASSIGN_OR_RETURN(std::string value,
                            KeyValue(prefix, url_encoded, what + ": <CommonPrefixes> Prefix"));
        if (value.empty()) return InvalidArgumentError(what + ": empty <CommonPrefixes> Prefix");
        page.common_prefixes.push_back(std::move(value));
      }
    }
  }
  return page;
}

std::optional<S3Error> ParseS3Error(std::string_view body) {
  pugi::xml_document doc;
  Result<pugi::xml_node> root = LoadDocument(body, "S3 error", doc);
  if (!root.ok() || LocalName(*root) != "Error") return std::nullopt;
  return ErrorFromNode(*root);
}

Result<std::string> ParseInitiateMultipartUpload(std::string_view body) {
  constexpr std::string_view kWhat = "CreateMultipartUpload response";
  pugi::xml_document doc;
  TF_ASSIGN_OR_RETURN(pugi::xml_node root,
                      LoadResult(body, kWhat, "InitiateMultipartUploadResult", doc));
  TF_ASSIGN_OR_RETURN(pugi::xml_node upload_id, OnlyChild(root, "UploadId", kWhat));
  std::string id(Trim(TextOf(upload_id)));
  if (id.empty()) return InvalidArgumentError(std::string(kWhat) + ": no <UploadId>");
  return id;
}

Result<std::string> ParseCompleteMultipartUpload(std::string_view body) {
  constexpr std::string_view kWhat = "CompleteMultipartUpload response";
  pugi::xml_document doc;
  TF_ASSIGN_OR_RETURN(pugi::xml_node root,
                      LoadResult(body, kWhat, "CompleteMultipartUploadResult", doc));
  TF_ASSIGN_OR_RETURN(pugi::xml_node etag_node, OnlyChild(root, "ETag", kWhat));
  if (!etag_node) return InvalidArgumentError(std::string(kWhat) + ": no <ETag>");
  // Ceph RGW answers with an empty <ETag></ETag>: that is a success whose ETag the caller must
  // look up (HEAD), so it comes back as "".
  std::string etag = StripQuotes(std::string(Trim(TextOf(etag_node))));
  return etag;
}

std::string BuildCompleteMultipartUploadBody(const std::vector<CompletedPart>& parts) {
  auto append_escaped = [](std::string& out, std::string_view text) {
    for (char c : text) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        default:
          out += c;
      }
    }
  };
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload xmlns=\"";
  out += kS3Namespace;
  out += "\">";
  for (const CompletedPart& part : parts) {
    out += "<Part><PartNumber>";
    out += std::to_string(part.part_number);
    out += "</PartNumber><ETag>";
    const bool quoted =
        part.etag.size() >= 2 && part.etag.front() == '"' && part.etag.back() == '"';
    if (!quoted) out += '"';
    append_escaped(out, part.etag);
    if (!quoted) out += '"';
    out += "</ETag></Part>";
  }
  out += "</CompleteMultipartUpload>";
  return out;
}

ErrorCode ErrorCodeForHttp(long http_status, std::string_view s3_code) {
  struct Mapping {
    std::string_view s3_code;
    ErrorCode code;
  };
  // Codes whose meaning differs from their HTTP status, or that may come with a 200.
  static constexpr Mapping kCodes[] = {
      {"NoSuchKey", ErrorCode::kNotFound},
      {"NoSuchBucket", ErrorCode::kNotFound},
      {"NoSuchUpload", ErrorCode::kNotFound},
      {"NoSuchVersion", ErrorCode::kNotFound},
      {"AccessDenied", ErrorCode::kPermissionDenied},
      {"AllAccessDisabled", ErrorCode::kPermissionDenied},
      {"AccountProblem", ErrorCode::kPermissionDenied},
      {"InvalidAccessKeyId", ErrorCode::kPermissionDenied},
      {"SignatureDoesNotMatch", ErrorCode::kPermissionDenied},
      {"ExpiredToken", ErrorCode::kPermissionDenied},  // 400, but new credentials fix it
      {"InvalidToken", ErrorCode::kPermissionDenied},  // 400
      {"TokenRefreshRequired", ErrorCode::kPermissionDenied},
      {"RequestTimeTooSkewed", ErrorCode::kPermissionDenied},  // fix the clock, not a retry
      {"PreconditionFailed", ErrorCode::kPreconditionFailed},
      {"SlowDown", ErrorCode::kUnavailable},
      {"RequestTimeout", ErrorCode::kUnavailable},  // 400: idle connection, resend
      {"InternalError", ErrorCode::kUnavailable},
      {"ServiceUnavailable", ErrorCode::kUnavailable},
      {"Throttling", ErrorCode::kUnavailable},
      {"ThrottlingException", ErrorCode::kUnavailable},
      {"RequestThrottled", ErrorCode::kUnavailable},
      {"OperationAborted", ErrorCode::kUnavailable},  // 409: a conflicting call is in flight
      {"InvalidArgument", ErrorCode::kInvalidArgument},
      {"InvalidRange", ErrorCode::kInvalidArgument},
      {"InvalidRequest", ErrorCode::kInvalidArgument},
      {"InvalidPart", ErrorCode::kInvalidArgument},
      {"InvalidPartOrder", ErrorCode::kInvalidArgument},
      {"EntityTooSmall", ErrorCode::kInvalidArgument},
      {"EntityTooLarge", ErrorCode::kInvalidArgument},
      {"MalformedXML", ErrorCode::kInvalidArgument},
      {"KeyTooLongError", ErrorCode::kInvalidArgument},
      {"InvalidBucketName", ErrorCode::kInvalidArgument},
      {"AuthorizationHeaderMalformed", ErrorCode::kInvalidArgument},  // wrong region
      {"PermanentRedirect", ErrorCode::kInvalidArgument},             // wrong endpoint
  };
  for (const Mapping& m : kCodes) {
    if (m.s3_code == s3_code) return m.code;
  }
  if (http_status == 401 || http_status == 403) return ErrorCode::kPermissionDenied;
  if (http_status == 404) return ErrorCode::kNotFound;
  if (http_status == 412) return ErrorCode::kPreconditionFailed;
  if (http_status == 408 || http_status == 429) return ErrorCode::kUnavailable;
  if (http_status >= 500 && http_status <= 599) return ErrorCode::kUnavailable;
  // 3xx: the bucket lives at another endpoint or region; a configuration fix, not a retry.
  if (http_status >= 300 && http_status <= 499) return ErrorCode::kInvalidArgument;
  return ErrorCode::kInternal;
}

std::string DescribeS3Error(long http_status, const std::optional<S3Error>& error) {
  const std::string http = "HTTP " + std::to_string(http_status);
  if (!error) return http;
  std::string out;
  if (!error->code.empty()) {
    out = OneLine(error->code, kMaxQuoted);
  } else {
    out = http;
  }
  if (!error->message.empty()) out += ": " + OneLine(Trim(error->message), kMaxMessage);
  if (!error->request_id.empty()) {
    out += " (request id " + OneLine(error->request_id, kMaxQuoted) + ")";
  }
  return out;
}

}  // namespace trainfeed
