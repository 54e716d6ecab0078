// The index `pack` writes next to the shards, and reads back to resume and to verify.
//
// DST/shard-NNNNNN.idx.json, one per shard, written only after the shard object is complete:
//   {"format_version": 1, "plan_fingerprint": "<sha256 hex>", "format": "tar"|"recordio",
//    "shard": "shard-000000.tar", "shard_index": 0, "shard_bytes": N, "shard_etag": "...",
//    "members": [{"key": "<source key>", "name": "<name in the shard>", "size": N,
//                 "etag": "<source ETag>", "offset": N|null, "length": N,
//                 "entry_offset": N, "entry_length": N, "crc32c": "8 hex digits"}, ...]}
//   offset/length: where the object's bytes lie in the shard (a ranged GET of exactly them reads
//   the object). offset is null only for a RecordIO record split into parts (its data contains
//   the RecordIO magic at a 4-aligned position): decode the record at entry_offset instead.
//   entry_offset/entry_length: the whole entry (tar: headers, data and padding; RecordIO: the
//   framed record). crc32c: CRC-32C (Castagnoli) of the object's bytes.
//
// DST/index.json, the manifest, written last, once every shard and its index are in place:
//   {"format_version": 1, "source": "s3://...", "format": "tar", "shard_size": N,
//    "shuffle_seed": S|null, "plan_fingerprint": "...", "members": N, "member_bytes": N,
//    "shards": [{"name": "shard-000000.tar", "index": "shard-000000.idx.json",
//                "members": N, "bytes": N, "etag": "..."}, ...]}
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "pack/pack_plan.h"

namespace trainfeed {

inline constexpr int kPackFormatVersion = 1;

struct IndexedMember {
  std::string key;
  std::string name;
  uint64_t size = 0;
  std::string etag;
  std::optional<uint64_t> offset;  // of the data; unset for a split RecordIO record
  uint64_t length = 0;             // bytes of data (= size)
  uint64_t entry_offset = 0;
  uint64_t entry_length = 0;
  uint32_t crc32c = 0;
};

struct ShardIndex {
  std::string plan_fingerprint;
  PackFormat format = PackFormat::kTar;
  std::string shard;  // object name relative to the destination prefix
  uint64_t shard_index = 0;
  uint64_t shard_bytes = 0;
  std::string shard_etag;
  std::vector<IndexedMember> members;
};

struct ManifestShard {
  std::string name;
  std::string index;
  uint64_t members = 0;
  uint64_t bytes = 0;
  std::string etag;
};

struct PackManifest {
  std::string source;
  PackFormat format = PackFormat::kTar;
  uint64_t shard_size = 0;
  std::optional<int64_t> shuffle_seed;
  std::string plan_fingerprint;
  uint64_t members = 0;
  uint64_t member_bytes = 0;
  std::vector<ManifestShard> shards;
};

std::string ShardIndexToJson(const ShardIndex& index);
// InvalidArgument naming `what` for anything that is not a shard index of this format version.
Result<ShardIndex> ParseShardIndex(std::string_view json, std::string_view what);

std::string PackManifestToJson(const PackManifest& manifest);
Result<PackManifest> ParsePackManifest(std::string_view json, std::string_view what);

// "e3069283".
std::string Crc32cHex(uint32_t crc);

}  // namespace trainfeed
