// Parsers for the two manifest kinds of S3DataSource (contract §4.3, §4.4). Pure: they read only
// the text the caller passes in, so the caller decides how the manifest object is fetched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/store_uri.h"

namespace trainfeed {

// ---- ManifestFile ------------------------------------------------------------------------------

// A parsed ManifestFile: every entry is an object in prefix's bucket.
struct Manifest {
  StoreUri prefix;                // the first element's "prefix"
  std::vector<std::string> keys;  // prefix.key + entry, in manifest order (not sorted)
};

// Longest key a manifest may produce: S3's key limit. file:// stores get PATH_MAX instead.
inline constexpr size_t kMaxS3KeyBytes = 1024;
inline constexpr size_t kMaxFileKeyBytes = 4095;
// Caps memory at roughly kMaxManifestEntries * (key size + 32 bytes).
inline constexpr size_t kMaxManifestEntries = 50'000'000;

// Parses a ManifestFile document: a JSON array whose first element is
// {"prefix": "s3://bucket/some/prefix/"} (or "file:///abs/path/") and whose other elements are
// strings appended verbatim to the prefix's key (no '/' inserted). Other members of the first
// element are ignored. Streams the JSON, so memory holds only the resulting keys.
// An array holding only the prefix object parses to no keys; the caller decides if that is fatal.
// InvalidArgument names the manifest and the array index, e.g.
// "manifest s3://b/m.json[3]: expected a string, got number".
Result<Manifest> ParseManifest(std::string_view json, std::string_view manifest_uri_for_messages);

// File-mode local name of a manifest entry: its full object key, bucket omitted (contract §10),
// checked with CheckSafeRelativePath. InvalidArgument for folder markers and unsafe keys.
Result<std::string> LocalNameForManifestKey(std::string_view key);

// ---- AugmentedManifestFile ---------------------------------------------------------------------

struct AugmentedAttribute {
  std::string name;
  bool is_ref = false;  // name ends in "-ref": value is a URI whose object's bytes are streamed
  // For a -ref attribute: the URI exactly as written (s3://bucket/key or file:///path).
  // Otherwise the text to stream (contract §10): a string's raw characters; numbers, booleans and
  // null as JSON text (integers exactly, other numbers in shortest round-trip form: 1.50 -> 1.5);
  // objects and arrays as compact JSON, members in the order written.
  std::string value;
};

struct AugmentedRecord {
  uint64_t line_number = 0;                    // as passed to Next()
  std::vector<AugmentedAttribute> attributes;  // in AttributeNames order
};

// Turns the lines of an AugmentedManifestFile (JSON Lines), one at a time, into records holding
// exactly the AttributeNames, in that order; other members of a line are ignored wherever they
// appear. The caller splits the stream into lines, so a huge manifest never sits in memory.
class AugmentedManifestReader {
 public:
  // REQUIRES: attribute_names is non-empty (JobSpec validation enforces AWS's limits).
  // `manifest_uri_for_messages`, when given, starts every error message.
  explicit AugmentedManifestReader(std::vector<std::string> attribute_names,
                                   std::string manifest_uri_for_messages = "");

  // Returns the record for `line` (without or with its trailing "\n" / "\r\n"), or nullopt for a
  // blank line. InvalidArgument naming the line number for invalid JSON, a line that is not an
  // object, a missing attribute, or a -ref value that is not an s3:// or file:/// object URI.
  Result<std::optional<AugmentedRecord>> Next(std::string_view line, uint64_t line_number) const;

  const std::vector<std::string>& attribute_names() const { return attribute_names_; }

 private:
  std::string Where(uint64_t line_number) const;

  std::vector<std::string> attribute_names_;
  std::string manifest_uri_;
};

}  // namespace trainfeed
