#include "store/s3/aws_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace trainfeed {
namespace {

namespace fs = std::filesystem;

// Distinctive values: if any of them shows up in an error or DebugString, the test says so.
constexpr char kSecret[] = "zebraSECRET/do+not+print+me";
constexpr char kToken[] = "tokenPLATYPUS+do+not+print";

class AwsConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "aws_config_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    home_ = tmpl;
    fs::create_directories(home_ / ".aws");
  }
  void TearDown() override { fs::remove_all(home_); }

  void Write(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
  }
  void WriteConfig(const std::string& text) { Write(home_ / ".aws" / "config", text); }
  void WriteCredentials(const std::string& text) { Write(home_ / ".aws" / "credentials", text); }

  Result<S3Config> Resolve(const S3Overrides& overrides = {}) {
    EnvLookup lookup = [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    return ResolveS3Config(overrides, lookup, home_.string());
  }

  // Resolves expecting success; the test fails with the status otherwise.
  S3Config MustResolve(const S3Overrides& overrides = {}) {
    Result<S3Config> r = Resolve(overrides);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : S3Config{};
  }

  void SetEnvCredentials() {
    env_["AWS_ACCESS_KEY_ID"] = "AKIAENVENVENVENV1234";
    env_["AWS_SECRET_ACCESS_KEY"] = kSecret;
  }

  fs::path home_;
  std::map<std::string, std::string> env_;
};

// --------------------------------------------------------------------------------------------
// Endpoint.

TEST_F(AwsConfigTest, DefaultsToRegionalAwsEndpoint) {
  SetEnvCredentials();
  S3Config c = MustResolve();
  EXPECT_EQ(c.endpoint, "https://s3.us-east-1.amazonaws.com");
  EXPECT_FALSE(c.path_style);
  EXPECT_EQ(c.region, "us-east-1");
  EXPECT_EQ(c.profile, "default");
  EXPECT_EQ(c.endpoint_source, "default");
  EXPECT_EQ(c.region_source, "default");

  env_["AWS_REGION"] = "eu-west-1";
  EXPECT_EQ(MustResolve().endpoint, "https://s3.eu-west-1.amazonaws.com");
  env_["AWS_REGION"] = "cn-north-1";
  EXPECT_EQ(MustResolve().endpoint, "https://s3.cn-north-1.amazonaws.com.cn");
}

TEST_F(AwsConfigTest, EndpointPrecedence) {
  SetEnvCredentials();
  WriteConfig(
      "[default]\n"
      "endpoint_url = http://profile-global:9000\n");
  EXPECT_EQ(MustResolve().endpoint, "http://profile-global:9000");

  WriteConfig(
      "[default]\n"
      "endpoint_url = http://profile-global:9000\n"
      "services = local\n"
      "[services local]\n"
      "dynamodb =\n"
      "  endpoint_url = http://services-dynamodb:8000\n"
      "s3 =\n"
      "  endpoint_url = http://services-s3:9000\n");
  S3Config c = MustResolve();
  EXPECT_EQ(c.endpoint, "http://services-s3:9000");
  EXPECT_TRUE(c.path_style);

  env_["AWS_ENDPOINT_URL"] = "http://env-global:9000";
  EXPECT_EQ(MustResolve().endpoint, "http://env-global:9000");

  env_["AWS_ENDPOINT_URL_S3"] = "http://env-s3:9000";
  c = MustResolve();
  EXPECT_EQ(c.endpoint, "http://env-s3:9000");
  EXPECT_EQ(c.endpoint_source, "AWS_ENDPOINT_URL_S3");

  S3Overrides flags;
  flags.endpoint_url = "https://flag.example.com";
  c = MustResolve(flags);
  EXPECT_EQ(c.endpoint, "https://flag.example.com");
  EXPECT_EQ(c.endpoint_source, "--endpoint-url");
  EXPECT_TRUE(c.path_style);
}

TEST_F(AwsConfigTest, IgnoreConfiguredEndpointUrls) {
  SetEnvCredentials();
  WriteConfig("[default]\nendpoint_url = http://profile-global:9000\n");
  env_["AWS_ENDPOINT_URL"] = "http://env-global:9000";
  env_["AWS_ENDPOINT_URL_S3"] = "http://env-s3:9000";
  env_["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true";
  S3Config c = MustResolve();
  EXPECT_EQ(c.endpoint, "https://s3.us-east-1.amazonaws.com");
  EXPECT_FALSE(c.path_style);

  // --endpoint-url is not "configured": it always applies.
  S3Overrides flags;
  flags.endpoint_url = "http://flag:1";
  EXPECT_EQ(MustResolve(flags).endpoint, "http://flag:1");

  // The same switch from the profile.
  env_.erase("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  env_.erase("AWS_ENDPOINT_URL");
  env_.erase("AWS_ENDPOINT_URL_S3");
  WriteConfig(
      "[default]\nendpoint_url = http://profile-global:9000\n"
      "ignore_configured_endpoint_urls = true\n");
  EXPECT_EQ(MustResolve().endpoint, "https://s3.us-east-1.amazonaws.com");

  // The environment variable outranks the profile setting.
  env_["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "false";
  EXPECT_EQ(MustResolve().endpoint, "http://profile-global:9000");
}

TEST_F(AwsConfigTest, EndpointIsNormalizedAndValidated) {
  SetEnvCredentials();
  S3Overrides flags;
  flags.endpoint_url = "HTTP://minio.local:9000/";
  EXPECT_EQ(MustResolve(flags).endpoint, "http://minio.local:9000");

  flags.endpoint_url = "minio.local:9000";
  Result<S3Config> r = Resolve(flags);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("--endpoint-url"), std::string::npos);

  flags.endpoint_url = "https://host/prefix";
  EXPECT_EQ(Resolve(flags).status().code(), ErrorCode::kInvalidArgument);

  flags.endpoint_url = "https://";
  EXPECT_EQ(Resolve(flags).status().code(), ErrorCode::kInvalidArgument);

  flags.endpoint_url = "https://user:hunter2pass@host";
  r = Resolve(flags);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find("hunter2pass"), std::string::npos) << r.status().ToString();
}

TEST_F(AwsConfigTest, AddressingStyleFromProfile) {
  SetEnvCredentials();
  WriteConfig("[default]\ns3 =\n  addressing_style = path\n");
  EXPECT_TRUE(MustResolve().path_style);
  WriteConfig(
      "[default]\nendpoint_url = https://r2.example.com\ns3 =\n  addressing_style = virtual\n");
  EXPECT_FALSE(MustResolve().path_style);
}

TEST_F(AwsConfigTest, UsePathStyleForBucket) {
  S3Config aws;
  aws.endpoint = "https://s3.us-east-1.amazonaws.com";
  EXPECT_FALSE(UsePathStyle(aws, "my-bucket"));
  EXPECT_TRUE(UsePathStyle(aws, "my.dotted.bucket"));  // TLS wildcard covers one label
  EXPECT_TRUE(UsePathStyle(aws, "Legacy_Bucket"));
  aws.endpoint = "http://s3.us-east-1.amazonaws.com";
  EXPECT_FALSE(UsePathStyle(aws, "my.dotted.bucket"));
  S3Config custom;
  custom.endpoint = "http://localhost:9000";
  custom.path_style = true;
  EXPECT_TRUE(UsePathStyle(custom, "my-bucket"));
}

// --------------------------------------------------------------------------------------------
// Region and profile.

TEST_F(AwsConfigTest, RegionPrecedence) {
  SetEnvCredentials();
  WriteConfig("[default]\nregion = from-profile-1\n");
  S3Config c = MustResolve();
  EXPECT_EQ(c.region, "from-profile-1");
  EXPECT_NE(c.region_source.find("[default]"), std::string::npos);

  env_["AWS_DEFAULT_REGION"] = "from-default-region-1";
  EXPECT_EQ(MustResolve().region, "from-default-region-1");

  env_["AWS_REGION"] = "from-region-1";
  EXPECT_EQ(MustResolve().region, "from-region-1");

  S3Overrides flags;
  flags.region = "from-flag-1";
  c = MustResolve(flags);
  EXPECT_EQ(c.region, "from-flag-1");
  EXPECT_EQ(c.region_source, "--region");
}

TEST_F(AwsConfigTest, ProfilePrecedence) {
  SetEnvCredentials();
  WriteConfig(
      "[default]\nregion = r-default\n"
      "[profile dp]\nregion = r-dp\n"
      "[profile p]\nregion = r-p\n"
      "[profile flag]\nregion = r-flag\n"
      // --profile outranks env keys, so this profile needs its own.
      "aws_access_key_id = AKIAFLAG\naws_secret_access_key = flag\n");
  EXPECT_EQ(MustResolve().region, "r-default");
  env_["AWS_DEFAULT_PROFILE"] = "dp";
  EXPECT_EQ(MustResolve().region, "r-dp");
  env_["AWS_PROFILE"] = "p";
  S3Config c = MustResolve();
  EXPECT_EQ(c.region, "r-p");
  EXPECT_EQ(c.profile, "p");
  S3Overrides flags;
  flags.profile = "flag";
  EXPECT_EQ(MustResolve(flags).region, "r-flag");
}

TEST_F(AwsConfigTest, ProfileDefaultSectionSpelledWithPrefix) {
  SetEnvCredentials();
  WriteConfig("[profile default]\nregion = r-prefixed\n");
  EXPECT_EQ(MustResolve().region, "r-prefixed");
}

TEST_F(AwsConfigTest, MissingNamedProfileIsAnError) {
  SetEnvCredentials();
  WriteConfig("[default]\nregion = x\n[profile other]\nregion = y\n");
  S3Overrides flags;
  flags.profile = "nope";
  Result<S3Config> r = Resolve(flags);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("\"nope\""), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("--profile"), std::string::npos);

  // The same from the environment.
  env_["AWS_PROFILE"] = "gone";
  r = Resolve();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("\"gone\""), std::string::npos);
  EXPECT_NE(r.status().message().find("AWS_PROFILE"), std::string::npos);
}

TEST_F(AwsConfigTest, MissingDefaultProfileIsFine) {
  SetEnvCredentials();  // no files at all
  EXPECT_TRUE(Resolve().ok());
}

// --------------------------------------------------------------------------------------------
// Credentials.

TEST_F(AwsConfigTest, CredentialsFromEnvironment) {
  SetEnvCredentials();
  env_["AWS_SESSION_TOKEN"] = kToken;
  WriteCredentials("[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = file\n");
  S3Config c = MustResolve();
  EXPECT_EQ(c.credentials.access_key_id, "AKIAENVENVENVENV1234");
  EXPECT_EQ(c.credentials.secret_access_key, kSecret);
  EXPECT_EQ(c.credentials.session_token, kToken);
  EXPECT_EQ(c.credentials_source, "environment");
  EXPECT_FALSE(c.anonymous);
}

TEST_F(AwsConfigTest, EnvironmentBeatsAwsProfileButNotExplicitProfileFlag) {
  SetEnvCredentials();
  WriteCredentials("[work]\naws_access_key_id = AKIAWORK\naws_secret_access_key = work-secret\n");
  env_["AWS_PROFILE"] = "work";
  EXPECT_EQ(MustResolve().credentials.access_key_id, "AKIAENVENVENVENV1234");

  S3Overrides flags;
  flags.profile = "work";
  S3Config c = MustResolve(flags);
  EXPECT_EQ(c.credentials.access_key_id, "AKIAWORK");
  EXPECT_EQ(c.credentials.secret_access_key, "work-secret");
}

TEST_F(AwsConfigTest, CredentialsFileBeatsConfigFile) {
  WriteCredentials(
      "[default]\naws_access_key_id = AKIACREDS\naws_secret_access_key = creds-secret\n"
      "aws_session_token = creds-token\n");
  WriteConfig("[default]\naws_access_key_id = AKIACONFIG\naws_secret_access_key = config-secret\n");
  S3Config c = MustResolve();
  EXPECT_EQ(c.credentials.access_key_id, "AKIACREDS");
  EXPECT_EQ(c.credentials.session_token, "creds-token");
  EXPECT_NE(c.credentials_source.find("credentials [default]"), std::string::npos)
      << c.credentials_source;
}

TEST_F(AwsConfigTest, CredentialsFromConfigFileProfileSection) {
  WriteConfig(
      "[default]\naws_access_key_id = AKIADEF\naws_secret_access_key = def\n"
      "[profile dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = dev-secret\n");
  S3Config c = MustResolve();
  EXPECT_EQ(c.credentials.access_key_id, "AKIADEF");

  env_["AWS_PROFILE"] = "dev";
  c = MustResolve();
  EXPECT_EQ(c.credentials.access_key_id, "AKIADEV");
  EXPECT_EQ(c.credentials.secret_access_key, "dev-secret");
  EXPECT_NE(c.credentials_source.find("[profile dev]"), std::string::npos);
}

TEST_F(AwsConfigTest, FileLocationsFromEnvironment) {
  fs::create_directories(home_ / "elsewhere");
  Write(home_ / "elsewhere" / "conf", "[profile x]\nregion = r-elsewhere\n");
  Write(home_ / "elsewhere" / "creds",
        "[x]\naws_access_key_id = AKIAX\naws_secret_access_key = x-secret\n");
  // These at the default paths must be ignored.
  WriteConfig("[profile x]\nregion = r-home\n");
  WriteCredentials("[x]\naws_access_key_id = AKIAHOME\naws_secret_access_key = home\n");
  env_["AWS_CONFIG_FILE"] = "~/elsewhere/conf";
  env_["AWS_SHARED_CREDENTIALS_FILE"] = (home_ / "elsewhere" / "creds").string();
  env_["AWS_PROFILE"] = "x";
  S3Config c = MustResolve();
  EXPECT_EQ(c.region, "r-elsewhere");
  EXPECT_EQ(c.credentials.access_key_id, "AKIAX");
}

TEST_F(AwsConfigTest, NoCredentialsAnywhere) {
  WriteConfig("[default]\nregion = us-west-2\n");
  Result<S3Config> r = Resolve();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied);
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("AWS_ACCESS_KEY_ID"), std::string::npos) << m;
  EXPECT_NE(m.find((home_ / ".aws" / "credentials").string()), std::string::npos) << m;
  EXPECT_NE(m.find((home_ / ".aws" / "config").string()), std::string::npos) << m;
  EXPECT_NE(m.find("--no-sign-request"), std::string::npos) << m;
}

TEST_F(AwsConfigTest, PartialCredentialsAreAnErrorWithoutTheSecret) {
  env_["AWS_SECRET_ACCESS_KEY"] = kSecret;
  Result<S3Config> r = Resolve();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("AWS_ACCESS_KEY_ID"), std::string::npos);
  EXPECT_EQ(r.status().message().find(kSecret), std::string::npos);

  env_.clear();
  WriteCredentials(std::string("[default]\naws_secret_access_key = ") + kSecret + "\n");
  r = Resolve();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("aws_access_key_id"), std::string::npos);
  EXPECT_EQ(r.status().message().find(kSecret), std::string::npos);
}

TEST_F(AwsConfigTest, UnsupportedCredentialSourceIsNamed) {
  WriteConfig("[profile sso]\nsso_session = corp\nregion = eu-west-1\n");
  S3Overrides flags;
  flags.profile = "sso";
  Result<S3Config> r = Resolve(flags);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sso_session"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("export-credentials"), std::string::npos);
}

TEST_F(AwsConfigTest, AnonymousNeedsNoCredentials) {
  S3Overrides flags;
  flags.no_sign_request = true;
  S3Config c = MustResolve(flags);
  EXPECT_TRUE(c.anonymous);
  EXPECT_TRUE(c.credentials.empty());
  EXPECT_NE(c.DebugString().find("anonymous"), std::string::npos);

  // Even with keys around, none are picked up.
  SetEnvCredentials();
  c = MustResolve(flags);
  EXPECT_TRUE(c.anonymous);
  EXPECT_TRUE(c.credentials.empty());
}

TEST_F(AwsConfigTest, DebugStringNeverShowsSecrets) {
  env_["AWS_ACCESS_KEY_ID"] = "AKIAIOSFODNN7EXAMPLE";
  env_["AWS_SECRET_ACCESS_KEY"] = kSecret;
  env_["AWS_SESSION_TOKEN"] = kToken;
  S3Config c = MustResolve();
  std::string d = c.DebugString();
  EXPECT_EQ(d.find(kSecret), std::string::npos) << d;
  EXPECT_EQ(d.find("zebra"), std::string::npos) << d;
  EXPECT_EQ(d.find(kToken), std::string::npos) << d;
  EXPECT_EQ(d.find("PLATYPUS"), std::string::npos) << d;
  EXPECT_EQ(d.find("AKIAIOSFODNN7EXAMPLE"), std::string::npos) << d;
  EXPECT_NE(d.find("****************MPLE"), std::string::npos) << d;
  EXPECT_NE(d.find("https://s3.us-east-1.amazonaws.com"), std::string::npos) << d;
  EXPECT_NE(d.find("us-east-1"), std::string::npos) << d;

  // From a file too.
  env_.clear();
  WriteCredentials(std::string("[default]\naws_access_key_id = AKIAFILEKEY0000WXYZ\n") +
                   "aws_secret_access_key = " + kSecret + "\naws_session_token = " + kToken + "\n");
  d = MustResolve().DebugString();
  EXPECT_EQ(d.find("zebra"), std::string::npos) << d;
  EXPECT_EQ(d.find("PLATYPUS"), std::string::npos) << d;
  EXPECT_NE(d.find("WXYZ"), std::string::npos) << d;
}

TEST_F(AwsConfigTest, MalformedFileErrorNamesLineButNotContent) {
  WriteCredentials(std::string("[default]\naws_access_key_id = AKIA\n") + kSecret + "\n");
  Result<S3Config> r = Resolve();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("line 3"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(r.status().message().find("zebra"), std::string::npos) << r.status().ToString();
}

// --------------------------------------------------------------------------------------------
// INI parser.

TEST(ParseAwsIniTest, SectionsKeysCommentsAndWhitespace) {
  Result<IniSections> r = ParseAwsIni(
      "\xEF\xBB\xBF# leading comment\r\n"
      "[default]\r\n"
      "  ; indented comment\n"
      "Region=us-west-2\n"
      "output   =   json   \n"
      "\n"
      "[ profile dev ]   # trailing text after the header is ignored\n"
      "aws_secret_access_key = abc#def;ghi\n"
      "role_arn: arn:aws:iam::123:role/x\n"
      "s3 =\n"
      "    endpoint_url = http://localhost:9000\n"
      "    addressing_style = path\n"
      "    a continuation line without a delimiter\n"
      "region = eu-central-1\n",
      "test");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const IniSections& ini = *r;
  ASSERT_EQ(ini.size(), 2u);
  EXPECT_EQ(ini.at("default").at("region"), "us-west-2");
  EXPECT_EQ(ini.at("default").at("output"), "json");
  const auto& dev = ini.at("profile dev");
  EXPECT_EQ(dev.at("aws_secret_access_key"), "abc#def;ghi");  // no inline comments in values
  EXPECT_EQ(dev.at("role_arn"), "arn:aws:iam::123:role/x");
  EXPECT_EQ(dev.at("s3"), "");
  EXPECT_EQ(dev.at("s3.endpoint_url"), "http://localhost:9000");
  EXPECT_EQ(dev.at("s3.addressing_style"), "path");
  EXPECT_EQ(dev.at("region"), "eu-central-1");
}

TEST(ParseAwsIniTest, Errors) {
  EXPECT_EQ(ParseAwsIni("region = x\n", "f").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ParseAwsIni("[default\n", "f").status().code(), ErrorCode::kInvalidArgument);
  Result<IniSections> r = ParseAwsIni("[a]\nk = v\nnot a setting\n", "f");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "f line 3: expected \"key = value\"");
}

}  // namespace
}  // namespace trainfeed
