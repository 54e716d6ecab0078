#include "store/s3/s3_object_store.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "store/s3/s3_xml.h"
#include "store/s3/sigv4.h"

namespace trainfeed {

namespace {

// Bodies of error responses are kept up to this size: enough for any S3 error document.
constexpr size_t kMaxErrorBodyBytes = 64 << 10;
// XML results (a ListObjectsV2 page of 1000 keys up to 1 KiB each is ~1.5 MiB) are kept whole
// up to this size; beyond it the server is not speaking S3.
constexpr size_t kMaxResultBodyBytes = 32 << 20;

std::string Base64(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, size);
  out.resize(n);
  return out;
}

std::string ContentMd5(std::string_view body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(body.data(), body.size(), digest, &len, EVP_md5(), nullptr);
  return Base64(digest, len);
}

std::string StripQuotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

bool ParseU64(std::string_view s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "Wed, 21 Oct 2015 07:28:00 GMT" (RFC 7231 IMF-fixdate, what S3 sends in Last-Modified).
std::chrono::system_clock::time_point ParseHttpDate(const std::string& s) {
  std::tm tm{};
  if (!strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm)) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

struct S3ObjectStore::Call {
  std::string method;
  ObjectRef object;
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;
  bool sign_payload = false;  // hash the body (PUT/POST) instead of UNSIGNED-PAYLOAD
  ByteSink* sink = nullptr;   // receives a 2xx body; otherwise the body is kept in Response
  std::optional<ByteRange> range;
};

struct S3ObjectStore::Response {
  Status transport;  // libcurl-level failure, or the sink's own error
  long http_status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, last block only
  std::string body;                            // non-streamed body (errors, XML)
  uint64_t sink_bytes = 0;
  bool sink_begun = false;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

namespace {

struct Exchange {
  S3ObjectStore::Call* call;
  S3ObjectStore::Response* response;
  std::string_view upload_left;  // request body not yet sent
  Status sink_status;
  bool in_header_block = false;

  bool Is2xx() const { return response->http_status >= 200 && response->http_status < 300; }

  // The identity of the object being read, from the response headers.
  Status BeginSink() {
    GetResult meta{};
    meta.etag = StripQuotes(response->Header("etag"));
    uint64_t length = 0;
    ParseU64(response->Header("content-length"), length);
    meta.object_size = length;
    std::string content_range = response->Header("content-range");  // bytes a-b/total
    if (response->http_status == 206) {
      size_t slash = content_range.rfind('/');
      if (slash == std::string::npos ||
          !ParseU64(std::string_view(content_range).substr(slash + 1), meta.object_size)) {
        return DataLossError("206 response without a usable Content-Range ('" + content_range +
                             "')");
      }
    } else if (call->range &&
               !(call->range->begin == 0 && call->range->end >= meta.object_size)) {
      // The server sent the whole object where we asked for part of it: writing it at the part's
      // offset would corrupt the file.
      return DataLossError("server ignored the Range header (HTTP " +
                           std::to_string(response->http_status) + ")");
    }
    response->sink_begun = true;
    return call->sink->Begin(meta);
  }
};

size_t OnHeader(char* data, size_t size, size_t nitems, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t n = size * nitems;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {  // a new header block (after 100 Continue, for instance)
    ex->response->headers.clear();
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) {
      long code = 0;
      std::from_chars(line.data() + sp + 1, line.data() + line.size(), code);
      ex->response->http_status = code;
    }
    return n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    ex->response->headers[Lower(std::string(line.substr(0, colon)))] =
        Trim(line.substr(colon + 1));
  }
  return n;
}

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t n = size * nmemb;
  try {
    if (ex->call->sink && ex->Is2xx()) {
      if (!ex->response->sink_begun) {
        ex->sink_status = ex->BeginSink();
        if (!ex->sink_status.ok()) return 0;  // aborts the transfer: CURLE_WRITE_ERROR
      }
      ex->sink_status = ex->call->sink->Append(data, n);
      if (!ex->sink_status.ok()) return 0;
      ex->response->sink_bytes += n;
      return n;
    }
    // Error bodies are capped; a listing page (up to 1000 keys of 1 KiB) is kept whole.
    size_t cap = ex->Is2xx() ? kMaxResultBodyBytes : kMaxErrorBodyBytes;
    if (ex->response->body.size() + n > cap) {
      if (ex->Is2xx()) {
        ex->sink_status = DataLossError("response body larger than " + std::to_string(cap));
        return 0;
      }
      return n;  // the start of an error body is enough to report it
    }
    ex->response->body.append(data, n);
    return n;
  } catch (...) {  // nothing may unwind through libcurl
    ex->sink_status = InternalError("exception while receiving a response body");
    return 0;
  }
}

size_t OnUpload(char* buffer, size_t size, size_t nitems, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t n = std::min(size * nitems, ex->upload_left.size());
  std::memcpy(buffer, ex->upload_left.data(), n);
  ex->upload_left.remove_prefix(n);
  return n;
}

int OnSeek(void* user, curl_off_t offset, int origin) {
  // libcurl rewinds the body when it must resend it (a redirect or an auth retry).
  auto* ex = static_cast<Exchange*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > ex->call->body.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  ex->upload_left = ex->call->body.substr(offset);
  return CURL_SEEKFUNC_OK;
}

Status CurlStatus(CURLcode code, const char* detail, const std::string& where) {
  std::string msg = where + ": " + (detail && *detail ? detail : curl_easy_strerror(code));
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return UnavailableError(std::move(msg));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return InvalidArgumentError(std::move(msg));
    default:
      return InternalError(std::move(msg));
  }
}

std::once_flag curl_init_once;

}  // namespace

S3ObjectStore::S3ObjectStore(S3StoreOptions options) : options_(std::move(options)) {
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::string_view endpoint = options_.config.endpoint;
  size_t sep = endpoint.find("://");
  scheme_ = std::string(endpoint.substr(0, sep));
  authority_ = std::string(endpoint.substr(sep == std::string_view::npos ? 0 : sep + 3));
  while (!authority_.empty() && authority_.back() == '/') authority_.pop_back();
}

S3ObjectStore::~S3ObjectStore() {
  for (void* h : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* S3ObjectStore::AcquireHandle() {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!idle_handles_.empty()) {
      void* h = idle_handles_.back();
      idle_handles_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void S3ObjectStore::ReleaseHandle(void* handle) {
  // curl_easy_reset clears options but keeps the live connection, which is the point of pooling.
  curl_easy_reset(static_cast<CURL*>(handle));
  std::lock_guard<std::mutex> lock(pool_mu_);
  idle_handles_.push_back(handle);
}

std::string S3ObjectStore::Describe(const ObjectRef& object) const {
  return "s3://" + object.bucket + "/" + object.key;
}

S3ObjectStore::Response S3ObjectStore::Execute(Call& call) {
  Response response;
  // Path-style: /bucket/key at the endpoint. Virtual-hosted: bucket.endpoint/key.
  std::string host = authority_;
  std::string path;
  if (UsePathStyle(options_.config, call.object.bucket)) {
    path = "/" + call.object.bucket;
    if (!call.object.key.empty()) path += "/" + UriEncode(call.object.key, false);
  } else {
    if (!call.object.bucket.empty()) host = call.object.bucket + "." + authority_;
    path = "/" + UriEncode(call.object.key, false);
  }
  std::string query;
  for (const auto& [name, value] : call.query) {
    query += query.empty() ? "?" : "&";
    query += UriEncode(name, true) + "=" + UriEncode(value, true);
  }
  std::string url = scheme_ + "://" + host + path + query;

  std::vector<std::pair<std::string, std::string>> headers = call.headers;
  headers.emplace_back("host", host);
  if (call.range) {
    headers.emplace_back("range", "bytes=" + std::to_string(call.range->begin) + "-" +
                                      std::to_string(call.range->end - 1));
  }
  if (!options_.config.anonymous) {
    SigV4Request to_sign;
    to_sign.method = call.method;
    to_sign.canonical_uri = path;
    to_sign.query = call.query;
    to_sign.headers = headers;
    to_sign.payload_hash = call.sign_payload ? Sha256Hex(call.body) : "UNSIGNED-PAYLOAD";
    SigV4Params params;
    params.region = options_.config.region;
    params.now = RealClock().Now();
    SigV4Signature sig = SignV4(to_sign, options_.config.credentials, params);
    for (auto& h : sig.headers_to_add) headers.push_back(std::move(h));
  }

  CURL* curl = static_cast<CURL*>(AcquireHandle());
  curl_slist* header_list = nullptr;
  for (const auto& [name, value] : headers) {
    header_list = curl_slist_append(header_list, (name + ": " + value).c_str());
  }
  // No "Expect: 100-continue" round trip: S3 bodies here are at most one part.
  header_list = curl_slist_append(header_list, "Expect:");
  header_list = curl_slist_append(header_list, "Accept:");

  Exchange ex{&call, &response, call.body, OkStatus()};
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);  // keys with "//", "." or ".." go out as is
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, options_.stall_timeout_s);
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, options_.receive_buffer_bytes);
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &ex);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ex);
  if (!options_.ca_bundle.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_bundle.c_str());
  if (call.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (call.method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, OnUpload);
    curl_easy_setopt(curl, CURLOPT_READDATA, &ex);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, OnSeek);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &ex);
  } else if (call.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, call.body.data());
  } else if (call.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  }

  CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(header_list);
  if (code == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.http_status);
  }
  std::string where = call.method + " " + Describe(call.object);
  if (call.range) {
    where += " bytes " + std::to_string(call.range->begin) + "-" + std::to_string(call.range->end - 1);
  }
  where += " at " + options_.config.endpoint;
  if (code == CURLE_WRITE_ERROR && !ex.sink_status.ok()) {
    response.transport = ex.sink_status.WithContext(where);
  } else if (code != CURLE_OK) {
    response.transport = CurlStatus(code, error_buffer, where);
    // A dropped connection must not go back to the pool in an unknown state.
    curl_easy_cleanup(curl);
    return response;
  } else if (call.sink && ex.Is2xx() && !response.sink_begun) {
    response.transport = ex.BeginSink().WithContext(where);  // an empty body identifies it too
  }
  ReleaseHandle(curl);
  return response;
}

namespace {

// Turns a non-2xx response into one clear line: "NoSuchBucket: bucket 'x' does not exist at URL".
Status HttpError(const S3ObjectStore::Response& r, const std::string& what,
                 const ObjectRef& object, const std::string& endpoint) {
  std::optional<S3Error> error = ParseS3Error(r.body);
  ErrorCode code = ErrorCodeForHttp(r.http_status, error ? error->code : "");
  std::string msg;
  if (error && error->code == "NoSuchBucket") {
    msg = "NoSuchBucket: bucket '" + object.bucket + "' does not exist at " + endpoint;
  } else if (!error && r.http_status == 404) {
    msg = "NotFound: " + what + " (HTTP 404) at " + endpoint;  // HEAD has no body
  } else {
    msg = what + " at " + endpoint + ": " + DescribeS3Error(r.http_status, error);
  }
  return Status(code, std::move(msg));
}

}  // namespace

Result<ListPage> S3ObjectStore::List(const ListRequest& request) {
  Call call;
  call.method = "GET";
  call.object = {request.bucket, ""};
  call.query = {{"list-type", "2"}, {"encoding-type", "url"},
                {"max-keys", std::to_string(request.max_keys)}};
  if (!request.prefix.empty()) call.query.emplace_back("prefix", request.prefix);
  if (!request.delimiter.empty()) call.query.emplace_back("delimiter", request.delimiter);
  if (!request.continuation_token.empty()) {
    call.query.emplace_back("continuation-token", request.continuation_token);
  } else if (!request.start_after.empty()) {
    call.query.emplace_back("start-after", request.start_after);
  }
  Response r = Execute(call);
  std::string what = "ListObjectsV2 s3://" + request.bucket + "/" + request.prefix;
  if (!r.transport.ok()) return r.transport;
  if (r.http_status != 200) return HttpError(r, what, call.object, options_.config.endpoint);
  Result<ListPage> page = ParseListObjectsV2(r.body);
  if (!page.ok()) return page.status().WithContext(what);
  return page;
}

Result<ObjectInfo> S3ObjectStore::Head(const ObjectRef& object) {
  Call call;
  call.method = "HEAD";
  call.object = object;
  Response r = Execute(call);
  std::string what = "HEAD " + Describe(object);
  if (!r.transport.ok()) return r.transport;
  if (r.http_status != 200) return HttpError(r, what, object, options_.config.endpoint);
  ObjectInfo info;
  info.key = object.key;
  ParseU64(r.Header("content-length"), info.size);
  info.etag = StripQuotes(r.Header("etag"));
  info.last_modified = ParseHttpDate(r.Header("last-modified"));
  return info;
}

Result<GetResult> S3ObjectStore::Get(const GetRequest& request, ByteSink& sink) {
  Call call;
  call.method = "GET";
  call.object = request.object;
  call.sink = &sink;
  call.range = request.range;
  if (!request.if_match.empty()) call.headers.emplace_back("if-match", "\"" + request.if_match + "\"");
  Response r = Execute(call);
  std::string what = "GET " + Describe(request.object);
  if (request.range) {
    what += " bytes " + std::to_string(request.range->begin) + "-" +
            std::to_string(request.range->end - 1);
  }
  if (!r.transport.ok()) return r.transport;
  if (r.http_status < 200 || r.http_status >= 300) {
    return HttpError(r, what, request.object, options_.config.endpoint);
  }
  GetResult result;
  result.etag = StripQuotes(r.Header("etag"));
  result.bytes = r.sink_bytes;
  result.object_size = r.sink_bytes;
  if (r.http_status == 206) {
    std::string cr = r.Header("content-range");
    ParseU64(std::string_view(cr).substr(cr.rfind('/') + 1), result.object_size);
  }
  return result;
}

Result<std::string> S3ObjectStore::Put(const ObjectRef& object, std::string_view body) {
  Call call;
  call.method = "PUT";
  call.object = object;
  call.body = body;
  call.sign_payload = true;
  call.headers.emplace_back("content-md5", ContentMd5(body));
  call.headers.emplace_back("content-type", "application/octet-stream");
  Response r = Execute(call);
  std::string what = "PUT " + Describe(object);
  if (!r.transport.ok()) return r.transport;
  if (r.http_status != 200) return HttpError(r, what, object, options_.config.endpoint);
  return StripQuotes(r.Header("etag"));
}

Status S3ObjectStore::Delete(const ObjectRef& object) {
  Call call;
  call.method = "DELETE";
  call.object = object;
  Response r = Execute(call);
  std::string what = "DELETE " + Describe(object);
  if (!r.transport.ok()) return r.transport;
  if (r.http_status != 204 && r.http_status != 200 && r.http_status != 404) {
    return HttpError(r, what, object, options_.config.endpoint);
  }
  return OkStatus();
}

Result<std::string> S3ObjectStore::CreateMultipartUpload(const ObjectRef& object) {
  Call call;
  call.method = "POST";
  call.object = object;
  call.query = {{"uploads", ""}};
  call.sign_payload = true;
  call.headers.emplace_back("content-type", "application/octet-stream");
  Response r = Execute(call);
  std::string what = "CreateMultipartUpload " + Describe(object);
  if (!r.transport.ok()) return r.transport;
  if (r.http_status != 200) return HttpError(r, what, object, options_.config.endpoint);
  Result<std::string> id = ParseInitiateMultipartUpload(r.body);
  if (!id.ok()) return id.status().WithContext(what);
  return id;
}

Result<std::string> S3ObjectStore::UploadPart(const ObjectRef& object,
                                              const std::string& upload_id, int part_number,
                                              std::string_view body) {
  Call call;
  call.method = "PUT";
  call.object = object;
  call.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}};
  call.body = body;
  call.sign_payload = true;
  call.headers.emplace_back("content-md5", ContentMd5(body));
  Response r = Execute(call);
  std::string what = "UploadPart " + std::to_string(part_number) + " of " + Describe(object);
  if (!r.transport.ok()) return r.transport;
  if (r.http_status != 200) return HttpError(r, what, object, options_.config.endpoint);
  return StripQuotes(r.Header("etag"));
}

Result<std::string> S3ObjectStore::CompleteMultipartUpload(
    const ObjectRef& object, const std::string& upload_id,
    const std::vector<CompletedPart>& parts) {
  std::string body = BuildCompleteMultipartUploadBody(parts);
  Call call;
  call.method = "POST";
  call.object = object;
  call.query = {{"uploadId", upload_id}};
  call.body = body;
  call.sign_payload = true;
  call.headers.emplace_back("content-type", "application/xml");
  Response r = Execute(call);
  std::string what = "CompleteMultipartUpload " + Describe(object);
  if (!r.transport.ok()) return r.transport;
  if (r.http_status != 200) return HttpError(r, what, object, options_.config.endpoint);
  // S3 may answer 200 and still fail, with an <Error> body: the parser reports that.
  Result<std::string> etag = ParseCompleteMultipartUpload(r.body);
  if (!etag.ok()) return etag.status().WithContext(what);
  if (!etag->empty()) return etag;
  TF_ASSIGN_OR_RETURN(ObjectInfo info, Head(object));
  return info.etag;
}

Status S3ObjectStore::AbortMultipartUpload(const ObjectRef& object,
                                           const std::string& upload_id) {
  Call call;
  call.method = "DELETE";
  call.object = object;
  call.query = {{"uploadId", upload_id}};
  Response r = Execute(call);
  std::string what = "AbortMultipartUpload " + Describe(object);
  if (!r.transport.ok()) return r.transport;
  if (r.http_status != 204 && r.http_status != 200) {
    return HttpError(r, what, object, options_.config.endpoint);
  }
  return OkStatus();
}

Status S3ObjectStore::CreateBucket(const std::string& bucket) {
  Call call;
  call.method = "PUT";
  call.object = {bucket, ""};
  call.sign_payload = true;
  Response r = Execute(call);
  std::string what = "CreateBucket " + bucket;
  if (!r.transport.ok()) return r.transport;
  if (r.http_status == 409) {
    return AlreadyExistsError(what + ": " + DescribeS3Error(r.http_status, ParseS3Error(r.body)));
  }
  if (r.http_status != 200) return HttpError(r, what, call.object, options_.config.endpoint);
  return OkStatus();
}

}  // namespace trainfeed
