// Byte sizes and rates as people write and read them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace trainfeed {

// "8388608", "8MiB", "8M" (= MiB), "150MB" (= 150e6), "1.5GiB", "64k". Case-insensitive.
Result<uint64_t> ParseByteSize(std::string_view text);

// "1.5 GiB", "512 B", "12.0 MiB".
std::string FormatBytes(double bytes);

// "1m05s", "12.3s", "2h03m".
std::string FormatDuration(double seconds);

}  // namespace trainfeed
