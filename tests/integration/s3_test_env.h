// The real S3 server the integration suite runs against: started by the CTest fixture
// (tests/tools/rgw-server), described by the KEY=VALUE file named in TRAINFEED_S3_ENV.
// A missing or unreadable file fails the test: the suite never passes by skipping.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "store/s3/s3_object_store.h"
#include "store/testing/string_sink.h"

namespace trainfeed::testing {

inline std::map<std::string, std::string> ReadS3Env() {
  std::map<std::string, std::string> env;
  const char* path = std::getenv("TRAINFEED_S3_ENV");
  if (!path) {
    ADD_FAILURE() << "TRAINFEED_S3_ENV is not set: run through ctest, which starts the server";
    return env;
  }
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path << ": did the S3 server fixture start?";
    return env;
  }
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

inline S3StoreOptions TestStoreOptions() {
  auto env = ReadS3Env();
  S3StoreOptions options;
  options.config.endpoint = env["AWS_ENDPOINT_URL"];
  options.config.path_style = true;
  options.config.region = env.count("AWS_REGION") ? env["AWS_REGION"] : "us-east-1";
  options.config.credentials.access_key_id = env["AWS_ACCESS_KEY_ID"];
  options.config.credentials.secret_access_key = env["AWS_SECRET_ACCESS_KEY"];
  return options;
}

// A bucket name no other test uses: test name plus a random nonce.
inline std::string UniqueBucket(std::string_view stem) {
  std::random_device rd;
  std::string name = "tf-";
  for (char c : stem) {
    if (name.size() >= 40) break;
    name += (std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '-');
  }
  char nonce[16];
  snprintf(nonce, sizeof(nonce), "-%08x", rd());
  return name + nonce;
}

// Bytes that reveal an offset bug: byte i = (seed + i) % 251.
inline std::string Ramp(size_t size, int seed = 0) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>((seed + i) % 251);
  return s;
}


}  // namespace trainfeed::testing
