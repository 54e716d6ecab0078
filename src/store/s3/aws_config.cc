#include "store/s3/aws_config.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace trainfeed {
namespace {

constexpr std::string_view kDefaultRegion = "us-east-1";
constexpr size_t kMaxIniBytes = 4 << 20;  // far above any real profile file

// Keys that mean "this profile gets credentials some other way", which we do not implement.
constexpr std::string_view kUnsupportedCredentialKeys[] = {
    "credential_process",      "role_arn",          "sso_session", "sso_start_url",
    "web_identity_token_file", "credential_source",
};

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (IsBlank(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (IsBlank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Status ParseError(std::string_view file_name, int line, std::string_view what) {
  return InvalidArgumentError(std::string(file_name) + " line " + std::to_string(line) + ": " +
                              std::string(what));
}

// Set and non-empty, as the cli treats AWS_PROFILE="" like an unset variable.
std::optional<std::string> Lookup(const EnvLookup& getenv, const std::string& name) {
  std::optional<std::string> v = getenv(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

bool IsTrue(const std::optional<std::string>& v) { return v && ToLower(Trim(*v)) == "true"; }

std::string ExpandHome(const std::string& path, const std::string& home_dir) {
  if (home_dir.empty()) return path;
  if (path == "~") return home_dir;
  if (path.rfind("~/", 0) == 0) return home_dir + path.substr(1);
  return path;
}

// A missing file is an empty one: most machines have no ~/.aws at all.
Result<IniSections> LoadIni(const std::string& path) {
  if (path.empty()) return IniSections{};
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    if (errno == ENOENT || errno == ENOTDIR) return IniSections{};
    return ErrnoToStatus(errno, "open " + path);
  }
  std::string text;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxIniBytes) {
      std::fclose(f);
      return InvalidArgumentError(path + ": larger than " + std::to_string(kMaxIniBytes) +
                                  " bytes; not an AWS config file");
    }
  }
  int read_errno = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (read_errno != 0) return ErrnoToStatus(read_errno, "read " + path);
  return ParseAwsIni(text, path);
}

const std::map<std::string, std::string>* FindSection(const IniSections& ini,
                                                      const std::string& name) {
  auto it = ini.find(name);
  return it == ini.end() ? nullptr : &it->second;
}

std::optional<std::string> Get(const std::map<std::string, std::string>* section,
                               const std::string& key) {
  if (section == nullptr) return std::nullopt;
  auto it = section->find(key);
  if (it == section->end() || it->second.empty()) return std::nullopt;
  return it->second;
}

// The config file names profiles "[profile x]"; the default may be "[default]" or
// "[profile default]" (the latter wins, as in botocore).
std::string ConfigSectionName(const IniSections& config, const std::string& profile) {
  std::string prefixed = "profile " + profile;
  if (profile == "default" && config.count(prefixed) == 0) return "default";
  return prefixed;
}

// Checks and normalizes an endpoint to scheme://host[:port].
Result<std::string> NormalizeEndpoint(std::string_view raw, const std::string& source) {
  std::string_view url = Trim(raw);
  std::string scheme;
  std::string lower = ToLower(url.substr(0, 8));
  if (lower.rfind("https://", 0) == 0) {
    scheme = "https://";
  } else if (lower.rfind("http://", 0) == 0) {
    scheme = "http://";
  } else {
    return InvalidArgumentError("endpoint URL from " + source + " must start with http:// or " +
                                "https:// (got \"" + std::string(url) + "\")");
  }
  std::string_view rest = url.substr(scheme.size());
  // Userinfo could hold a password: refuse it without echoing the URL.
  if (rest.find('@') != std::string_view::npos) {
    return InvalidArgumentError("endpoint URL from " + source +
                                " must not contain user info ('@'); pass credentials separately");
  }
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) {
    return InvalidArgumentError("endpoint URL from " + source + " has no host (got \"" +
                                std::string(url) + "\")");
  }
  if (rest.find_first_of("/?# \t") != std::string_view::npos) {
    return InvalidArgumentError("endpoint URL from " + source +
                                " must be scheme://host[:port] without a path or query (got \"" +
                                std::string(url) + "\")");
  }
  return scheme + std::string(rest);
}

Result<std::string> DefaultAwsEndpoint(const std::string& region) {
  for (char c : region) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) {
      return InvalidArgumentError("region \"" + region +
                                  "\" is not a valid AWS region name (letters, digits and '-')");
    }
  }
  // China regions live under their own domain.
  const char* domain = region.rfind("cn-", 0) == 0 ? ".amazonaws.com.cn" : ".amazonaws.com";
  return "https://s3." + region + domain;
}

std::string Describe(const std::string& path, const std::string& section) {
  return path + " [" + section + "]";
}

// Static keys from one profile section; nullopt when the section has none.
Result<std::optional<AwsCredentials>> CredentialsFromSection(
    const std::map<std::string, std::string>* section, const std::string& where) {
  std::optional<std::string> id = Get(section, "aws_access_key_id");
  std::optional<std::string> secret = Get(section, "aws_secret_access_key");
  if (!id && !secret) return std::optional<AwsCredentials>();
  if (!id || !secret) {
    return InvalidArgumentError(where + " has " +
                                (id ? "aws_access_key_id but no aws_secret_access_key"
                                    : "aws_secret_access_key but no aws_access_key_id"));
  }
  AwsCredentials creds;
  creds.access_key_id = *id;
  creds.secret_access_key = *secret;
  creds.session_token = Get(section, "aws_session_token").value_or("");
  return std::optional<AwsCredentials>(std::move(creds));
}

std::string MaskKeyId(const std::string& id) {
  if (id.size() <= 4) return std::string(id.size(), '*');
  return std::string(id.size() - 4, '*') + id.substr(id.size() - 4);
}

}  // namespace

Result<IniSections> ParseAwsIni(std::string_view text, std::string_view file_name) {
  IniSections sections;
  std::map<std::string, std::string>* current = nullptr;
  std::string last_key;                                            // parent for indented sub-keys
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM

  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t eol = text.find('\n');
    std::string_view raw = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);

    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    const bool indented = IsBlank(raw.front());

    if (!indented && line.front() == '[') {
      size_t close = line.find(']');
      if (close == std::string_view::npos) {
        return ParseError(file_name, line_no, "section header is missing ']'");
      }
      std::string name(Trim(line.substr(1, close - 1)));
      current = &sections[name];
      last_key.clear();
      continue;
    }

    size_t delim = line.find_first_of("=:");
    if (delim == std::string_view::npos && indented && !last_key.empty()) {
      continue;  // continuation of a multi-line value; no setting we read uses one
    }
    if (delim == std::string_view::npos) {
      // Not echoed: a stray line in a credentials file may well be a pasted secret.
      return ParseError(file_name, line_no, "expected \"key = value\"");
    }
    if (current == nullptr) {
      return ParseError(file_name, line_no, "setting outside of any [section]");
    }
    std::string key = ToLower(Trim(line.substr(0, delim)));
    std::string value(Trim(line.substr(delim + 1)));
    if (key.empty()) return ParseError(file_name, line_no, "empty key");

    if (indented && !last_key.empty()) {
      (*current)[last_key + "." + key] = std::move(value);
      continue;
    }
    (*current)[key] = std::move(value);
    last_key = std::move(key);
  }
  return sections;
}

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

Result<S3Config> ResolveS3Config(const S3Overrides& overrides, const EnvLookup& getenv,
                                 const std::string& home_dir) {
  S3Config config;

  // Profile.
  std::string profile_source;
  if (!overrides.profile.empty()) {
    config.profile = overrides.profile;
    profile_source = "--profile";
  } else if (auto p = Lookup(getenv, "AWS_PROFILE")) {
    config.profile = *p;
    profile_source = "AWS_PROFILE";
  } else if (auto p = Lookup(getenv, "AWS_DEFAULT_PROFILE")) {
    config.profile = *p;
    profile_source = "AWS_DEFAULT_PROFILE";
  } else {
    config.profile = "default";
  }

  // Files.
  auto file_path = [&](const char* env_name, const char* leaf) -> std::string {
    if (auto p = Lookup(getenv, env_name)) return ExpandHome(*p, home_dir);
    return home_dir.empty() ? std::string() : home_dir + "/.aws/" + leaf;
  };
  const std::string config_path = file_path("AWS_CONFIG_FILE", "config");
  const std::string creds_path = file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
  TF_ASSIGN_OR_RETURN(IniSections config_ini, LoadIni(config_path));
  TF_ASSIGN_OR_RETURN(IniSections creds_ini, LoadIni(creds_path));

  const std::string config_section_name = ConfigSectionName(config_ini, config.profile);
  const auto* profile = FindSection(config_ini, config_section_name);
  const auto* creds_section = FindSection(creds_ini, config.profile);
  if (profile == nullptr && creds_section == nullptr && config.profile != "default") {
    return InvalidArgumentError("AWS profile \"" + config.profile + "\" (from " + profile_source +
                                ") not found: no [" + config_section_name + "] in " +
                                (config_path.empty() ? "(no config file)" : config_path) +
                                " and no [" + config.profile + "] in " +
                                (creds_path.empty() ? "(no credentials file)" : creds_path));
  }

  // Region.
  if (!overrides.region.empty()) {
    config.region = overrides.region;
    config.region_source = "--region";
  } else if (auto r = Lookup(getenv, "AWS_REGION")) {
    config.region = *r;
    config.region_source = "AWS_REGION";
  } else if (auto r = Lookup(getenv, "AWS_DEFAULT_REGION")) {
    config.region = *r;
    config.region_source = "AWS_DEFAULT_REGION";
  } else if (auto r = Get(profile, "region")) {
    config.region = *r;
    config.region_source = Describe(config_path, config_section_name);
  } else {
    config.region = std::string(kDefaultRegion);
    config.region_source = "default";
  }

  // Endpoint.
  std::optional<std::string> ignore_env = Lookup(getenv, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  const bool ignore_configured =
      ignore_env ? IsTrue(ignore_env) : IsTrue(Get(profile, "ignore_configured_endpoint_urls"));
  std::optional<std::string> endpoint;
  if (!overrides.endpoint_url.empty()) {
    endpoint = overrides.endpoint_url;
    config.endpoint_source = "--endpoint-url";
  } else if (!ignore_configured) {
    std::string services_name = Get(profile, "services").value_or("");
    const auto* services =
        services_name.empty() ? nullptr : FindSection(config_ini, "services " + services_name);
    if (auto e = Lookup(getenv, "AWS_ENDPOINT_URL_S3")) {
      endpoint = e;
      config.endpoint_source = "AWS_ENDPOINT_URL_S3";
    } else if (auto e = Lookup(getenv, "AWS_ENDPOINT_URL")) {
      endpoint = e;
      config.endpoint_source = "AWS_ENDPOINT_URL";
    } else if (auto e = Get(services, "s3.endpoint_url")) {
      endpoint = e;
      config.endpoint_source = Describe(config_path, "services " + services_name) + " s3";
    } else if (auto e = Get(profile, "endpoint_url")) {
      endpoint = e;
      config.endpoint_source = Describe(config_path, config_section_name);
    }
  }
  if (endpoint) {
    TF_ASSIGN_OR_RETURN(config.endpoint, NormalizeEndpoint(*endpoint, config.endpoint_source));
    // S3-compatible servers rarely have wildcard DNS for bucket subdomains.
    config.path_style = true;
  } else {
    TF_ASSIGN_OR_RETURN(config.endpoint, DefaultAwsEndpoint(config.region));
    config.endpoint_source = "default";
    config.path_style = false;
  }
  std::string addressing = ToLower(Get(profile, "s3.addressing_style").value_or("auto"));
  if (addressing == "path") config.path_style = true;
  if (addressing == "virtual") config.path_style = false;

  // Credentials.
  if (overrides.no_sign_request) {
    config.anonymous = true;
    config.credentials_source = "--no-sign-request";
    return config;
  }
  // As in the cli, an explicit --profile outranks credentials in the environment.
  if (overrides.profile.empty()) {
    std::optional<std::string> id = Lookup(getenv, "AWS_ACCESS_KEY_ID");
    std::optional<std::string> secret = Lookup(getenv, "AWS_SECRET_ACCESS_KEY");
    if (id && secret) {
      config.credentials.access_key_id = *id;
      config.credentials.secret_access_key = *secret;
      config.credentials.session_token = Lookup(getenv, "AWS_SESSION_TOKEN").value_or("");
      config.credentials_source = "environment";
      return config;
    }
    if (id || secret) {
      return InvalidArgumentError(id ? "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
                                     : "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
    }
  }
  const std::string creds_where = Describe(creds_path, config.profile);
  const std::string config_where = Describe(config_path, config_section_name);
  TF_ASSIGN_OR_RETURN(std::optional<AwsCredentials> from_creds,
                      CredentialsFromSection(creds_section, creds_where));
  if (from_creds) {
    config.credentials = std::move(*from_creds);
    config.credentials_source = creds_where;
    return config;
  }
  TF_ASSIGN_OR_RETURN(std::optional<AwsCredentials> from_config,
                      CredentialsFromSection(profile, config_where));
  if (from_config) {
    config.credentials = std::move(*from_config);
    config.credentials_source = config_where;
    return config;
  }

  for (std::string_view key : kUnsupportedCredentialKeys) {
    const std::string k(key);
    if (Get(profile, k) || Get(creds_section, k)) {
      return InvalidArgumentError(
          "AWS profile \"" + config.profile + "\" gets credentials through " + k +
          ", which trainfeed does not support; export static keys instead (for example with "
          "`aws configure export-credentials --profile " +
          config.profile + " --format env`), or pass --no-sign-request for a public bucket");
    }
  }
  std::string looked = overrides.profile.empty() ? "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, " : "";
  looked += creds_path.empty() ? "(no credentials file)" : creds_where;
  looked += " and ";
  looked += config_path.empty() ? "(no config file)" : config_where;
  return PermissionDeniedError("no AWS credentials found for profile \"" + config.profile +
                               "\" (looked in " + looked +
                               "); configure credentials, or pass --no-sign-request to read a "
                               "public bucket anonymously");
}

bool UsePathStyle(const S3Config& config, std::string_view bucket) {
  if (config.path_style) return true;
  if (bucket.size() < 3 || bucket.size() > 63) return true;
  for (char c : bucket) {
    bool dns_ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!dns_ok) return true;
  }
  // *.s3.amazonaws.com certificates cover one label only: "a.b.s3..." fails TLS verification.
  return bucket.find('.') != std::string_view::npos && config.endpoint.rfind("https://", 0) == 0;
}

std::string S3Config::DebugString() const {
  std::string s = "endpoint=" + endpoint + " (" + endpoint_source + ")";
  s += path_style ? " path-style" : " virtual-hosted";
  s += " region=" + region + " (" + region_source + ")";
  s += " profile=" + profile;
  if (anonymous) {
    s += " credentials=anonymous";
  } else {
    s += " credentials=" + MaskKeyId(credentials.access_key_id) + " (" + credentials_source + ")";
    if (!credentials.session_token.empty()) s += " +session-token";
  }
  return s;
}

}  // namespace trainfeed
