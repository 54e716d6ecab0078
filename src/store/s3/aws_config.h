// Where to send S3 requests and with which credentials, resolved the way the aws cli v2 does it,
// so a command that works with `aws s3` works here with the same flags, env and ~/.aws files.
//
// Pure: the environment, the home directory and the flags are inputs, so every precedence rule is
// testable without touching the process environment. Supported: static keys (env, shared
// credentials file, config file), session tokens, named profiles, endpoint_url (global and
// `[services]` s3), region. Not supported: SSO, assume-role, credential_process, instance
// metadata; a profile that needs them gets an error saying so.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "store/s3/sigv4.h"

namespace trainfeed {

// Command-line flags; "" / false means not given.
struct S3Overrides {
  std::string endpoint_url;  // --endpoint-url
  std::string region;        // --region
  std::string profile;       // --profile
  bool no_sign_request = false;
};

struct S3Config {
  std::string endpoint;        // scheme://host[:port], no trailing slash
  bool path_style = false;     // custom endpoints: true; AWS: virtual-hosted (see UsePathStyle)
  std::string region;          // us-east-1 when nothing sets it
  AwsCredentials credentials;  // empty when anonymous
  bool anonymous = false;
  std::string profile;  // the profile consulted, "default" unless named

  // Where each value came from, for --verbose ("AWS_REGION", "--endpoint-url", a file...).
  std::string endpoint_source;
  std::string region_source;
  std::string credentials_source;

  // One line for --verbose. Never contains the secret key or the session token; the access key id
  // is masked but for its last 4 characters.
  std::string DebugString() const;
};

// Returns the value of an environment variable, or nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// EnvLookup over the real process environment.
std::optional<std::string> ProcessEnv(const std::string& name);

// Resolves endpoint, region and credentials. Precedence, highest first:
//   endpoint:    --endpoint-url, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's
//                `services` section `s3 = endpoint_url = ...`, the profile's endpoint_url,
//                https://s3.<region>.amazonaws.com. AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true (or
//                ignore_configured_endpoint_urls in the profile) skips all but --endpoint-url.
//   region:      --region, AWS_REGION, AWS_DEFAULT_REGION, profile region, us-east-1.
//   profile:     --profile, AWS_PROFILE, AWS_DEFAULT_PROFILE, "default".
//   credentials: --no-sign-request (anonymous); AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
//                (+ AWS_SESSION_TOKEN) unless --profile was given; the shared credentials file
//                (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials) section [name]; the config
//                file (AWS_CONFIG_FILE, else ~/.aws/config) section [profile name] or [default].
// Errors: InvalidArgument for a named profile found in neither file, a malformed file, endpoint or
// partial keys; PermissionDenied when no credentials exist. No error ever contains a secret.
Result<S3Config> ResolveS3Config(const S3Overrides& overrides, const EnvLookup& getenv,
                                 const std::string& home_dir);

// Whether requests for `bucket` must use path-style URLs: when the config says so, and on AWS for
// bucket names that cannot be a TLS-valid DNS label (dots under https, upper case, '_').
bool UsePathStyle(const S3Config& config, std::string_view bucket);

// A parsed ~/.aws/config or ~/.aws/credentials: section -> key -> value. Keys are lower-cased.
// An indented "key = value" line is a sub-key of the key above it, stored as "parent.key" (so
// `s3 =\n  endpoint_url = X` gives "s3.endpoint_url"). Full-line comments start with '#' or ';';
// values keep any '#' (as the aws cli does: secrets may contain one).
using IniSections = std::map<std::string, std::map<std::string, std::string>>;
// `file_name` only labels errors; errors cite line numbers, never line contents.
Result<IniSections> ParseAwsIni(std::string_view text, std::string_view file_name);

}  // namespace trainfeed
