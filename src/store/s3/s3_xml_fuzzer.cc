// libFuzzer target for the S3 XML parsers: every input goes through every parser, and the
// results are checked against invariants the store relies on. Not built by default; from the
// checkout root (one command line), then seeded with the golden bodies:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc
//       src/store/s3/s3_xml_fuzzer.cc src/store/s3/s3_xml.cc src/common/status.cc -lpugixml
//       -o s3_xml_fuzzer
//   mkdir -p corpus && ./s3_xml_fuzzer -max_total_time=60 corpus src/store/s3/testdata
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <pugixml.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "store/s3/s3_xml.h"

namespace {

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

using trainfeed::ErrorCode;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Independent of the parser: does the document's root say IsTruncated=true?
bool DeclaresTruncated(std::string_view body) {
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), body.size())) return false;
  for (pugi::xml_node child : doc.document_element().children()) {
    std::string_view name = child.name();
    const size_t colon = name.find(':');
    if (colon != std::string_view::npos) name.remove_prefix(colon + 1);
    if (name != "IsTruncated") continue;
    std::string_view text = child.text().get();
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n' ||
                             text.front() == '\r')) {
      text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' ||
                             text.back() == '\r')) {
      text.remove_suffix(1);
    }
    if (text == "true" || text == "1") return true;
  }
  return false;
}

bool IsOneLine(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

void CheckFailure(const trainfeed::Status& status, std::string_view what) {
  FUZZ_CHECK(status.code() != ErrorCode::kOk);
  FUZZ_CHECK(StartsWith(status.message(), what));
}

void CheckList(std::string_view body) {
  trainfeed::Result<trainfeed::ListPage> page = trainfeed::ParseListObjectsV2(body);
  if (!page.ok()) {
    CheckFailure(page.status(), "ListObjectsV2 response");
    return;
  }
  // A truncated page must carry the token for the next one, or paging silently stops.
  if (DeclaresTruncated(body)) FUZZ_CHECK(!page->next_continuation_token.empty());
  for (const trainfeed::ObjectInfo& object : page->objects) FUZZ_CHECK(!object.key.empty());
  for (const std::string& prefix : page->common_prefixes) FUZZ_CHECK(!prefix.empty());
}

void CheckErrorDocument(std::string_view body, long http_status) {
  const std::optional<trainfeed::S3Error> error = trainfeed::ParseS3Error(body);
  const std::string line = trainfeed::DescribeS3Error(http_status, error);
  FUZZ_CHECK(!line.empty());
  FUZZ_CHECK(IsOneLine(line));
  FUZZ_CHECK(line.size() < 1024);
  const std::string_view code = error ? std::string_view(error->code) : std::string_view();
  FUZZ_CHECK(trainfeed::ErrorCodeForHttp(http_status, code) != ErrorCode::kOk);
  if (error) {
    // An <Error> in a 200 must never read as a finished upload.
    FUZZ_CHECK(!trainfeed::ParseCompleteMultipartUpload(body).ok());
    FUZZ_CHECK(!trainfeed::ParseInitiateMultipartUpload(body).ok());
  }
}

void CheckMultipart(std::string_view body) {
  trainfeed::Result<std::string> id = trainfeed::ParseInitiateMultipartUpload(body);
  if (id.ok()) {
    FUZZ_CHECK(!id->empty());
  } else {
    CheckFailure(id.status(), "CreateMultipartUpload response");
  }
  trainfeed::Result<std::string> etag = trainfeed::ParseCompleteMultipartUpload(body);
  if (etag.ok()) {
    FUZZ_CHECK(!etag->empty());
  } else {
    CheckFailure(etag.status(), "CompleteMultipartUpload response");
  }
}

// Parts made from the input (printable ASCII, split at '\n') must survive the XML round trip.
void CheckBuildRoundTrip(std::string_view data) {
  std::vector<trainfeed::CompletedPart> parts;
  std::string etag;
  for (size_t i = 0; i <= data.size() && parts.size() < 64; ++i) {
    if (i == data.size() || data[i] == '\n') {
      parts.push_back({static_cast<int>(parts.size()) + 1, etag});
      etag.clear();
    } else if (data[i] >= 0x20 && data[i] < 0x7f) {
      etag += data[i];
    }
  }
  const std::string body = trainfeed::BuildCompleteMultipartUploadBody(parts);
  pugi::xml_document doc;
  FUZZ_CHECK(doc.load_buffer(body.data(), body.size()));
  size_t n = 0;
  for (pugi::xml_node part : doc.child("CompleteMultipartUpload").children("Part")) {
    FUZZ_CHECK(n < parts.size());
    const std::string& want = parts[n].etag;
    const bool quoted = want.size() >= 2 && want.front() == '"' && want.back() == '"';
    FUZZ_CHECK(part.child("ETag").text().get() == (quoted ? want : "\"" + want + "\""));
    FUZZ_CHECK(part.child("PartNumber").text().as_int() == parts[n].part_number);
    ++n;
  }
  FUZZ_CHECK(n == parts.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  // The status the store would pair with this body: any value, including nonsense.
  const long http_status = size >= 2 ? (data[0] << 8 | data[1]) % 700 : 200;
  CheckList(body);
  CheckErrorDocument(body, http_status);
  CheckMultipart(body);
  CheckBuildRoundTrip(body);
  return 0;
}
