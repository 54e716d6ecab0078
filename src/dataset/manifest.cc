#include "dataset/manifest.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "dataset/local_names.h"

namespace trainfeed {
namespace {

using Json = nlohmann::json;

enum class Kind { kNull, kBoolean, kNumber, kString, kBinary, kObject, kArray };

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kNull:
      return "null";
    case Kind::kBoolean:
      return "boolean";
    case Kind::kNumber:
      return "number";
    case Kind::kString:
      return "string";
    case Kind::kBinary:
      return "binary";
    case Kind::kObject:
      return "object";
    case Kind::kArray:
      return "array";
  }
  return "value";
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; users need only the rest.
std::string JsonErrorText(const char* what) {
  std::string_view text = what;
  if (text.starts_with("[json.exception.")) {
    size_t end = text.find("] ");
    if (end != std::string_view::npos) text.remove_prefix(end + 2);
  }
  return std::string(text);
}

// Manifests may only point at absolute locations: a relative file:// prefix would depend on the
// current directory, which this pure component must not consult.
bool HasObjectScheme(std::string_view uri) {
  return uri.starts_with("s3://") || uri.starts_with("file:///");
}

// SAX handler for ParseManifest: builds the key list directly, so a manifest of millions of
// entries never exists as a JSON DOM (which costs several times the keys themselves).
class ManifestSax {
 public:
  explicit ManifestSax(std::string_view manifest_uri) : manifest_uri_(manifest_uri) {}

  // The nlohmann SAX interface (json_sax<json>); returning false stops the parse.
  bool null() { return Value(Kind::kNull, nullptr); }
  bool boolean(bool /*val*/) { return Value(Kind::kBoolean, nullptr); }
  bool number_integer(Json::number_integer_t /*val*/) { return Value(Kind::kNumber, nullptr); }
  bool number_unsigned(Json::number_unsigned_t /*val*/) { return Value(Kind::kNumber, nullptr); }
  bool number_float(Json::number_float_t /*val*/, const std::string& /*text*/) {
    return Value(Kind::kNumber, nullptr);
  }
  bool string(std::string& val) { return Value(Kind::kString, &val); }
  bool binary(Json::binary_t& /*val*/) { return Value(Kind::kBinary, nullptr); }
  bool start_object(size_t /*elements*/) { return Open(Kind::kObject); }
  bool start_array(size_t /*elements*/) { return Open(Kind::kArray); }
  bool key(std::string& val) {
    if (skip_depth_ == 0) member_ = std::move(val);
    return true;
  }
  bool end_object() {
    if (skip_depth_ > 0) {
      --skip_depth_;
      return true;
    }
    state_ = State::kEntries;
    return FinishPrefix();
  }
  bool end_array() {
    if (skip_depth_ > 0) {
      --skip_depth_;
      return true;
    }
    if (elements_ == 0) {
      return Fail(std::nullopt,
                  "empty array; the first element must be {\"prefix\": "
                  "\"s3://bucket/prefix/\"}");
    }
    state_ = State::kDone;
    return true;
  }
  bool parse_error(size_t /*position*/, const std::string& /*last_token*/,
                   const Json::exception& ex) {
    // No element index: nlohmann's line and column locate a syntax error more precisely.
    return Fail(std::nullopt, "invalid JSON: " + JsonErrorText(ex.what()));
  }

  bool done() const { return state_ == State::kDone; }
  const Status& status() const { return status_; }
  Manifest TakeManifest() { return std::move(manifest_); }

 private:
  enum class State { kTop, kEntries, kPrefixObject, kDone };

  bool Open(Kind kind) {
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return true;
    }
    return Value(kind, nullptr);
  }

  // Called at the start of every value outside skipped members; `str` only for strings.
  bool Value(Kind kind, std::string* str) {
    if (skip_depth_ > 0) return true;  // a scalar inside an ignored member of the prefix object
    switch (state_) {
      case State::kTop:
        if (kind == Kind::kArray) {
          state_ = State::kEntries;
          return true;
        }
        return Fail(std::nullopt, "expected a JSON array, got " + std::string(KindName(kind)));
      case State::kEntries: {
        uint64_t index = elements_++;
        if (index == 0) {
          if (kind == Kind::kObject) {
            state_ = State::kPrefixObject;
            return true;
          }
          return Fail(index, "expected {\"prefix\": \"s3://bucket/prefix/\"}, got " +
                                 std::string(KindName(kind)));
        }
        if (kind != Kind::kString) {
          return Fail(index, "expected a string, got " + std::string(KindName(kind)));
        }
        return AddEntry(index, *str);
      }
      case State::kPrefixObject:
        if (member_ != "prefix") {
          // Unknown members are ignored, like any field the service does not read.
          if (kind == Kind::kObject || kind == Kind::kArray) skip_depth_ = 1;
          return true;
        }
        if (kind != Kind::kString) {
          return Fail(0, "\"prefix\" must be a string, got " + std::string(KindName(kind)));
        }
        if (prefix_text_.has_value()) return Fail(0, "\"prefix\" appears twice");
        prefix_text_ = std::move(*str);
        return true;
      case State::kDone:
        break;
    }
    return Fail(std::nullopt, "unexpected value after the array");
  }

  bool FinishPrefix() {
    if (!prefix_text_.has_value()) return Fail(0, "missing \"prefix\"");
    if (!HasObjectScheme(*prefix_text_)) {
      return Fail(0, "prefix '" + *prefix_text_ + "' is not an s3:// or file:/// URI");
    }
    Result<StoreUri> uri = ParseStoreUri(*prefix_text_);
    if (!uri.ok()) return Fail(0, uri.status().message());
    manifest_.prefix = std::move(uri).value();
    max_key_bytes_ =
        manifest_.prefix.scheme == StoreUri::Scheme::kS3 ? kMaxS3KeyBytes : kMaxFileKeyBytes;
    return true;
  }

  bool AddEntry(uint64_t index, std::string_view entry) {
    if (manifest_.keys.size() >= kMaxManifestEntries) {
      return Fail(index, "more than " + std::to_string(kMaxManifestEntries) + " entries");
    }
    if (entry.find('\0') != std::string_view::npos) return Fail(index, "entry has a NUL byte");
    size_t size = manifest_.prefix.key.size() + entry.size();
    if (size == 0) return Fail(index, "empty entry under an empty prefix names no object");
    if (size > max_key_bytes_) {
      return Fail(index, "key is " + std::to_string(size) + " bytes; the limit is " +
                             std::to_string(max_key_bytes_));
    }
    std::string& key = manifest_.keys.emplace_back();
    key.reserve(size);
    key.append(manifest_.prefix.key).append(entry);
    return true;
  }

  bool Fail(std::optional<uint64_t> index, std::string why) {
    std::string where = "manifest " + std::string(manifest_uri_);
    if (index.has_value()) where += "[" + std::to_string(*index) + "]";
    status_ = InvalidArgumentError(where + ": " + why);
    return false;
  }

  std::string_view manifest_uri_;
  State state_ = State::kTop;
  uint64_t elements_ = 0;  // elements of the top-level array seen so far
  int skip_depth_ = 0;     // > 0 while inside an ignored member of the prefix object
  std::string member_;     // current member name in the prefix object
  std::optional<std::string> prefix_text_;
  size_t max_key_bytes_ = kMaxS3KeyBytes;
  Manifest manifest_;
  Status status_;
};

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

}  // namespace

Result<Manifest> ParseManifest(std::string_view json, std::string_view manifest_uri_for_messages) {
  ManifestSax sax(manifest_uri_for_messages);
  bool ok = Json::sax_parse(json.data(), json.data() + json.size(), &sax);
  if (!ok || !sax.done()) {
    if (!sax.status().ok()) return sax.status();
    return InvalidArgumentError("manifest " + std::string(manifest_uri_for_messages) +
                                ": incomplete JSON");
  }
  return sax.TakeManifest();
}

Result<std::string> LocalNameForManifestKey(std::string_view key) {
  if (IsFolderMarker(key)) {
    return InvalidArgumentError("key '" + std::string(key) +
                                "' ends in '/' (a folder marker, not an object); refusing to "
                                "write it");
  }
  return CheckSafeRelativePath(key, key);
}

AugmentedManifestReader::AugmentedManifestReader(std::vector<std::string> attribute_names,
                                                 std::string manifest_uri_for_messages)
    : attribute_names_(std::move(attribute_names)),
      manifest_uri_(std::move(manifest_uri_for_messages)) {}

std::string AugmentedManifestReader::Where(uint64_t line_number) const {
  std::string where = "line " + std::to_string(line_number);
  if (manifest_uri_.empty()) return where;
  return "augmented manifest " + manifest_uri_ + " " + where;
}

Result<std::optional<AugmentedRecord>> AugmentedManifestReader::Next(std::string_view line,
                                                                     uint64_t line_number) const {
  if (IsBlank(line)) return std::optional<AugmentedRecord>();
  auto fail = [&](std::string why) {
    return InvalidArgumentError(Where(line_number) + ": " + why);
  };
  // ordered_json keeps members in their written order when an object value is re-serialized.
  nlohmann::ordered_json doc;
  try {
    doc = nlohmann::ordered_json::parse(line);
  } catch (const nlohmann::ordered_json::exception& e) {
    // nlohmann reports errors only by exception; it stops here, at the library boundary.
    return fail("invalid JSON: " + JsonErrorText(e.what()));
  }
  if (!doc.is_object()) return fail("expected a JSON object, got " + std::string(doc.type_name()));

  AugmentedRecord record;
  record.line_number = line_number;
  record.attributes.reserve(attribute_names_.size());
  for (const std::string& name : attribute_names_) {
    auto it = doc.find(name);
    if (it == doc.end()) return fail("missing attribute '" + name + "'");
    AugmentedAttribute& attribute = record.attributes.emplace_back();
    attribute.name = name;
    attribute.is_ref = name.ends_with("-ref");
    if (attribute.is_ref) {
      auto bad_ref = [&](std::string_view why) {
        return fail("attribute '" + name + "' must be an s3:// or file:/// URI of an object; " +
                    std::string(why));
      };
      if (!it->is_string()) return bad_ref("got " + std::string(it->type_name()));
      std::string uri = it->get<std::string>();
      if (!HasObjectScheme(uri)) return bad_ref("got '" + uri + "'");
      Result<StoreUri> parsed = ParseStoreUri(uri);
      if (!parsed.ok()) return bad_ref(parsed.status().message());
      if (parsed->key.empty() || IsFolderMarker(parsed->key)) {
        return bad_ref("'" + uri + "' names no object");
      }
      attribute.value = std::move(uri);
    } else if (it->is_string()) {
      attribute.value = it->get<std::string>();
    } else {
      attribute.value = it->dump();  // compact: no indent, no spaces
    }
  }
  return std::optional<AugmentedRecord>(std::move(record));
}

}  // namespace trainfeed
