// Which source objects go into which shard, decided from the listing alone, so a rerun after a
// crash computes the very same shards and can keep those already written.
//
// Members are the objects under the source prefix (folder markers left out), named by their key
// relative to the prefix (dataset/local_names.h rules; unsafe names are refused). They are cut
// greedily, in order, into shards of at most `shard_size` bytes of entries (a member larger than
// that gets a shard of its own). The order is the key order, or with a shuffle seed the
// permutation EpochOrder(count, seed, 0) of dataset/sharding.h:
//   - tar: of *samples*, WebDataset style: files whose names agree up to the first '.' of the
//     base name ("a/x01.jpg", "a/x01.cls") form one sample, stay adjacent in key order and are
//     never split across two shards (a sample larger than the shard size gets a shard of its
//     own);
//   - recordio: of single objects, one record each.
// Shards are numbered in plan order: shard-000000.tar, shard-000001.tar, ... (.rec for RecordIO).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/object_store.h"

namespace trainfeed {

enum class PackFormat { kTar, kRecordIO };

// "tar" / "recordio".
std::string_view PackFormatName(PackFormat format);
Result<PackFormat> ParsePackFormat(std::string_view text);

struct PackPlanOptions {
  // Target bytes per shard (entries with their headers and padding). 150 MB is the size at which
  // FastFile reads and File-mode downloads of the shards run at large-object speed.
  uint64_t shard_size = 150'000'000;
  PackFormat format = PackFormat::kTar;
  std::optional<int64_t> shuffle_seed;
};

struct PackMember {
  std::string key;   // full source key
  std::string name;  // key relative to the source prefix: the tar name / record header name
  uint64_t size = 0;
  std::string etag;
  int64_t mtime = 0;  // seconds since the epoch, from the listing (tar headers)
};

struct PlannedShard {
  uint64_t index = 0;
  std::string name;  // "shard-000000.tar"
  std::vector<PackMember> members;
  uint64_t estimated_bytes = 0;  // bytes of the shard object as planned (exact for RecordIO)
};

struct PackPlan {
  PackPlanOptions options;
  std::vector<PlannedShard> shards;
  uint64_t members = 0;
  uint64_t member_bytes = 0;
  // SHA-256 (hex) of the format, shard size, seed and every shard's members (key, size, ETag) in
  // plan order: equal fingerprints mean the same source and arguments, hence the same shards.
  std::string fingerprint;
};

// Bytes a member takes in a shard of `format`: tar header (plus a pax header for names ustar
// cannot hold) and data padded to 512; RecordIO framing of the name header and data (assuming no
// aligned magic in the data, which would add 8 bytes per occurrence).
uint64_t EstimatedEntryBytes(PackFormat format, const std::string& name, uint64_t size);

// "shard-000042.tar" / "shard-000042.rec".
std::string ShardObjectName(uint64_t index, PackFormat format);
// "shard-000042.idx.json": the per-shard index object.
std::string ShardIndexName(uint64_t index);

// The WebDataset sample a name belongs to: the name up to the first '.' of its base name.
std::string SampleKey(const std::string& name);

// Plans `objects` (as listed under `prefix`, in key order; folder markers are skipped).
// InvalidArgument naming the key for a name that is no safe relative path, or when nothing is
// left to pack; InvalidArgument for a zero shard size.
Result<PackPlan> PlanShards(const std::vector<ObjectInfo>& objects, const std::string& prefix,
                            const PackPlanOptions& options);

}  // namespace trainfeed
