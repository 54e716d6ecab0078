#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace trainfeed {

void InitLogging(int verbosity) {
  auto logger = spdlog::stderr_color_mt("trainfeed");
  logger->set_pattern("trainfeed: %^%l%$: %v");
  spdlog::level::level_enum level = spdlog::level::warn;
  if (verbosity == 1) level = spdlog::level::info;
  if (verbosity == 2) level = spdlog::level::debug;
  if (verbosity >= 3) level = spdlog::level::trace;
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

}  // namespace trainfeed
