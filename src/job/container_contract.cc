#include "job/container_contract.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

namespace trainfeed {
namespace {

// Insertion-ordered, like a Python dict decoded by json.loads: Python's str() of a nested dict
// prints it in document order. Writers below sort keys where Python does.
using Json = nlohmann::ordered_json;

constexpr char kGroupName[] = "homogeneousCluster";

// The toolkit's control hyperparameters (params.SAGEMAKER_HYPERPARAMETERS). They and every other
// "sagemaker_" key are kept from the user; the other "sagemaker_" keys are framework parameters.
constexpr std::string_view kControlKeys[] = {
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_region",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "default_user_module_name",
    "_tuning_objective_metric",
    "sagemaker_s3_output",
};

bool IsControlKey(std::string_view key) {
  return std::find(std::begin(kControlKeys), std::end(kControlKeys), key) != std::end(kControlKeys);
}

bool IsUserKey(std::string_view key) {
  return !IsControlKey(key) && key.substr(0, 10) != "sagemaker_";
}

// ---- UTF-8 -------------------------------------------------------------------------------------

// Decodes one code point at s[i], advancing i. Invalid or truncated sequences yield U+FFFD and
// consume one byte, so any byte string can be written out as valid JSON.
char32_t NextCodePoint(std::string_view s, size_t& i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  if (len == 1) return s[i++];
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t c = b0 & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    c = (c << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < kMin[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += len;
  return c;
}

size_t CodePointCount(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) NextCodePoint(s, i);
  return n;
}

void AppendHex4(std::string& out, const char* prefix, unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04x", v);
  out += prefix;
  out += buf;
}

// ---- Python's json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True) -------------

// JSON string with everything outside printable ASCII escaped, lower-case hex, astral characters
// as surrogate pairs: byte for byte what Python writes.
void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    char32_t c = NextCodePoint(s, i);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else if (c < 0x10000) {
      AppendHex4(out, "\\u", c);
    } else {
      c -= 0x10000;
      AppendHex4(out, "\\u", 0xD800 + (c >> 10));
      AppendHex4(out, "\\u", 0xDC00 + (c & 0x3FF));
    }
  }
  out += '"';
}

// Python's repr(float): the shortest digits that round-trip, positional for exponents -4..15,
// else d.ddde+XX with at least two exponent digits. nlohmann's own dump switches to exponents at
// 1e15, a digit early.
std::string PyFloatRepr(double v, bool json) {
  if (std::isnan(v)) return json ? "NaN" : "nan";
  if (std::isinf(v)) return v > 0 ? (json ? "Infinity" : "inf") : (json ? "-Infinity" : "-inf");
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, ec == std::errc() ? end : buf);
  std::string out;
  if (!sci.empty() && sci[0] == '-') {
    out += '-';
    sci.erase(0, 1);
  }
  size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exp = std::stoi(sci.substr(e + 1));
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(-exp - 1, '0') + digits;
    } else if (digits.size() <= static_cast<size_t>(exp) + 1) {
      out += digits + std::string(exp + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += ebuf;
  }
  return out;
}

void AppendPyJson(std::string& out, const Json& v) {
  switch (v.type()) {
    case Json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    case Json::value_t::number_integer:
      out += std::to_string(v.get<int64_t>());
      return;
    case Json::value_t::number_unsigned:
      out += std::to_string(v.get<uint64_t>());
      return;
    case Json::value_t::number_float:
      out += PyFloatRepr(v.get<double>(), true);
      return;
    case Json::value_t::string:
      AppendJsonString(out, v.get_ref<const std::string&>());
      return;
    case Json::value_t::array: {
      out += '[';
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        AppendPyJson(out, v[i]);
      }
      out += ']';
      return;
    }
    case Json::value_t::object: {
      // std::string compares as unsigned bytes, and UTF-8 byte order is code point order, which
      // is how Python sorts str keys.
      std::vector<const std::string*> keys;
      for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(&it.key());
      std::sort(keys.begin(), keys.end(), [](auto* a, auto* b) { return *a < *b; });
      out += '{';
      for (size_t i = 0; i < keys.size(); ++i) {
        if (i) out += ',';
        AppendJsonString(out, *keys[i]);
        out += ':';
        AppendPyJson(out, v.at(*keys[i]));
      }
      out += '}';
      return;
    }
    default:
      out += "null";
      return;
  }
}

std::string PyJsonDumps(const Json& v) {
  std::string out;
  AppendPyJson(out, v);
  return out;
}

// ---- Python's str() / repr(), for command-line arguments ---------------------------------------

// repr(str): single quotes unless the text has ' and no ", backslash escapes for the quote,
// backslash and control characters. Non-ASCII is kept, as Python does for printable characters;
// the rarer non-printable Unicode categories are not special-cased.
void AppendPyStrRepr(std::string& out, std::string_view s) {
  bool has_single = s.find('\'') != s.npos;
  char quote = has_single && s.find('"') == s.npos ? '"' : '\'';
  out += quote;
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    char32_t c = NextCodePoint(s, i);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  out += quote;
}

void AppendPyRepr(std::string& out, const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      out += "None";
      return;
    case Json::value_t::boolean:
      out += v.get<bool>() ? "True" : "False";
      return;
    case Json::value_t::number_float:
      out += PyFloatRepr(v.get<double>(), false);
      return;
    case Json::value_t::string:
      AppendPyStrRepr(out, v.get_ref<const std::string&>());
      return;
    case Json::value_t::array: {
      out += '[';
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += ", ";
        AppendPyRepr(out, v[i]);
      }
      out += ']';
      return;
    }
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        AppendPyStrRepr(out, it.key());
        out += ": ";
        AppendPyRepr(out, it.value());
      }
      out += '}';
      return;
    }
    default:
      AppendPyJson(out, v);
      return;  // integers
  }
}

// str(value): strings as they are, everything else as repr().
std::string PyStr(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  std::string out;
  AppendPyRepr(out, v);
  return out;
}

// mapping.to_env_vars' value rule: str raw, None empty, anything else compact JSON.
std::string EnvValue(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return PyJsonDumps(v);
}

bool PyTruthy(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return false;
    case Json::value_t::boolean:
      return v.get<bool>();
    case Json::value_t::number_integer:
      return v.get<int64_t>() != 0;
    case Json::value_t::number_unsigned:
      return v.get<uint64_t>() != 0;
    case Json::value_t::number_float:
      return v.get<double>() != 0.0;
    case Json::value_t::string:
    case Json::value_t::array:
    case Json::value_t::object:
      return !v.empty();
    default:
      return false;
  }
}

// The toolkit's json.loads-or-keep-raw. Python also accepts NaN and +-Infinity (which the SDK
// emits for float('inf')), and refuses a leading byte-order mark that nlohmann would skip.
Json DecodeHyperparameter(const std::string& raw) {
  if (raw.rfind("\xEF\xBB\xBF", 0) == 0) return raw;
  std::string_view t = raw;
  auto is_ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!t.empty() && is_ws(t.front())) t.remove_prefix(1);
  while (!t.empty() && is_ws(t.back())) t.remove_suffix(1);
  if (t == "NaN") return std::nan("");
  if (t == "Infinity") return HUGE_VAL;
  if (t == "-Infinity") return -HUGE_VAL;
  Json v = Json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) return raw;
  return v;
}

std::string ToUpperAscii(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

// ---- The config files ---------------------------------------------------------------------------

std::string EffectiveInputMode(const JobSpec& spec, const ChannelSpec& channel) {
  if (!channel.input_mode.empty()) return channel.input_mode;
  if (!spec.training_input_mode.empty()) return spec.training_input_mode;
  return "File";
}

Json InputDataConfig(const JobSpec& spec) {
  Json config = Json::object();
  for (const ChannelSpec& c : spec.channels) {
    Json ch = Json::object();
    if (!c.content_type.empty()) ch["ContentType"] = c.content_type;
    ch["TrainingInputMode"] = EffectiveInputMode(spec, c);
    // A mounted file system is whole on every host.
    ch["S3DistributionType"] = c.s3 && !c.file_system && !c.s3->distribution.empty()
                                   ? c.s3->distribution
                                   : "FullyReplicated";
    ch["RecordWrapperType"] = c.record_wrapper_type.empty() ? "None" : c.record_wrapper_type;
    config[c.name] = std::move(ch);
  }
  return config;
}

std::string InstanceType(const JobSpec& spec) {
  return spec.instance_type.empty() ? "local" : spec.instance_type;
}

Json ResourceConfig(const JobSpec& spec, const HostIdentity& identity, const HostFacts& facts) {
  Json group = {{"instance_group_name", kGroupName},
                {"instance_type", InstanceType(spec)},
                {"hosts", identity.hosts}};
  return {{"current_host", identity.current_host},
          {"current_instance_type", InstanceType(spec)},
          {"current_group_name", kGroupName},
          {"hosts", identity.hosts},
          {"network_interface_name", facts.network_interface_name},
          {"instance_groups", Json::array({group})}};
}

// ---- Files --------------------------------------------------------------------------------------

// mkdir -p with mode 0755 for the parts that are missing.
Status MakeDirs(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) == 0) continue;
    int err = errno;
    struct stat st;
    if (err == EEXIST && ::stat(prefix.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) continue;
      return AlreadyExistsError("mkdir " + prefix + ": exists and is not a directory");
    }
    return ErrnoToStatus(err, "mkdir " + prefix);
  }
  return OkStatus();
}

// Readers (a training process of an earlier attempt, a debugger) see the old file or the new
// one, never half of one. No fsync: the files are rewritten on every start.
Status WriteFileAtomically(const std::string& path, std::string_view content) {
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "open " + tmp);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ErrnoToStatus(err, "write " + tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoToStatus(err, "close " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoToStatus(err, "rename " + tmp + " to " + path);
  }
  return OkStatus();
}

std::string AbsoluteNormal(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path.empty() ? "." : path, ec);
  if (ec) p = path;
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string Join(const std::string& dir, std::string_view name) {
  return dir == "/" ? "/" + std::string(name) : dir + "/" + std::string(name);
}

}  // namespace

std::string JobPaths::ChannelDir(const std::string& channel) const {
  return Join(input_data, channel);
}

JobPaths MakeJobPaths(const std::string& job_root, const JobSpec& spec) {
  JobPaths p;
  p.root = Join(AbsoluteNormal(job_root), "opt/ml");
  p.input = Join(p.root, "input");
  p.input_config = Join(p.input, "config");
  p.input_data = Join(p.input, "data");
  p.model = Join(p.root, "model");
  p.output = Join(p.root, "output");
  p.output_data = Join(p.output, "data");
  p.output_intermediate = Join(p.output, "intermediate");
  p.code = Join(p.root, "code");
  std::string local =
      AbsoluteNormal(spec.checkpoint_local_path.empty() ? std::string("/opt/ml/checkpoints")
                                                        : spec.checkpoint_local_path);
  if (local == "/opt/ml") {
    p.checkpoints = p.root;
  } else if (local.rfind("/opt/ml/", 0) == 0) {
    p.checkpoints = Join(p.root, std::string_view(local).substr(8));
  } else {
    p.checkpoints = local;
  }
  return p;
}

HostFacts ProbeHostFacts(const std::string& dev_dir) {
  HostFacts facts;
  if (DIR* dir = ::opendir(dev_dir.c_str())) {
    while (const dirent* e = ::readdir(dir)) {
      std::string_view name = e->d_name;
      if (name.size() > 6 && name.substr(0, 6) == "nvidia" &&
          std::all_of(name.begin() + 6, name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        ++facts.num_gpus;
      }
    }
    ::closedir(dir);
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  int cpus = ::sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
  if (cpus <= 0) cpus = static_cast<int>(std::thread::hardware_concurrency());
  facts.num_cpus = std::max(cpus, 1);
  return facts;
}

Status WriteContractFiles(const JobPaths& paths, const JobSpec& spec, const HostIdentity& identity,
                          const HostFacts& facts) {
  for (const std::string* dir :
       {&paths.input_config, &paths.input_data, &paths.model, &paths.output_data,
        &paths.output_intermediate, &paths.code, &paths.checkpoints}) {
    TF_RETURN_IF_ERROR(MakeDirs(*dir));
  }
  Json hyperparameters = Json::object();
  for (const auto& [key, value] : spec.hyperparameters) hyperparameters[key] = value;
  TF_RETURN_IF_ERROR(WriteFileAtomically(Join(paths.input_config, "hyperparameters.json"),
                                         PyJsonDumps(hyperparameters)));
  TF_RETURN_IF_ERROR(WriteFileAtomically(Join(paths.input_config, "inputdataconfig.json"),
                                         PyJsonDumps(InputDataConfig(spec))));
  TF_RETURN_IF_ERROR(WriteFileAtomically(Join(paths.input_config, "resourceconfig.json"),
                                         PyJsonDumps(ResourceConfig(spec, identity, facts))));
  std::string checkpoint_config = Join(paths.input_config, "checkpointconfig.json");
  if (spec.checkpoint_s3_uri) {
    Json config = {{"LocalPath", paths.checkpoints}, {"S3Path", *spec.checkpoint_s3_uri}};
    TF_RETURN_IF_ERROR(WriteFileAtomically(checkpoint_config, PyJsonDumps(config)));
  } else if (::unlink(checkpoint_config.c_str()) != 0 && errno != ENOENT) {
    return ErrnoToStatus(errno, "unlink " + checkpoint_config);
  }
  return OkStatus();
}

std::vector<std::string> HyperparameterArgs(const JobSpec& spec) {
  std::vector<std::string> args;
  for (const auto& [key, raw] : spec.hyperparameters) {  // std::map: sorted as Python sorts
    if (!IsUserKey(key)) continue;
    if (key.empty()) {
      args.emplace_back();
    } else {
      args.push_back((CodePointCount(key) > 1 ? "--" : "-") + key);
    }
    Json value = DecodeHyperparameter(raw);
    if (value.is_object()) {
      std::vector<std::pair<std::string, std::string>> items;
      for (auto it = value.begin(); it != value.end(); ++it) {
        items.emplace_back(it.key(), PyStr(it.value()));  // "%s" of None is "None"
      }
      std::sort(items.begin(), items.end());
      std::string joined;
      for (const auto& [k, v] : items) {
        if (!joined.empty()) joined += ',';
        joined += k + "=" + v;
      }
      args.push_back(std::move(joined));
    } else {
      args.push_back(value.is_null() ? "" : PyStr(value));
    }
  }
  return args;
}

std::string TrainingJobArn(const std::string& job_name) {
  std::string lower = job_name;
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return "arn:aws:sagemaker:local:000000000000:training-job/" + lower;
}

std::string SmHyperparameterValue(std::string_view raw) {
  return EnvValue(DecodeHyperparameter(std::string(raw)));
}

std::vector<std::pair<std::string, std::string>> ContractEnvironment(const JobPaths& paths,
                                                                     const JobSpec& spec,
                                                                     const HostIdentity& identity,
                                                                     const HostFacts& facts) {
  auto job_env = [&](const std::string& name) -> std::optional<std::string> {
    auto it = spec.environment.find(name);
    if (it == spec.environment.end()) return std::nullopt;
    return it->second;
  };

  // Hyperparameters split as the toolkit splits them.
  Json user_hps = Json::object();
  Json framework_params = Json::object();
  std::map<std::string, Json> control;
  for (const auto& [key, raw] : spec.hyperparameters) {
    Json value = DecodeHyperparameter(raw);
    if (IsUserKey(key)) {
      user_hps[key] = std::move(value);
    } else if (IsControlKey(key)) {
      control[key] = std::move(value);
    } else {
      framework_params[key] = std::move(value);
    }
  }
  auto control_value = [&](const std::string& key) -> const Json* {
    auto it = control.find(key);
    return it == control.end() ? nullptr : &it->second;
  };

  Json input_data_config = InputDataConfig(spec);
  Json resource_config = ResourceConfig(spec, identity, facts);
  const std::string instance_type = InstanceType(spec);

  std::vector<std::string> channels;
  for (const ChannelSpec& c : spec.channels) channels.push_back(c.name);
  std::sort(channels.begin(), channels.end());
  channels.erase(std::unique(channels.begin(), channels.end()), channels.end());
  Json channel_input_dirs = Json::object();
  for (const std::string& c : channels) channel_input_dirs[c] = paths.ChannelDir(c);

  // Entry point: SAGEMAKER_PROGRAM in the environment beats sagemaker_program. module_name is
  // str() of the latter, so a job without one gets the toolkit's literal "None".
  std::optional<std::string> program_env = job_env("SAGEMAKER_PROGRAM");
  const Json* program_hp = control_value("sagemaker_program");
  Json user_entry_point = nullptr;
  if (program_env && !program_env->empty()) {
    user_entry_point = *program_env;
  } else if (program_hp) {
    user_entry_point = *program_hp;
  }
  std::string module_name =
      program_env ? *program_env : (program_hp ? PyStr(*program_hp) : std::string("None"));
  if (module_name.size() >= 3 && module_name.compare(module_name.size() - 3, 3, ".py") == 0) {
    module_name.resize(module_name.size() - 3);
  }
  const Json* submit_dir = control_value("sagemaker_submit_directory");
  std::string module_dir = submit_dir ? PyStr(*submit_dir) : paths.code;
  const Json* log_level_hp = control_value("sagemaker_container_log_level");
  Json log_level = log_level_hp ? *log_level_hp : Json(20);  // logging.INFO
  std::optional<std::string> framework_module_env = job_env("SAGEMAKER_TRAINING_MODULE");
  Json framework_module = framework_module_env ? Json(*framework_module_env) : Json(nullptr);

  // Instance groups: one homogeneous group holding every host.
  Json group = resource_config["instance_groups"][0];
  Json instance_groups = Json::array({kGroupName});
  Json instance_groups_dict = {{kGroupName, group}};
  Json distribution_instance_groups = Json::array();
  if (auto it = framework_params.find("sagemaker_distribution_instance_groups");
      it != framework_params.end()) {
    distribution_instance_groups = *it;
  } else {
    for (const char* flag :
         {"sagemaker_mpi_enabled", "sagemaker_parameter_server_enabled",
          "sagemaker_distributed_dataparallel_enabled", "sagemaker_pytorch_ddp_enabled",
          "sagemaker_pytorch_xla_multi_worker_enabled",
          "sagemaker_multi_worker_mirrored_strategy_enabled",
          "sagemaker_torch_distributed_enabled"}) {
      auto f = framework_params.find(flag);
      if (f != framework_params.end() && PyTruthy(*f)) {
        distribution_instance_groups.push_back(kGroupName);
        break;
      }
    }
  }
  // Python's `name in value`: membership for a list, substring for a str.
  bool distributed = false;
  if (distribution_instance_groups.is_array()) {
    for (const Json& g : distribution_instance_groups) distributed |= g == kGroupName;
  } else if (distribution_instance_groups.is_string()) {
    distributed =
        distribution_instance_groups.get<std::string>().find(kGroupName) != std::string::npos;
  }
  Json distribution_hosts = distributed ? Json(identity.hosts) : Json::array();
  // The first distribution host, else the first host: the same one in a homogeneous cluster.
  std::string master_hostname = identity.hosts.empty() ? std::string() : identity.hosts.front();
  // The toolkit reads SM_HP_MP_PARAMETERS from its own starting environment: `v and v != "{}"`.
  Json modelparallel = nullptr;
  if (std::optional<std::string> mp = job_env("SM_HP_MP_PARAMETERS")) {
    modelparallel = mp->empty() ? Json("") : Json(*mp != "{}");
  }

  std::vector<std::string> user_args = HyperparameterArgs(spec);

  // Environment.properties(): every @property, for SM_TRAINING_ENV.
  Json training_env = {
      {"additional_framework_parameters", framework_params},
      {"channel_input_dirs", channel_input_dirs},
      {"current_host", identity.current_host},
      {"current_instance_group", kGroupName},
      {"current_instance_group_hosts", identity.hosts},
      {"current_instance_type", instance_type},
      {"distribution_hosts", distribution_hosts},
      {"distribution_instance_groups", distribution_instance_groups},
      {"framework_module", framework_module},
      {"hosts", identity.hosts},
      {"hyperparameters", user_hps},
      {"input_config_dir", paths.input_config},
      {"input_data_config", input_data_config},
      {"input_dir", paths.input},
      {"instance_groups", instance_groups},
      {"instance_groups_dict", instance_groups_dict},
      {"is_hetero", false},
      {"is_master", identity.current_host == master_hostname},
      {"is_modelparallel_enabled", modelparallel},
      {"is_smddpmprun_installed", false},
      {"job_name", spec.training_job_name},
      {"log_level", log_level},
      {"master_hostname", master_hostname},
      {"model_dir", paths.model},
      {"module_dir", module_dir},
      {"module_name", module_name},
      {"network_interface_name", facts.network_interface_name},
      {"num_cpus", facts.num_cpus},
      {"num_gpus", facts.num_gpus},
      {"num_neurons", facts.num_neurons},
      {"output_data_dir", paths.output_data},
      {"output_dir", paths.output},
      {"output_intermediate_dir", paths.output_intermediate},
      {"resource_config", resource_config},
      {"user_entry_point", user_entry_point},
  };

  std::map<std::string, std::string> env(spec.environment.begin(), spec.environment.end());
  env["TRAINING_JOB_NAME"] = spec.training_job_name;
  env["TRAINING_JOB_ARN"] = TrainingJobArn(spec.training_job_name);
  env["SAGEMAKER_BASE_DIR"] = paths.root;
  auto sm = [&](const std::string& name, const Json& value) {
    env["SM_" + ToUpperAscii(name)] = EnvValue(value);
  };
  // Environment.to_env_vars(), in its order: where two names upper-case alike, the later wins.
  sm("hosts", identity.hosts);
  sm("network_interface_name", facts.network_interface_name);
  sm("hps", user_hps);
  sm("user_entry_point", user_entry_point);
  sm("framework_params", framework_params);
  sm("resource_config", resource_config);
  sm("input_data_config", input_data_config);
  sm("output_data_dir", paths.output_data);
  sm("channels", channels);
  sm("current_host", identity.current_host);
  sm("current_instance_type", instance_type);
  sm("current_instance_group", kGroupName);
  sm("current_instance_group_hosts", identity.hosts);
  sm("instance_groups", instance_groups);
  sm("instance_groups_dict", instance_groups_dict);
  sm("distribution_instance_groups", distribution_instance_groups);
  sm("is_hetero", false);
  sm("module_name", module_name);
  sm("log_level", log_level);
  sm("framework_module", framework_module);
  sm("input_dir", paths.input);
  sm("input_config_dir", paths.input_config);
  sm("output_dir", paths.output);
  sm("num_cpus", facts.num_cpus);
  sm("num_gpus", facts.num_gpus);
  sm("num_neurons", facts.num_neurons);
  sm("model_dir", paths.model);
  sm("module_dir", module_dir);
  sm("training_env", training_env);
  sm("user_args", user_args);
  sm("output_intermediate_dir", paths.output_intermediate);
  for (const std::string& c : channels) sm("channel_" + c, paths.ChannelDir(c));
  for (auto it = user_hps.begin(); it != user_hps.end(); ++it) sm("hp_" + it.key(), it.value());

  return {env.begin(), env.end()};
}

}  // namespace trainfeed
