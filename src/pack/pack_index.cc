#include "pack/pack_index.h"

#include <cstdio>

#include <nlohmann/json.hpp>

namespace trainfeed {

namespace {

using json = nlohmann::json;

Result<uint32_t> ParseCrcHex(const std::string& text) {
  if (text.size() != 8) return InvalidArgumentError("crc32c '" + text + "' is not 8 hex digits");
  uint32_t v = 0;
  for (char c : text) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return InvalidArgumentError("crc32c '" + text + "' is not 8 hex digits");
    v = (v << 4) | static_cast<uint32_t>(d);
  }
  return v;
}

Status CheckVersion(const json& j) {
  if (!j.is_object() || !j.contains("format_version") || !j["format_version"].is_number_integer()) {
    return InvalidArgumentError("not a trainfeed pack index (no format_version)");
  }
  if (j["format_version"].get<int>() != kPackFormatVersion) {
    return InvalidArgumentError("format_version " + j["format_version"].dump() +
                                " is not supported (this trainfeed reads " +
                                std::to_string(kPackFormatVersion) + ")");
  }
  return OkStatus();
}

}  // namespace

std::string Crc32cHex(uint32_t crc) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", crc);
  return buf;
}

std::string ShardIndexToJson(const ShardIndex& index) {
  json members = json::array();
  for (const IndexedMember& m : index.members) {
    members.push_back({{"key", m.key},
                       {"name", m.name},
                       {"size", m.size},
                       {"etag", m.etag},
                       {"offset", m.offset ? json(*m.offset) : json(nullptr)},
                       {"length", m.length},
                       {"entry_offset", m.entry_offset},
                       {"entry_length", m.entry_length},
                       {"crc32c", Crc32cHex(m.crc32c)}});
  }
  json j = {{"format_version", kPackFormatVersion},
            {"plan_fingerprint", index.plan_fingerprint},
            {"format", std::string(PackFormatName(index.format))},
            {"shard", index.shard},
            {"shard_index", index.shard_index},
            {"shard_bytes", index.shard_bytes},
            {"shard_etag", index.shard_etag},
            {"members", std::move(members)}};
  // Keys are arbitrary bytes; invalid UTF-8 is replaced rather than failing the whole pack.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<ShardIndex> ParseShardIndex(std::string_view text, std::string_view what) {
  try {
    json j = json::parse(text);
    TF_RETURN_IF_ERROR(CheckVersion(j).WithContext(what));
    ShardIndex index;
    index.plan_fingerprint = j.at("plan_fingerprint").get<std::string>();
    TF_ASSIGN_OR_RETURN(index.format, ParsePackFormat(j.at("format").get<std::string>()));
    index.shard = j.at("shard").get<std::string>();
    index.shard_index = j.at("shard_index").get<uint64_t>();
    index.shard_bytes = j.at("shard_bytes").get<uint64_t>();
    index.shard_etag = j.at("shard_etag").get<std::string>();
    for (const json& m : j.at("members")) {
      IndexedMember member;
      member.key = m.at("key").get<std::string>();
      member.name = m.at("name").get<std::string>();
      member.size = m.at("size").get<uint64_t>();
      member.etag = m.at("etag").get<std::string>();
      if (!m.at("offset").is_null()) member.offset = m.at("offset").get<uint64_t>();
      member.length = m.at("length").get<uint64_t>();
      member.entry_offset = m.at("entry_offset").get<uint64_t>();
      member.entry_length = m.at("entry_length").get<uint64_t>();
      Result<uint32_t> crc = ParseCrcHex(m.at("crc32c").get<std::string>());
      if (!crc.ok()) return crc.status().WithContext(what);
      member.crc32c = *crc;
      index.members.push_back(std::move(member));
    }
    return index;
  } catch (const json::exception& e) {
    return InvalidArgumentError(std::string(what) + ": not a valid pack index: " + e.what());
  }
}

std::string PackManifestToJson(const PackManifest& manifest) {
  json shards = json::array();
  for (const ManifestShard& s : manifest.shards) {
    shards.push_back({{"name", s.name},
                      {"index", s.index},
                      {"members", s.members},
                      {"bytes", s.bytes},
                      {"etag", s.etag}});
  }
  json j = {{"format_version", kPackFormatVersion},
            {"source", manifest.source},
            {"format", std::string(PackFormatName(manifest.format))},
            {"shard_size", manifest.shard_size},
            {"shuffle_seed", manifest.shuffle_seed ? json(*manifest.shuffle_seed) : json(nullptr)},
            {"plan_fingerprint", manifest.plan_fingerprint},
            {"members", manifest.members},
            {"member_bytes", manifest.member_bytes},
            {"shards", std::move(shards)}};
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<PackManifest> ParsePackManifest(std::string_view text, std::string_view what) {
  try {
    json j = json::parse(text);
    TF_RETURN_IF_ERROR(CheckVersion(j).WithContext(what));
    PackManifest m;
    m.source = j.at("source").get<std::string>();
    TF_ASSIGN_OR_RETURN(m.format, ParsePackFormat(j.at("format").get<std::string>()));
    m.shard_size = j.at("shard_size").get<uint64_t>();
    if (!j.at("shuffle_seed").is_null()) m.shuffle_seed = j.at("shuffle_seed").get<int64_t>();
    m.plan_fingerprint = j.at("plan_fingerprint").get<std::string>();
    m.members = j.at("members").get<uint64_t>();
    m.member_bytes = j.at("member_bytes").get<uint64_t>();
    for (const json& s : j.at("shards")) {
      m.shards.push_back({s.at("name").get<std::string>(), s.at("index").get<std::string>(),
                          s.at("members").get<uint64_t>(), s.at("bytes").get<uint64_t>(),
                          s.at("etag").get<std::string>()});
    }
    return m;
  } catch (const json::exception& e) {
    return InvalidArgumentError(std::string(what) + ": not a valid pack manifest: " + e.what());
  }
}

}  // namespace trainfeed
