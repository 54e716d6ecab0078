#include "job/channels.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include "dataset/local_names.h"
#include "dataset/manifest.h"
#include "dataset/sharding.h"
#include "store/whole_object.h"

namespace trainfeed {

namespace {

// Manifests are read whole; a billion-entry manifest is not a training channel.
constexpr uint64_t kMaxManifestBytes = 1ull << 30;

HostShard ShardOf(const S3DataSourceSpec& s3, const HostIdentity& hosts) {
  return HostShard{hosts.index(), hosts.hosts.size(), s3.distribution == "ShardedByS3Key"};
}

// Turns a finished download into the channel's result: every object must have arrived.
Result<ChannelReport> Conclude(const std::string& channel, const DownloadReport& r,
                               ChannelReport report) {
  std::string where = "channel '" + channel + "'";
  if (!r.fatal.ok()) return r.fatal.WithContext(where);
  if (r.failed_objects > 0) {
    std::string msg = std::to_string(r.failed_objects) + " object(s) failed";
    for (size_t i = 0; i < r.failures.size() && i < 5; ++i) {
      msg += "\n  " + r.failures[i].key + ": " + r.failures[i].status.ToString();
    }
    return Status(r.failures.empty() ? ErrorCode::kInternal : r.failures[0].status.code(), msg)
        .WithContext(where);
  }
  report.objects = r.objects;
  report.bytes = r.bytes;
  report.skipped_objects = r.skipped_objects;
  report.seconds = r.elapsed.count();
  return report;
}

Result<std::unique_ptr<ObjectStore>> OpenFor(const StoreUri& uri, const StoreOpenOptions& o) {
  return OpenObjectStore(uri, o);
}

// Downloads items that may live in different buckets (augmented manifests can point anywhere):
// one download per bucket, in order of first appearance.
Result<ChannelReport> DownloadGrouped(const std::string& channel,
                                      std::vector<std::pair<StoreUri, DownloadItem>> items,
                                      const std::string& dir, const StoreOpenOptions& store_options,
                                      const FileModeOptions& options) {
  std::vector<std::pair<StoreUri, std::vector<DownloadItem>>> groups;
  std::map<std::string, size_t> index;
  for (auto& [uri, item] : items) {
    std::string id = uri.scheme == StoreUri::Scheme::kS3 ? "s3:" + uri.bucket : "file:";
    auto [it, added] = index.emplace(id, groups.size());
    if (added) groups.push_back({uri, {}});
    groups[it->second].second.push_back(std::move(item));
  }
  ChannelReport total{channel};
  for (auto& [uri, group] : groups) {
    TF_ASSIGN_OR_RETURN(std::unique_ptr<ObjectStore> store, OpenFor(uri, store_options));
    DownloadReport r = DownloadItems(*store, std::move(group), dir, options);
    TF_ASSIGN_OR_RETURN(ChannelReport part, Conclude(channel, r, {channel}));
    total.objects += part.objects;
    total.bytes += part.bytes;
    total.skipped_objects += part.skipped_objects;
    total.seconds += part.seconds;
  }
  return total;
}

ObjectInfo UnknownObject(const std::string& key) {
  ObjectInfo info;
  info.key = key;
  info.size = kUnknownSize;
  return info;
}

}  // namespace

Result<std::string> ReadSmallObject(ObjectStore& store, const StoreUri& uri, uint64_t max_bytes) {
  Result<std::string> text = GetWholeObject(store, {uri.ref(), std::nullopt, ""}, max_bytes);
  if (!text.ok()) return text.status().WithContext("read " + uri.ToString());
  return text;
}

Result<ChannelReport> DownloadFileChannel(const ChannelSpec& channel, const std::string& dir,
                                          const HostIdentity& hosts,
                                          const StoreOpenOptions& store_options,
                                          const FileModeOptions& options) {
  const S3DataSourceSpec& s3 = *channel.s3;
  std::string where = "channel '" + channel.name + "'";
  TF_ASSIGN_OR_RETURN(StoreUri uri, ParseStoreUri(s3.s3_uri));
  TF_ASSIGN_OR_RETURN(std::unique_ptr<ObjectStore> store, OpenFor(uri, store_options));
  HostShard shard = ShardOf(s3, hosts);

  if (s3.s3_data_type == "S3Prefix") {
    if (!shard.sharded && !channel.shuffle_seed) {
      // Everything, in listing order: stream the listing straight into the downloader.
      return Conclude(channel.name, DownloadPrefix(*store, uri, dir, options), {channel.name});
    }
    Result<std::vector<ObjectInfo>> listed = ListPrefix(*store, uri);
    if (!listed.ok()) return listed.status().WithContext(where);
    std::vector<DownloadItem> items;
    for (uint64_t i : ItemsForHost(listed->size(), channel.shuffle_seed, 0, shard)) {
      ObjectInfo& info = (*listed)[i];
      TF_ASSIGN_OR_RETURN(std::string local, LocalNameForPrefixKey(uri.key, info.key));
      items.push_back({{uri.bucket, info.key}, std::move(info), std::move(local)});
    }
    if (items.empty()) {
      return NotFoundError(where + ": this host (" + hosts.current_host + ") gets none of the " +
                           std::to_string(listed->size()) + " objects: more hosts than objects");
    }
    return Conclude(channel.name, DownloadItems(*store, std::move(items), dir, options),
                    {channel.name});
  }

  TF_ASSIGN_OR_RETURN(std::string text, ReadSmallObject(*store, uri, kMaxManifestBytes));
  std::vector<std::pair<StoreUri, DownloadItem>> items;
  if (s3.s3_data_type == "ManifestFile") {
    TF_ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(text, uri.ToString()));
    if (manifest.keys.empty()) return NotFoundError(where + ": the manifest lists no objects");
    for (uint64_t i : ItemsForHost(manifest.keys.size(), channel.shuffle_seed, 0, shard)) {
      const std::string& key = manifest.keys[i];
      // Contract §10: File mode keeps a manifest entry's full key (bucket omitted).
      TF_ASSIGN_OR_RETURN(std::string local, LocalNameForManifestKey(key));
      items.push_back({manifest.prefix, {{manifest.prefix.bucket, key}, UnknownObject(key), local}});
    }
  } else {  // AugmentedManifestFile: the -ref objects at their full keys, plus this host's lines
    AugmentedManifestReader reader(s3.attribute_names, uri.ToString());
    std::vector<std::string> lines;
    std::vector<AugmentedRecord> records;
    size_t start = 0;
    for (uint64_t line_number = 1; start < text.size(); ++line_number) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + start, end - start);
      start = end + 1;
      TF_ASSIGN_OR_RETURN(std::optional<AugmentedRecord> record, reader.Next(line, line_number));
      if (!record) continue;
      lines.emplace_back(line);
      records.push_back(std::move(*record));
    }
    if (records.empty()) return NotFoundError(where + ": the augmented manifest has no lines");
    std::string mine;
    for (uint64_t i : ItemsForHost(records.size(), channel.shuffle_seed, 0, shard)) {
      mine += lines[i] + "\n";
      for (const AugmentedAttribute& a : records[i].attributes) {
        if (!a.is_ref) continue;
        TF_ASSIGN_OR_RETURN(StoreUri ref, ParseStoreUri(a.value));
        TF_ASSIGN_OR_RETURN(std::string local, LocalNameForManifestKey(ref.key));
        items.push_back({ref, {ref.ref(), UnknownObject(ref.key), local}});
      }
    }
    // The lines themselves (this host's, in order) sit beside the data as the manifest's name.
    size_t slash = uri.key.rfind('/');
    std::string name = slash == std::string::npos ? uri.key : uri.key.substr(slash + 1);
    TF_ASSIGN_OR_RETURN(std::string safe, CheckSafeRelativePath(name, uri.key));
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::string tmp = dir + "/." + safe + ".tfpart";
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f || std::fwrite(mine.data(), 1, mine.size(), f) != mine.size() || std::fclose(f) != 0) {
      return ErrnoToStatus(errno, "write " + tmp);
    }
    if (std::rename(tmp.c_str(), (dir + "/" + safe).c_str()) != 0) {
      return ErrnoToStatus(errno, "rename " + tmp);
    }
  }
  return DownloadGrouped(channel.name, std::move(items), dir, store_options, options);
}

}  // namespace trainfeed
