// Parsing and validation of a CreateTrainingJob request.
//
// Field names, types and constraints follow the SageMaker API model (botocore
// data/sagemaker/2017-07-24/service-2.json, shape CreateTrainingJobRequest and the shapes it
// reaches); the input-mode rules come from the container data contract (§3, §4, §5, §7). Every
// problem is collected and reported at once, so one edit of the spec fixes them all.
#include "job/job_spec.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trainfeed {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kFile = "File";
constexpr std::string_view kFastFile = "FastFile";
constexpr std::string_view kPipe = "Pipe";

constexpr int64_t kMaxRuntimeLimitSeconds = 28 * 24 * 3600;  // the API's 28 days
// The API only says "at least 1"; the cap catches typos before a cluster is asked for them.
constexpr int64_t kMaxInstanceCount = 1000;

// ---------------------------------------------------------------------------------------------
// Text helpers.

// Length as the API counts it: characters, not bytes. The parser has already checked UTF-8.
size_t CharCount(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// A user's text made safe for a one-line message: control characters escaped, long text cut (on
// a character boundary), so that every problem stays on its own line.
std::string Printable(std::string_view s) {
  constexpr size_t kMaxBytes = 120;
  size_t end = s.size();
  bool cut = false;
  if (end > kMaxBytes) {
    end = kMaxBytes;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    cut = true;
  }
  std::string out;
  for (size_t i = 0; i < end; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (cut) out += "...";
  return out;
}

std::string Quote(std::string_view s) { return "'" + Printable(s) + "'"; }

std::string Child(std::string_view parent, std::string_view name) {
  std::string path(parent);
  if (!path.empty()) path += '.';
  path += Printable(name);  // map keys are user text
  return path;
}

std::string Element(std::string_view parent, size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string JoinBar(std::initializer_list<std::string_view> items) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += '|';
    out += item;
  }
  return out;
}

std::string CountRange(int64_t min, int64_t max, std::string_view unit, size_t got) {
  std::string s = min > 0 ? "must have " + std::to_string(min) + " to " + std::to_string(max)
                          : "must have at most " + std::to_string(max);
  return s + " " + std::string(unit) + " (got " + std::to_string(got) + ")";
}

std::string LengthRange(size_t min, size_t max, size_t got) {
  std::string s = min > 0 ? "must be " + std::to_string(min) + " to " + std::to_string(max)
                          : "must be at most " + std::to_string(max);
  return s + " characters (got " + std::to_string(got) + ")";
}

// ---------------------------------------------------------------------------------------------
// Problem collection and typed access to JSON objects.

// Everything one parse found: all problems (reported together) and the fields that mean nothing
// here.
struct Report {
  std::vector<std::string> problems;
  std::vector<std::string> ignored;

  void Problem(std::string_view path, std::string_view what) {
    std::string line(path);
    line += ": ";
    line += what;
    problems.push_back(std::move(line));
  }
};

enum class Type { kString, kBoolean, kInt32, kInt64, kObject, kArray };

bool FitsInt64(const Json& v) {
  if (v.is_number_unsigned()) {
    return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  return v.is_number_integer();
}

bool HasType(const Json& v, Type type) {
  switch (type) {
    case Type::kString:
      return v.is_string();
    case Type::kBoolean:
      return v.is_boolean();
    case Type::kInt32:
      return FitsInt64(v) && v.get<int64_t>() >= std::numeric_limits<int32_t>::min() &&
             v.get<int64_t>() <= std::numeric_limits<int32_t>::max();
    case Type::kInt64:
      return FitsInt64(v);
    case Type::kObject:
      return v.is_object();
    case Type::kArray:
      return v.is_array();
  }
  return false;
}

std::string_view TypeProblem(Type type) {
  switch (type) {
    case Type::kString:
      return "must be a string";
    case Type::kBoolean:
      return "must be a boolean";
    case Type::kInt32:
      return "must be an integer";
    case Type::kInt64:
      return "must be an integer";
    case Type::kObject:
      return "must be an object";
    case Type::kArray:
      return "must be an array";
  }
  return "has the wrong type";
}

// Checks a field that means nothing here against `shape`, a compact JSON description of its API
// shape: "s" string, "b" boolean, "i" integer, "l" long, ["x"] list of x, {"*": x} map of
// string to x, {"Name": x, ...} structure. Only types and member names are checked (an unknown
// member is still an error, as in the API); enums, lengths and required members are not, since
// the values are never used.
void CheckLoose(const Json& value, const Json& shape, const std::string& path, Report* report) {
  if (shape.is_string()) {
    const std::string& t = shape.get_ref<const std::string&>();
    Type type = t == "s"   ? Type::kString
                : t == "b" ? Type::kBoolean
                : t == "i" ? Type::kInt32
                           : Type::kInt64;
    if (!HasType(value, type)) report->Problem(path, TypeProblem(type));
    return;
  }
  if (shape.is_array()) {
    if (!value.is_array()) {
      report->Problem(path, TypeProblem(Type::kArray));
      return;
    }
    for (size_t i = 0; i < value.size(); ++i) {
      CheckLoose(value[i], shape[0], Element(path, i), report);
    }
    return;
  }
  if (!value.is_object()) {
    report->Problem(path, TypeProblem(Type::kObject));
    return;
  }
  if (auto any = shape.find("*"); any != shape.end()) {
    for (const auto& [key, item] : value.items()) CheckLoose(item, *any, Child(path, key), report);
    return;
  }
  for (const auto& [key, item] : value.items()) {
    auto member = shape.find(key);
    if (member == shape.end()) {
      report->Problem(Child(path, key), "unknown field");
    } else {
      CheckLoose(item, *member, Child(path, key), report);
    }
  }
}

enum class Need { kOptional, kRequired };

// One JSON object of the request. Members are taken by name with their expected type; Finish()
// then reports every member nobody took, because the API rejects unknown fields too.
class Fields {
 public:
  // `object` must be a JSON object and outlive this.
  Fields(const Json& object, std::string path, Report* report)
      : object_(object), path_(std::move(path)), report_(report) {}

  std::string PathOf(std::string_view name) const { return Child(path_, name); }

  // Whether the member is present (whatever its type).
  bool Has(std::string_view name) {
    taken_.emplace_back(name);
    return object_.contains(std::string(name));
  }

  // The member, or nullptr when it is absent (a problem if required) or of the wrong type (always
  // a problem).
  const Json* Get(std::string_view name, Type type, Need need = Need::kOptional) {
    taken_.emplace_back(name);
    auto it = object_.find(std::string(name));
    if (it == object_.end()) {
      if (need == Need::kRequired) report_->Problem(PathOf(name), "is required");
      return nullptr;
    }
    if (!HasType(*it, type)) {
      report_->Problem(PathOf(name), TypeProblem(type));
      return nullptr;
    }
    return &*it;
  }

  std::optional<std::string> String(std::string_view name, Need need = Need::kOptional) {
    const Json* v = Get(name, Type::kString, need);
    if (v == nullptr) return std::nullopt;
    return v->get<std::string>();
  }

  // An integer in [min, max]; nullopt when absent or invalid (reported).
  std::optional<int64_t> Integer(std::string_view name, int64_t min, int64_t max,
                                 Need need = Need::kOptional) {
    taken_.emplace_back(name);
    auto it = object_.find(std::string(name));
    if (it == object_.end()) {
      if (need == Need::kRequired) report_->Problem(PathOf(name), "is required");
      return std::nullopt;
    }
    if (!it->is_number_integer()) {
      report_->Problem(PathOf(name), TypeProblem(Type::kInt64));
      return std::nullopt;
    }
    if (!FitsInt64(*it) || it->get<int64_t>() < min || it->get<int64_t>() > max) {
      report_->Problem(PathOf(name), "must be between " + std::to_string(min) + " and " +
                                         std::to_string(max) + " (got " + it->dump() + ")");
      return std::nullopt;
    }
    return it->get<int64_t>();
  }

  // One of `allowed` (compared exactly, as the API does); nullopt when absent or invalid.
  std::optional<std::string> Enum(std::string_view name,
                                  std::initializer_list<std::string_view> allowed,
                                  Need need = Need::kOptional);

  // An API field that means nothing here: checked loosely against `shape` (see CheckLoose) and
  // listed in ignored_fields.
  void Ignore(std::string_view name, std::string_view shape) {
    if (Check(name, shape)) report_->ignored.push_back(PathOf(name));
  }

  // An API field trainfeed cannot honour: checked like Ignore, then reported as a problem.
  void Unsupported(std::string_view name, std::string_view shape, std::string_view why) {
    if (Check(name, shape)) report_->Problem(PathOf(name), why);
  }

  // Reports members that were never asked for. Call once, after all the others.
  void Finish() {
    for (const auto& [key, value] : object_.items()) {
      bool known = false;
      std::string_view near;
      for (const std::string& name : taken_) {
        if (name == key) known = true;
        if (EqualsIgnoreCase(name, key)) near = name;
      }
      if (known) continue;
      std::string what = "unknown field";
      if (!near.empty()) what += " (did you mean " + std::string(near) + "?)";
      report_->Problem(PathOf(key), what);
    }
  }

 private:
  // Checks a present member against `shape`; false when it is absent.
  bool Check(std::string_view name, std::string_view shape) {
    taken_.emplace_back(name);
    auto it = object_.find(std::string(name));
    if (it == object_.end()) return false;
    CheckLoose(*it, Json::parse(shape), PathOf(name), report_);
    return true;
  }

  const Json& object_;
  std::string path_;
  Report* report_;
  std::vector<std::string> taken_;
};

// Reports `value` unless it is one of `allowed`.
bool CheckEnum(const std::string& path, const std::string& value,
               std::initializer_list<std::string_view> allowed, Report* report) {
  for (std::string_view a : allowed) {
    if (value == a) return true;
  }
  std::string what = Quote(value) + " is not one of " + JoinBar(allowed);
  for (std::string_view a : allowed) {
    if (EqualsIgnoreCase(value, a)) {
      what += " (did you mean " + std::string(a) + "?)";
      break;
    }
  }
  report->Problem(path, what);
  return false;
}

std::optional<std::string> Fields::Enum(std::string_view name,
                                        std::initializer_list<std::string_view> allowed,
                                        Need need) {
  std::optional<std::string> v = String(name, need);
  if (!v || !CheckEnum(PathOf(name), *v, allowed, report_)) return std::nullopt;
  return v;
}

// A list of strings with the API's item-count and per-item length limits; nullopt when absent or
// when anything in it is wrong (reported).
std::optional<std::vector<std::string>> StringList(Fields* fields, std::string_view name,
                                                   size_t min_items, size_t max_items,
                                                   size_t min_chars, size_t max_chars,
                                                   Report* report) {
  const Json* list = fields->Get(name, Type::kArray);
  if (list == nullptr) return std::nullopt;
  std::string path = fields->PathOf(name);
  bool ok = true;
  if (list->size() < min_items || list->size() > max_items) {
    report->Problem(path, CountRange(static_cast<int64_t>(min_items),
                                     static_cast<int64_t>(max_items), "items", list->size()));
    ok = false;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& item = (*list)[i];
    if (!item.is_string()) {
      report->Problem(Element(path, i), TypeProblem(Type::kString));
      ok = false;
      continue;
    }
    const std::string& s = item.get_ref<const std::string&>();
    size_t n = CharCount(s);
    if (n < min_chars || n > max_chars) {
      report->Problem(Element(path, i), LengthRange(min_chars, max_chars, n));
      ok = false;
    }
    out.push_back(s);
  }
  if (!ok) return std::nullopt;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Value checks.

bool IsValidJobName(std::string_view s) {
  // [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}: alphanumerics and hyphens, alphanumeric at both ends.
  if (s.empty() || !IsAsciiAlnum(s.front()) || !IsAsciiAlnum(s.back())) return false;
  for (char c : s) {
    if (!IsAsciiAlnum(c) && c != '-') return false;
  }
  return true;
}

bool IsValidChannelName(std::string_view s) {  // [A-Za-z0-9\.\-_]+
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsAsciiAlnum(c) && c != '.' && c != '-' && c != '_') return false;
  }
  return true;
}

bool IsValidEnvironmentKey(std::string_view s) {  // [a-zA-Z_][a-zA-Z0-9_]*
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s) {
    if (!IsAsciiAlnum(c) && c != '_') return false;
  }
  return true;
}

enum class UriKind { kInvalid, kRemote, kFile };

// s3:// and https:// per the API's S3Uri regex (https|s3)://([^/]+)/?(.*); file:// is our
// extension for local data.
UriKind ClassifyDataUri(std::string_view uri) {
  if (uri.find_first_of("\r\n") != std::string_view::npos) return UriKind::kInvalid;
  if (uri.starts_with("file://")) return uri.size() > 7 ? UriKind::kFile : UriKind::kInvalid;
  std::string_view rest;
  if (uri.starts_with("s3://")) {
    rest = uri.substr(5);
  } else if (uri.starts_with("https://")) {
    rest = uri.substr(8);
  } else {
    return UriKind::kInvalid;
  }
  return rest.empty() || rest[0] == '/' ? UriKind::kInvalid : UriKind::kRemote;
}

// Validates a data URI (S3Uri, S3OutputPath); true when usable.
bool CheckDataUri(const std::string& path, const std::string& uri, Report* report) {
  size_t n = CharCount(uri);
  if (n > 1024) {
    report->Problem(path, LengthRange(0, 1024, n));
    return false;
  }
  if (ClassifyDataUri(uri) == UriKind::kInvalid) {
    report->Problem(path,
                    Quote(uri) + " must match (https|s3)://([^/]+)/?(.*) or be a file:// URI");
    return false;
  }
  return true;
}

// FastFile mounts a folder: the prefix must end at a '/' or be the bucket root (contract §3.3).
bool EndsOnFolderBoundary(std::string_view uri) {
  if (uri.ends_with("/")) return true;
  if (uri.starts_with("file://")) return false;
  size_t host = uri.find("://") + 3;
  return uri.find('/', host) == std::string_view::npos;  // s3://bucket
}

bool CheckAbsolutePath(const std::string& path, const std::string& value, Report* report) {
  size_t n = CharCount(value);
  if (n > 4096) {
    report->Problem(path, LengthRange(0, 4096, n));
    return false;
  }
  if (value.empty() || value[0] != '/') {
    report->Problem(path, Quote(value) + " must be an absolute path");
    return false;
  }
  return true;
}

enum class FileSystemForm { kInvalid, kAwsId, kNfs, kLustre, kLocal };

// The AWS id (fs-[0-9a-f]{8,}, 11-21 characters) or a self-hosted address the mount understands
// directly: nfs://server/export, a Lustre NID "mgs@tcp:/fsname", or file:///path.
FileSystemForm ClassifyFileSystemId(std::string_view id) {
  if (id.find_first_of("\r\n") != std::string_view::npos) return FileSystemForm::kInvalid;
  if (id.starts_with("fs-")) {
    if (id.size() < 11 || id.size() > 21) return FileSystemForm::kInvalid;
    for (char c : id.substr(3)) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return FileSystemForm::kInvalid;
    }
    return FileSystemForm::kAwsId;
  }
  if (id.starts_with("nfs://")) {
    size_t slash = id.find('/', 6);
    return slash != std::string_view::npos && slash > 6 ? FileSystemForm::kNfs
                                                        : FileSystemForm::kInvalid;
  }
  if (id.starts_with("file:///")) return FileSystemForm::kLocal;
  // [^/]+@[^:]+:/.+ — the first '/' must follow the ':' that ends the NID list.
  size_t slash = id.find('/');
  if (slash == std::string_view::npos || slash < 2 || id[slash - 1] != ':' ||
      slash + 1 >= id.size()) {
    return FileSystemForm::kInvalid;
  }
  std::string_view nids = id.substr(0, slash - 1);
  size_t at = nids.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= nids.size() ||
      nids.find(':', at) != std::string_view::npos) {
    return FileSystemForm::kInvalid;
  }
  return FileSystemForm::kLustre;
}

// ---------------------------------------------------------------------------------------------
// The request, part by part, in API order.

void ParseAlgorithmSpecification(const Json& object, Report* report, JobSpec* spec) {
  Fields f(object, "AlgorithmSpecification", report);
  if (auto image = f.String("TrainingImage")) {
    size_t n = CharCount(*image);
    if (n > 255) {
      report->Problem(f.PathOf("TrainingImage"), LengthRange(0, 255, n));
    } else {
      spec->training_image = *image;
    }
  }
  f.Ignore("AlgorithmName", R"("s")");
  if (auto mode = f.Enum("TrainingInputMode", {kFile, kPipe, kFastFile}, Need::kRequired)) {
    spec->training_input_mode = *mode;
  }
  f.Ignore("MetricDefinitions", R"([{"Name": "s", "Regex": "s"}])");
  f.Ignore("EnableSageMakerMetricsTimeSeries", R"("b")");
  if (auto v = StringList(&f, "ContainerEntrypoint", 1, 100, 0, 256, report)) {
    spec->container_entrypoint = std::move(*v);
  }
  if (auto v = StringList(&f, "ContainerArguments", 1, 100, 0, 256, report)) {
    spec->container_arguments = std::move(*v);
  }
  f.Ignore("TrainingImageConfig",
           R"({"TrainingRepositoryAccessMode": "s",
               "TrainingRepositoryAuthConfig": {"TrainingRepositoryCredentialsProviderArn": "s"}})");
  f.Finish();
}

void ParseHyperParameters(const Json& object, Report* report, JobSpec* spec) {
  const std::string path = "HyperParameters";
  if (object.size() > 100) report->Problem(path, CountRange(0, 100, "entries", object.size()));
  for (const auto& [key, value] : object.items()) {
    std::string item_path = Child(path, key);
    size_t key_chars = CharCount(key);
    if (key_chars > 256) {
      report->Problem(item_path, "key " + LengthRange(0, 256, key_chars));
    }
    if (!value.is_string()) {
      // A common slip: the API (and hyperparameters.json) carry strings only.
      std::string quoted = Json(value.dump()).dump();
      if (quoted.size() > 80) quoted = "it as a JSON string";
      report->Problem(item_path,
                      "must be a string (SageMaker passes hyperparameters as strings; "
                      "write " +
                          quoted + ")");
      continue;
    }
    const std::string& s = value.get_ref<const std::string&>();
    size_t n = CharCount(s);
    if (n > 2500) {
      report->Problem(item_path, LengthRange(0, 2500, n));
      continue;
    }
    spec->hyperparameters[key] = s;
  }
}

void ParseEnvironment(const Json& object, Report* report, JobSpec* spec) {
  const std::string path = "Environment";
  if (object.size() > 100) report->Problem(path, CountRange(0, 100, "entries", object.size()));
  for (const auto& [key, value] : object.items()) {
    std::string item_path = Child(path, key);
    size_t key_chars = CharCount(key);
    if (key_chars > 512) {
      report->Problem(item_path, "key " + LengthRange(0, 512, key_chars));
    } else if (!IsValidEnvironmentKey(key)) {
      report->Problem(item_path, "key " + Quote(key) + " must match [a-zA-Z_][a-zA-Z0-9_]*");
    }
    if (!value.is_string()) {
      report->Problem(item_path, TypeProblem(Type::kString));
      continue;
    }
    const std::string& s = value.get_ref<const std::string&>();
    size_t n = CharCount(s);
    if (n > 512) {
      report->Problem(item_path, LengthRange(0, 512, n));
      continue;
    }
    spec->environment[key] = s;
  }
}

void ParseS3DataSource(const Json& object, const std::string& path, Report* report,
                       ChannelSpec* channel) {
  Fields f(object, path, report);
  S3DataSourceSpec s3;
  if (auto type = f.String("S3DataType", Need::kRequired)) {
    if (*type == "Converse") {
      // In the API for foundation-model fine-tuning, which has no meaning for a container job.
      report->Problem(f.PathOf("S3DataType"), "Converse is not supported by trainfeed");
    } else if (CheckEnum(f.PathOf("S3DataType"), *type,
                         {"S3Prefix", "ManifestFile", "AugmentedManifestFile"}, report)) {
      s3.s3_data_type = *type;
    }
  }
  if (auto uri = f.String("S3Uri", Need::kRequired)) {
    if (CheckDataUri(f.PathOf("S3Uri"), *uri, report)) s3.s3_uri = *uri;
  }
  if (auto d = f.Enum("S3DataDistributionType", {"FullyReplicated", "ShardedByS3Key"})) {
    s3.distribution = *d;
  }
  bool attributes_given = f.Has("AttributeNames");
  if (auto names = StringList(&f, "AttributeNames", 0, 16, 1, 256, report)) {
    s3.attribute_names = std::move(*names);
  }
  if (s3.s3_data_type == "AugmentedManifestFile" && !attributes_given) {
    // Only the listed attributes are streamed, so without them the channel would be empty.
    report->Problem(f.PathOf("AttributeNames"),
                    "is required with S3DataType AugmentedManifestFile");
  } else if (!s3.s3_data_type.empty() && s3.s3_data_type != "AugmentedManifestFile" &&
             !s3.attribute_names.empty()) {
    report->Problem(f.PathOf("AttributeNames"),
                    "is only allowed with S3DataType AugmentedManifestFile");
  }
  if (auto names = StringList(&f, "InstanceGroupNames", 0, 5, 1, 64, report)) {
    s3.instance_group_names = std::move(*names);
  }
  f.Ignore("ModelAccessConfig", R"({"AcceptEula": "b"})");
  f.Ignore("HubAccessConfig", R"({"HubContentArn": "s"})");
  f.Finish();
  channel->s3 = std::move(s3);
}

void ParseFileSystemDataSource(const Json& object, const std::string& path, Report* report,
                               ChannelSpec* channel) {
  Fields f(object, path, report);
  FileSystemDataSourceSpec fs;
  FileSystemForm form = FileSystemForm::kInvalid;
  if (auto id = f.String("FileSystemId", Need::kRequired)) {
    form = ClassifyFileSystemId(*id);
    size_t n = CharCount(*id);
    if (n > 4096) {
      report->Problem(f.PathOf("FileSystemId"), LengthRange(0, 4096, n));
    } else if (form == FileSystemForm::kInvalid) {
      report->Problem(f.PathOf("FileSystemId"),
                      Quote(*id) +
                          " must be fs-[0-9a-f]{8,} (11 to 21 characters), "
                          "nfs://server/export, mgs@tcp:/fsname or file:///path");
    } else {
      fs.file_system_id = *id;
    }
  }
  if (auto mode = f.Enum("FileSystemAccessMode", {"ro", "rw"}, Need::kRequired)) {
    fs.access_mode = *mode;
  }
  if (auto type = f.Enum("FileSystemType", {"EFS", "FSxLustre"}, Need::kRequired)) {
    fs.file_system_type = *type;
    // The type picks the mount; an address of the other kind would only fail at mount time.
    if (form == FileSystemForm::kNfs && *type != "EFS") {
      report->Problem(f.PathOf("FileSystemType"),
                      *type + " does not fit the NFS address in FileSystemId (use EFS)");
    } else if (form == FileSystemForm::kLustre && *type != "FSxLustre") {
      report->Problem(f.PathOf("FileSystemType"),
                      *type + " does not fit the Lustre address in FileSystemId (use FSxLustre)");
    }
  }
  if (auto dir = f.String("DirectoryPath", Need::kRequired)) {
    if (CheckAbsolutePath(f.PathOf("DirectoryPath"), *dir, report)) fs.directory_path = *dir;
  }
  f.Finish();
  channel->file_system = std::move(fs);
}

void ParseDataSource(const Json& object, const std::string& path, Report* report,
                     ChannelSpec* channel) {
  Fields f(object, path, report);
  std::vector<std::string> present;
  for (std::string_view name : {"S3DataSource", "FileSystemDataSource", "DatasetSource"}) {
    if (f.Has(name)) present.emplace_back(name);
  }
  if (present.size() != 1) {
    std::string got = present.empty() ? "none" : present[0];
    for (size_t i = 1; i < present.size(); ++i) got += " and " + present[i];
    report->Problem(path,
                    "must have exactly one of S3DataSource|FileSystemDataSource (got " + got + ")");
  }
  if (const Json* s3 = f.Get("S3DataSource", Type::kObject)) {
    ParseS3DataSource(*s3, f.PathOf("S3DataSource"), report, channel);
  }
  if (const Json* fs = f.Get("FileSystemDataSource", Type::kObject)) {
    ParseFileSystemDataSource(*fs, f.PathOf("FileSystemDataSource"), report, channel);
  }
  f.Unsupported("DatasetSource", R"({"DatasetArn": "s"})",
                "not supported by trainfeed (SageMaker hub datasets; use S3DataSource)");
  f.Finish();
}

bool ModeAvailable(std::string_view mode, const SupportedModes& modes) {
  if (mode == kFile) return modes.file;
  if (mode == kFastFile) return modes.fast_file;
  if (mode == kPipe) return modes.pipe;
  return false;
}

// The mode rules of contract §3.1/§3.3/§5 for one channel whose effective mode is known.
void CheckChannelMode(const ChannelSpec& channel, const std::string& path, bool inherited,
                      Report* report) {
  const std::string& mode = channel.input_mode;
  std::string effective = "(effective input mode is " + mode +
                          (inherited ? ", from AlgorithmSpecification.TrainingInputMode)" : ")");
  std::string source = path + ".DataSource";
  if (channel.s3 && mode == kFastFile) {
    const std::string& type = channel.s3->s3_data_type;
    if (!type.empty() && type != "S3Prefix") {
      report->Problem(source + ".S3DataSource.S3DataType",
                      type + " cannot be used in FastFile mode, only S3Prefix " + effective);
    }
    const std::string& uri = channel.s3->s3_uri;
    if (type == "S3Prefix" && !uri.empty() && !EndsOnFolderBoundary(uri)) {
      report->Problem(
          source + ".S3DataSource.S3Uri",
          Quote(uri) + " must end in '/' in FastFile mode, which mounts a folder " + effective);
    }
  }
  if (channel.file_system && mode != kFile) {
    report->Problem(source + ".FileSystemDataSource", "requires File mode " + effective);
  }
  // Decompression and RecordIO wrapping happen while streaming, so only Pipe has them.
  if (channel.compression_type == "Gzip" && mode != kPipe) {
    report->Problem(path + ".CompressionType", "Gzip requires Pipe mode " + effective);
  }
  if (channel.record_wrapper_type == "RecordIO" && mode != kPipe) {
    report->Problem(path + ".RecordWrapperType", "RecordIO requires Pipe mode " + effective);
  }
}

// Parses one channel; `mode_given` tells whether it set its own InputMode.
ChannelSpec ParseChannel(const Json& object, const std::string& path, Report* report,
                         bool* mode_given) {
  Fields f(object, path, report);
  ChannelSpec channel;
  if (auto name = f.String("ChannelName", Need::kRequired)) {
    size_t n = CharCount(*name);
    if (n < 1 || n > 64) {
      report->Problem(f.PathOf("ChannelName"), LengthRange(1, 64, n));
    } else if (!IsValidChannelName(*name)) {
      report->Problem(f.PathOf("ChannelName"), Quote(*name) + " must match [A-Za-z0-9\\.\\-_]+");
    } else if (*name == "." || *name == "..") {
      // Allowed by the API's pattern, but the name becomes a directory under /opt/ml/input/data.
      report->Problem(f.PathOf("ChannelName"), Quote(*name) + " cannot name a directory");
    } else {
      channel.name = *name;
    }
  }
  if (const Json* ds = f.Get("DataSource", Type::kObject, Need::kRequired)) {
    ParseDataSource(*ds, f.PathOf("DataSource"), report, &channel);
  }
  if (auto type = f.String("ContentType")) {
    size_t n = CharCount(*type);
    if (n > 256) {
      report->Problem(f.PathOf("ContentType"), LengthRange(0, 256, n));
    } else {
      channel.content_type = *type;
    }
  }
  if (auto c = f.Enum("CompressionType", {"None", "Gzip"})) channel.compression_type = *c;
  if (auto w = f.Enum("RecordWrapperType", {"None", "RecordIO"})) channel.record_wrapper_type = *w;
  *mode_given = f.Has("InputMode");
  if (auto mode = f.Enum("InputMode", {kFile, kPipe, kFastFile})) channel.input_mode = *mode;
  if (const Json* shuffle = f.Get("ShuffleConfig", Type::kObject)) {
    Fields s(*shuffle, f.PathOf("ShuffleConfig"), report);
    channel.shuffle_seed = s.Integer("Seed", std::numeric_limits<int64_t>::min(),
                                     std::numeric_limits<int64_t>::max(), Need::kRequired);
    s.Finish();
  }
  f.Finish();
  return channel;
}

void ParseInputDataConfig(const Json& list, const SupportedModes& modes, Report* report,
                          JobSpec* spec) {
  const std::string path = "InputDataConfig";
  if (list.empty() || list.size() > 20) {
    report->Problem(path, CountRange(1, 20, "channels", list.size()));
  }
  std::map<std::string, size_t> first_use;  // channel name -> index
  bool job_mode_used = false;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string item_path = Element(path, i);
    if (!list[i].is_object()) {
      report->Problem(item_path, TypeProblem(Type::kObject));
      continue;
    }
    bool mode_given = false;
    ChannelSpec channel = ParseChannel(list[i], item_path, report, &mode_given);
    if (!channel.name.empty()) {
      auto [it, inserted] = first_use.emplace(channel.name, i);
      if (!inserted) {
        report->Problem(item_path + ".ChannelName",
                        Quote(channel.name) + " is already used by " + Element(path, it->second));
      }
    }
    // Effective mode (contract §1.4): the channel's own, else the job's. Skipped when the one
    // that applies is missing or invalid, which is reported already.
    if (!mode_given) channel.input_mode = spec->training_input_mode;
    if (!channel.input_mode.empty()) {
      CheckChannelMode(channel, item_path, !mode_given, report);
      if (!ModeAvailable(channel.input_mode, modes)) {
        if (mode_given) {
          report->Problem(item_path + ".InputMode",
                          channel.input_mode + " is not available in this build yet");
        } else {
          job_mode_used = true;
        }
      }
    }
    spec->channels.push_back(std::move(channel));
  }
  if (job_mode_used) {
    // Once for the job, not once per channel that inherits it. Never a silent fallback to File.
    report->Problem("AlgorithmSpecification.TrainingInputMode",
                    spec->training_input_mode + " is not available in this build yet");
  }
  // A Pipe channel "x" reads FIFOs x_0, x_1, ... beside the channel directories (contract §3.4).
  for (size_t i = 0; i < spec->channels.size(); ++i) {
    const ChannelSpec& pipe = spec->channels[i];
    if (pipe.input_mode != kPipe || pipe.name.empty()) continue;
    for (size_t j = 0; j < spec->channels.size(); ++j) {
      const std::string& other = spec->channels[j].name;
      if (!other.starts_with(pipe.name + "_") || other.size() == pipe.name.size() + 1) continue;
      std::string_view suffix = std::string_view(other).substr(pipe.name.size() + 1);
      if (suffix.find_first_not_of("0123456789") != std::string_view::npos) continue;
      report->Problem(Element(path, j) + ".ChannelName",
                      Quote(other) + " clashes with the FIFOs of Pipe channel " + Quote(pipe.name) +
                          " (" + Element(path, i) + ")");
    }
  }
}

void ParseOutputDataConfig(const Json& object, Report* report, JobSpec* spec) {
  Fields f(object, "OutputDataConfig", report);
  f.Ignore("KmsKeyId", R"("s")");
  if (auto uri = f.String("S3OutputPath", Need::kRequired)) {
    if (CheckDataUri(f.PathOf("S3OutputPath"), *uri, report)) spec->s3_output_path = *uri;
  }
  if (auto c = f.Enum("CompressionType", {"GZIP", "NONE"})) spec->output_compression = *c;
  f.Finish();
}

void ParseResourceConfig(const Json& object, Report* report, JobSpec* spec) {
  Fields f(object, "ResourceConfig", report);
  if (auto type = f.String("InstanceType")) spec->instance_type = *type;
  if (auto count = f.Integer("InstanceCount", 1, kMaxInstanceCount)) {
    spec->instance_count = static_cast<int>(*count);
  }
  f.Ignore("VolumeSizeInGB", R"("i")");
  f.Ignore("VolumeKmsKeyId", R"("s")");
  f.Ignore("KeepAlivePeriodInSeconds", R"("i")");
  f.Ignore("InstanceGroups",
           R"([{"InstanceType": "s", "InstanceCount": "i", "InstanceGroupName": "s"}])");
  f.Ignore("TrainingPlanArn", R"("s")");
  f.Ignore("InstancePlacementConfig",
           R"({"EnableMultipleJobs": "b",
               "PlacementSpecifications": [{"UltraServerId": "s", "InstanceCount": "i"}]})");
  f.Finish();
}

void ParseStoppingCondition(const Json& object, Report* report, JobSpec* spec) {
  Fields f(object, "StoppingCondition", report);
  if (auto s = f.Integer("MaxRuntimeInSeconds", 1, kMaxRuntimeLimitSeconds)) {
    spec->max_runtime_seconds = *s;
  }
  f.Ignore("MaxWaitTimeInSeconds", R"("i")");
  f.Ignore("MaxPendingTimeInSeconds", R"("i")");
  f.Finish();
}

void ParseCheckpointConfig(const Json& object, Report* report, JobSpec* spec) {
  Fields f(object, "CheckpointConfig", report);
  if (auto uri = f.String("S3Uri", Need::kRequired)) {
    if (CheckDataUri(f.PathOf("S3Uri"), *uri, report)) spec->checkpoint_s3_uri = *uri;
  }
  if (auto local = f.String("LocalPath")) {
    if (CheckAbsolutePath(f.PathOf("LocalPath"), *local, report)) {
      spec->checkpoint_local_path = *local;
    }
  }
  f.Finish();
}

// "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..." ->
// "line 1, column 5: syntax error ...".
std::string ParseErrorDetail(std::string_view what) {
  if (size_t end = what.find("] "); end != std::string_view::npos) what.remove_prefix(end + 2);
  for (std::string_view prefix : {"parse error at ", "parse error: "}) {
    if (what.starts_with(prefix)) what.remove_prefix(prefix.size());
  }
  return Printable(what);
}

constexpr std::string_view kDebugRuleShape =
    R"([{"RuleConfigurationName": "s", "LocalPath": "s", "S3OutputPath": "s",
         "RuleEvaluatorImage": "s", "InstanceType": "s", "VolumeSizeInGB": "i",
         "RuleParameters": {"*": "s"}}])";

}  // namespace

Result<JobSpec> ParseJobSpec(std::string_view json, const SupportedModes& modes) {
  Json root;
  try {
    root = Json::parse(json.begin(), json.end());
  } catch (const Json::parse_error& e) {  // nlohmann reports malformed input only by throwing
    return InvalidArgumentError("job spec: malformed JSON at byte " + std::to_string(e.byte) +
                                ": " + ParseErrorDetail(e.what()));
  }
  if (!root.is_object()) {
    return InvalidArgumentError("job spec: must be a JSON object (a CreateTrainingJob request)");
  }

  JobSpec spec;
  Report report;
  Fields f(root, "", &report);
  if (auto name = f.String("TrainingJobName", Need::kRequired)) {
    size_t n = CharCount(*name);
    if (n < 1 || n > 63) {
      report.Problem("TrainingJobName", LengthRange(1, 63, n));
    } else if (!IsValidJobName(*name)) {
      report.Problem("TrainingJobName",
                     Quote(*name) + " must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}");
    } else {
      spec.training_job_name = *name;
    }
  }
  if (const Json* hp = f.Get("HyperParameters", Type::kObject)) {
    ParseHyperParameters(*hp, &report, &spec);
  }
  if (const Json* algo = f.Get("AlgorithmSpecification", Type::kObject, Need::kRequired)) {
    ParseAlgorithmSpecification(*algo, &report, &spec);
  }
  f.Ignore("RoleArn", R"("s")");
  if (const Json* inputs = f.Get("InputDataConfig", Type::kArray)) {
    ParseInputDataConfig(*inputs, modes, &report, &spec);
  }
  if (const Json* output = f.Get("OutputDataConfig", Type::kObject)) {
    ParseOutputDataConfig(*output, &report, &spec);
  }
  if (const Json* resources = f.Get("ResourceConfig", Type::kObject)) {
    ParseResourceConfig(*resources, &report, &spec);
  }
  f.Ignore("VpcConfig", R"({"SecurityGroupIds": ["s"], "Subnets": ["s"]})");
  if (const Json* stopping = f.Get("StoppingCondition", Type::kObject)) {
    ParseStoppingCondition(*stopping, &report, &spec);
  }
  f.Ignore("Tags", R"([{"Key": "s", "Value": "s"}])");
  f.Ignore("EnableNetworkIsolation", R"("b")");
  f.Ignore("EnableInterContainerTrafficEncryption", R"("b")");
  f.Ignore("EnableManagedSpotTraining", R"("b")");
  if (const Json* checkpoint = f.Get("CheckpointConfig", Type::kObject)) {
    ParseCheckpointConfig(*checkpoint, &report, &spec);
  }
  f.Ignore("DebugHookConfig",
           R"({"LocalPath": "s", "S3OutputPath": "s", "HookParameters": {"*": "s"},
               "CollectionConfigurations": [{"CollectionName": "s",
                                             "CollectionParameters": {"*": "s"}}]})");
  f.Ignore("DebugRuleConfigurations", kDebugRuleShape);
  f.Ignore("TensorBoardOutputConfig", R"({"LocalPath": "s", "S3OutputPath": "s"})");
  f.Ignore("ExperimentConfig",
           R"({"ExperimentName": "s", "TrialName": "s", "TrialComponentDisplayName": "s",
               "RunName": "s"})");
  f.Ignore("ProfilerConfig",
           R"({"S3OutputPath": "s", "ProfilingIntervalInMilliseconds": "l",
               "ProfilingParameters": {"*": "s"}, "DisableProfiler": "b"})");
  f.Ignore("ProfilerRuleConfigurations", kDebugRuleShape);
  if (const Json* env = f.Get("Environment", Type::kObject)) {
    ParseEnvironment(*env, &report, &spec);
  }
  f.Ignore("RetryStrategy", R"({"MaximumRetryAttempts": "i"})");
  f.Ignore("RemoteDebugConfig", R"({"EnableRemoteDebug": "b"})");
  f.Ignore("InfraCheckConfig", R"({"EnableInfraCheck": "b"})");
  f.Ignore("SessionChainingConfig", R"({"EnableSessionTagChaining": "b"})");
  // It replaces the container with a managed fine-tuning of a hub model: nothing here can run it.
  f.Unsupported("ServerlessJobConfig",
                R"({"BaseModelArn": "s", "AcceptEula": "b", "JobType": "s",
                    "CustomizationTechnique": "s", "Peft": "s", "EvaluationType": "s",
                    "EvaluatorArn": "s"})",
                "not supported by trainfeed (serverless fine-tuning; use "
                "AlgorithmSpecification.TrainingImage)");
  f.Ignore("MlflowConfig",
           R"({"MlflowResourceArn": "s", "MlflowExperimentName": "s", "MlflowRunName": "s"})");
  f.Ignore("ModelPackageConfig", R"({"ModelPackageGroupArn": "s", "SourceModelPackageArn": "s"})");
  f.Finish();

  if (!report.problems.empty()) {
    std::string message;
    for (const std::string& line : report.problems) {
      if (!message.empty()) message += '\n';
      message += line;
    }
    return InvalidArgumentError(std::move(message));
  }
  spec.ignored_fields = std::move(report.ignored);
  return spec;
}

}  // namespace trainfeed
