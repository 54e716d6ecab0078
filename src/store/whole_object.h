// Reading a whole object (or one range of it) into memory: manifests, pack indexes, small pack
// members. Large data never goes this way; it streams through a ByteSink.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "store/object_store.h"

namespace trainfeed {

// The bytes `request` names. InvalidArgument ("larger than N bytes") when there are more than
// `max_bytes`, so a document that turns out huge cannot exhaust memory.
Result<std::string> GetWholeObject(ObjectStore& store, const GetRequest& request,
                                   uint64_t max_bytes = std::numeric_limits<uint64_t>::max());

}  // namespace trainfeed
