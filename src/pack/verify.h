// `trainfeed pack --verify`: re-reads a finished pack and checks it against its index and the
// source. Nothing is written.
//
//  - index.json must exist (a pack without it is incomplete) and the source, listed and planned
//    again with the manifest's arguments, must give the same plan fingerprint;
//  - every shard is streamed once (never held in memory): its size and ETag must match its index,
//    every tar entry must start with a ustar header and every RecordIO entry with the magic, and
//    each member's bytes (read at the index's offset and length) must have the indexed CRC-32C;
//  - every member's source object is fetched again: same length, same CRC-32C;
//  - every source object is in exactly one shard.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "store/object_store.h"
#include "store/store_uri.h"

namespace trainfeed {

struct VerifyOptions {
  int concurrency = 32;  // GETs in flight (shards are read concurrency / 8 at a time)
  const std::atomic<bool>* cancel = nullptr;
  size_t max_reported = 20;  // problem lines kept
};

struct VerifyReport {
  uint64_t shards = 0, members = 0, shard_bytes = 0, source_bytes = 0;
  uint64_t problems = 0;
  std::vector<std::string> lines;  // the first max_reported problems, one line each
  Status fatal;                    // verification could not run (no manifest, listing failed)
  std::chrono::duration<double> elapsed{};
  bool ok() const { return fatal.ok() && problems == 0; }
};

VerifyReport VerifyPack(ObjectStore& source_store, const StoreUri& source, ObjectStore& dest_store,
                        const StoreUri& destination, const VerifyOptions& options);

}  // namespace trainfeed
