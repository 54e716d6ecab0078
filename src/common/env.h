// The environment as an input: code that reads environment variables takes an EnvLookup instead of
// calling getenv, so every precedence rule can be tested with a map.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace trainfeed {

// Returns the value of an environment variable, or nullopt when it is not set. Same alias as in
// store/s3/aws_config.h (a redeclaration of the same type is allowed).
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

}  // namespace trainfeed
