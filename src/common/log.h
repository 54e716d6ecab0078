// Logging: spdlog to stderr. One place sets the level and format so every component logs alike.
// Never log credentials, Authorization headers or presigned URLs.
#pragma once

#include <spdlog/spdlog.h>

namespace trainfeed {

// verbosity: 0 = warnings and errors, 1 = info (default for the CLI), 2 = debug, 3 = trace.
void InitLogging(int verbosity);

}  // namespace trainfeed
