#include "pack/pack_plan.h"

#include <chrono>
#include <cstdio>
#include <unordered_map>

#include "dataset/local_names.h"
#include "dataset/sharding.h"
#include "store/s3/sigv4.h"

namespace trainfeed {

namespace {

constexpr uint64_t kTarBlock = 512;
constexpr uint64_t kTarTrailer = 2 * kTarBlock;  // two zero blocks end the archive

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

}  // namespace

std::string_view PackFormatName(PackFormat format) {
  return format == PackFormat::kTar ? "tar" : "recordio";
}

Result<PackFormat> ParsePackFormat(std::string_view text) {
  if (text == "tar") return PackFormat::kTar;
  if (text == "recordio") return PackFormat::kRecordIO;
  return InvalidArgumentError("format '" + std::string(text) + "' is not one of tar|recordio");
}

uint64_t EstimatedEntryBytes(PackFormat format, const std::string& name, uint64_t size) {
  if (format == PackFormat::kTar) {
    uint64_t bytes = kTarBlock + RoundUp(size, kTarBlock);
    // ustar holds names up to 100 bytes (255 when split at a '/'); libarchive adds a pax header
    // (its own header plus a block or more of records) for longer ones.
    if (name.size() > 100) bytes += 2 * kTarBlock + RoundUp(name.size() + 32, kTarBlock);
    return bytes;
  }
  // RecordIO: 8-byte header, payload = 4-byte name length + name + data, padded to 4.
  return 8 + RoundUp(4 + name.size() + size, 4);
}

std::string ShardObjectName(uint64_t index, PackFormat format) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "shard-%06llu.%s", static_cast<unsigned long long>(index),
                format == PackFormat::kTar ? "tar" : "rec");
  return buf;
}

std::string ShardIndexName(uint64_t index) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "shard-%06llu.idx.json", static_cast<unsigned long long>(index));
  return buf;
}

std::string SampleKey(const std::string& name) {
  size_t base = name.rfind('/');
  base = base == std::string::npos ? 0 : base + 1;
  size_t dot = name.find('.', base);
  return dot == std::string::npos ? name : name.substr(0, dot);
}

Result<PackPlan> PlanShards(const std::vector<ObjectInfo>& objects, const std::string& prefix,
                            const PackPlanOptions& options) {
  if (options.shard_size == 0) return InvalidArgumentError("--shard-size must be more than 0");
  std::vector<PackMember> members;
  members.reserve(objects.size());
  for (const ObjectInfo& o : objects) {
    if (IsFolderMarker(o.key)) continue;
    TF_ASSIGN_OR_RETURN(std::string name, LocalNameForPrefixKey(prefix, o.key));
    if (options.format == PackFormat::kRecordIO && o.size + name.size() + 4 >= (1ull << 29)) {
      // One RecordIO part holds < 2^29 bytes, and records are built in memory.
      return InvalidArgumentError("'" + o.key + "' (" + std::to_string(o.size) +
                                  " bytes) is too large for one RecordIO record (512 MiB)");
    }
    int64_t mtime = std::chrono::duration_cast<std::chrono::seconds>(
                        o.last_modified.time_since_epoch()).count();
    members.push_back({o.key, std::move(name), o.size, o.etag, mtime});
  }
  if (members.empty()) return InvalidArgumentError("nothing to pack under '" + prefix + "'");

  // Groups of member indices that must stay together: samples for tar, single objects for
  // RecordIO. In key order, by first appearance.
  std::vector<std::vector<size_t>> groups;
  if (options.format == PackFormat::kTar) {
    std::unordered_map<std::string, size_t> group_of;
    for (size_t i = 0; i < members.size(); ++i) {
      auto [it, inserted] = group_of.emplace(SampleKey(members[i].name), groups.size());
      if (inserted) groups.emplace_back();
      groups[it->second].push_back(i);
    }
  } else {
    groups.reserve(members.size());
    for (size_t i = 0; i < members.size(); ++i) groups.push_back({i});
  }
  std::vector<uint64_t> order = EpochOrder(groups.size(), options.shuffle_seed, 0);

  PackPlan plan;
  plan.options = options;
  uint64_t overhead = options.format == PackFormat::kTar ? kTarTrailer : 0;
  for (uint64_t g : order) {
    uint64_t group_bytes = 0;
    for (size_t i : groups[g]) {
      group_bytes += EstimatedEntryBytes(options.format, members[i].name, members[i].size);
    }
    bool start_new = plan.shards.empty() ||
                     (!plan.shards.back().members.empty() &&
                      plan.shards.back().estimated_bytes + group_bytes > options.shard_size);
    if (start_new) {
      PlannedShard shard;
      shard.index = plan.shards.size();
      shard.name = ShardObjectName(shard.index, options.format);
      shard.estimated_bytes = overhead;
      plan.shards.push_back(std::move(shard));
    }
    PlannedShard& shard = plan.shards.back();
    shard.estimated_bytes += group_bytes;
    for (size_t i : groups[g]) {
      plan.members += 1;
      plan.member_bytes += members[i].size;
      shard.members.push_back(std::move(members[i]));
    }
  }

  std::string text = "trainfeed-pack-plan 1\n" + std::string(PackFormatName(options.format)) +
                     "\n" + std::to_string(options.shard_size) + "\n" +
                     (options.shuffle_seed ? std::to_string(*options.shuffle_seed) : "-") + "\n";
  for (const PlannedShard& shard : plan.shards) {
    text += "shard " + shard.name + "\n";
    for (const PackMember& m : shard.members) {
      // Keys may hold any byte but NUL; a NUL separator keeps the encoding unambiguous.
      text += m.key;
      text += '\0';
      text += std::to_string(m.size) + " " + m.etag + "\n";
    }
  }
  plan.fingerprint = Sha256Hex(text);
  return plan;
}

}  // namespace trainfeed
