#include "pack/packer.h"

#include <deque>
#include <map>
#include <mutex>
#include <optional>

#include <spdlog/spdlog.h>

#include "modes/file/prefix_download.h"
#include "pack/pack_index.h"
#include "pack/parallel.h"
#include "pack/shard_writer.h"
#include "store/whole_object.h"

namespace trainfeed {

namespace {

// Members at most this large are fetched ahead into memory; larger ones stream into the shard.
constexpr uint64_t kSmallMember = 1ull << 20;
// Small members fetched ahead per shard: enough to hide a request's latency behind the writing
// of the ones before it, and what the shards-at-once divisor of `concurrency` is.
constexpr size_t kReadAhead = 8;

class ForwardSink final : public ByteSink {
 public:
  ForwardSink(ShardWriter& writer, std::atomic<uint64_t>& bytes) : writer_(writer), bytes_(bytes) {}
  Status Append(const char* data, size_t size) override {
    bytes_ += size;
    return writer_.Append(data, size);
  }

 private:
  ShardWriter& writer_;
  std::atomic<uint64_t>& bytes_;
};

Result<std::string> GetSmall(ObjectStore& store, const ObjectRef& ref) {
  GetRequest request;
  request.object = ref;
  return GetWholeObject(store, request);
}

// Whether `name` (relative to the destination prefix) is "shard-NNNNNN<rest>"; sets the number.
bool ParseShardNumber(const std::string& name, uint64_t& number, std::string& rest) {
  if (name.size() < 12 || name.compare(0, 6, "shard-") != 0) return false;
  number = 0;
  for (size_t i = 6; i < 12; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    number = number * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  rest = name.substr(12);
  return true;
}

class Packer {
 public:
  Packer(ObjectStore& source_store, const StoreUri& source, ObjectStore& dest_store,
         const StoreUri& destination, const PackOptions& options)
      : src_(source_store),
        source_(source),
        dst_(dest_store),
        destination_(destination),
        prefix_(PackDestinationPrefix(destination)),
        options_(options),
        pool_(options.concurrency) {}

  PackReport Run() {
    auto started = std::chrono::steady_clock::now();
    report_.fatal = RunSteps();
    report_.bytes_read = read_bytes_.load();
    report_.elapsed = std::chrono::steady_clock::now() - started;
    return report_;
  }

 private:
  ObjectRef Dest(const std::string& name) const { return {destination_.bucket, prefix_ + name}; }
  bool Cancelled() const { return options_.cancel != nullptr && options_.cancel->load(); }

  Status RunSteps() {
    if (source_.scheme == destination_.scheme && source_.bucket == destination_.bucket &&
        prefix_.compare(0, source_.key.size(), source_.key) == 0) {
      return InvalidArgumentError("destination " + destination_.ToString() +
                                  " lies inside the source " + source_.ToString() +
                                  ": a rerun would pack the shards too");
    }
    TF_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, ListPrefix(src_, source_));
    TF_ASSIGN_OR_RETURN(plan_, PlanShards(objects, source_.key, options_.plan));
    objects = {};
    report_.shards = plan_.shards.size();
    report_.members = plan_.members;
    report_.member_bytes = plan_.member_bytes;
    report_.fingerprint = plan_.fingerprint;
    if (DownloadProgress* p = options_.progress) {
      p->objects_queued = plan_.members;
      p->bytes_queued = plan_.member_bytes;
      p->listing_done = true;
    }
    TF_RETURN_IF_ERROR(ReadDestination());
    if (Cancelled()) return CancelledError("interrupted");

    std::vector<size_t> todo;
    for (size_t i = 0; i < plan_.shards.size(); ++i) {
      if (done_[i]) {
        ++report_.shards_kept;
        if (DownloadProgress* p = options_.progress) {
          uint64_t bytes = 0;
          for (const PackMember& m : plan_.shards[i].members) bytes += m.size;
          p->objects_done += plan_.shards[i].members.size();
          p->objects_skipped += plan_.shards[i].members.size();
          p->bytes_done += bytes;
          p->bytes_skipped += bytes;
        }
      } else {
        todo.push_back(i);
      }
    }
    report_.writing_started = true;
    int writers = std::max(1, options_.concurrency / static_cast<int>(kReadAhead));
    ParallelFor(todo.size(), writers, [&](size_t t) {
      if (stop_.load()) return;
      size_t i = todo[t];
      Result<ManifestShard> written = WriteShard(plan_.shards[i]);
      std::lock_guard<std::mutex> lock(mu_);
      if (!written.ok()) {
        if (first_error_.ok()) first_error_ = written.status();
        stop_ = true;
        return;
      }
      manifest_shards_[i] = *written;
      ++report_.shards_written;
    });
    if (!first_error_.ok()) return first_error_;
    if (Cancelled()) return CancelledError("interrupted");

    if (options_.force) TF_RETURN_IF_ERROR(RemoveStale());
    PackManifest manifest;
    manifest.source = source_.ToString();
    manifest.format = plan_.options.format;
    manifest.shard_size = plan_.options.shard_size;
    manifest.shuffle_seed = plan_.options.shuffle_seed;
    manifest.plan_fingerprint = plan_.fingerprint;
    manifest.members = plan_.members;
    manifest.member_bytes = plan_.member_bytes;
    for (size_t i = 0; i < plan_.shards.size(); ++i) {
      manifest.shards.push_back(manifest_shards_.at(i));
    }
    Result<std::string> put = dst_.Put(Dest("index.json"), PackManifestToJson(manifest));
    if (!put.ok()) return put.status().WithContext("write the manifest");
    return OkStatus();
  }

  // Learns which shards an earlier run completed, refuses another plan's leftovers (unless
  // force) and aborts the multipart uploads a crashed run left behind.
  Status ReadDestination() {
    done_.assign(plan_.shards.size(), false);
    std::map<std::string, ObjectInfo> listed;  // by name relative to prefix_
    ListRequest request;
    request.bucket = destination_.bucket;
    request.prefix = prefix_ + "shard-";
    do {
      TF_ASSIGN_OR_RETURN(ListPage page, dst_.List(request));
      for (ObjectInfo& o : page.objects) listed[o.key.substr(prefix_.size())] = std::move(o);
      request.continuation_token = page.next_continuation_token;
    } while (!request.continuation_token.empty());

    // The manifest of an earlier complete run.
    std::string stale_example;
    {
      Result<std::string> text = GetSmall(dst_, Dest("index.json"));
      if (text.ok()) {
        Result<PackManifest> m = ParsePackManifest(*text, dst_.Describe(Dest("index.json")));
        if (!m.ok() || m->plan_fingerprint != plan_.fingerprint) {
          stale_example = "index.json" + (m.ok() ? " has plan " + m->plan_fingerprint.substr(0, 12)
                                                 : std::string(" is unreadable"));
        }
      } else if (text.status().code() != ErrorCode::kNotFound) {
        return text.status().WithContext("read " + dst_.Describe(Dest("index.json")));
      }
    }

    std::vector<std::string> index_names, markers;
    for (const auto& [name, info] : listed) {
      uint64_t n = 0;
      std::string rest;
      if (!ParseShardNumber(name, n, rest)) continue;
      if (rest == ".idx.json") index_names.push_back(name);
      if (rest.size() > 7 && rest.compare(rest.size() - 7, 7, ".upload") == 0) {
        markers.push_back(name);
      }
      if (n >= plan_.shards.size()) stale_.push_back(name);
    }

    std::mutex mu;
    Status failed;
    ParallelFor(index_names.size(), options_.concurrency, [&](size_t k) {
      const std::string& name = index_names[k];
      uint64_t n = 0;
      std::string rest;
      ParseShardNumber(name, n, rest);
      Result<std::string> text = GetSmall(dst_, Dest(name));
      std::lock_guard<std::mutex> lock(mu);
      if (!text.ok()) {
        // Deleted since the listing: that shard is simply rewritten.
        if (text.status().code() != ErrorCode::kNotFound && failed.ok()) failed = text.status();
        return;
      }
      Result<ShardIndex> index = ParseShardIndex(*text, dst_.Describe(Dest(name)));
      if (!index.ok() || index->plan_fingerprint != plan_.fingerprint) {
        if (stale_example.empty()) {
          stale_example = name + (index.ok() ? " has plan " + index->plan_fingerprint.substr(0, 12)
                                             : std::string(" is unreadable"));
        }
        return;
      }
      if (n >= plan_.shards.size()) return;
      const PlannedShard& shard = plan_.shards[n];
      auto it = listed.find(shard.name);
      if (index->shard != shard.name || it == listed.end() ||
          it->second.size != index->shard_bytes || it->second.etag != index->shard_etag ||
          index->members.size() != shard.members.size()) {
        return;  // the shard is missing or not the one indexed: rewrite it
      }
      done_[n] = true;
      manifest_shards_[n] = {shard.name, name, index->members.size(), index->shard_bytes,
                             index->shard_etag};
    });
    TF_RETURN_IF_ERROR(failed);

    if (!stale_example.empty() && !options_.force) {
      return PreconditionFailedError(
          destination_.ToString() + " holds shards of another plan (" + stale_example +
          "…, this run's is " + plan_.fingerprint.substr(0, 12) +
          "…): the source objects or --shard-size/--format/--shuffle-seed changed since it was "
          "packed; rerun with --force to rebuild it, or pack into an empty prefix");
    }
    if (!stale_example.empty()) {
      spdlog::warn("{}: rebuilding: it holds shards of another plan ({}…)", destination_.ToString(),
                   stale_example);
      std::fill(done_.begin(), done_.end(), false);
      manifest_shards_.clear();
      // The old manifest must not outlive the shards it describes.
      Status s = dst_.Delete(Dest("index.json"));
      if (!s.ok()) return s.WithContext("remove the old manifest");
    }

    for (const std::string& marker : markers) {
      Result<std::string> upload_id = GetSmall(dst_, Dest(marker));
      if (!upload_id.ok()) continue;  // gone since the listing
      std::string shard_name = marker.substr(0, marker.size() - 7);
      Status s = dst_.AbortMultipartUpload(Dest(shard_name), *upload_id);
      if (s.ok()) ++report_.aborted_uploads;
      if (!s.ok() && s.code() != ErrorCode::kNotFound) {
        spdlog::warn("cannot abort the unfinished upload of {}: {}",
                     dst_.Describe(Dest(shard_name)), s.ToString());
      }
      TF_RETURN_IF_ERROR(dst_.Delete(Dest(marker)).WithContext("remove upload marker"));
    }
    return OkStatus();
  }

  Result<ManifestShard> WriteShard(const PlannedShard& shard) {
    ObjectRef ref = Dest(shard.name);
    ObjectRef marker = Dest(shard.name + ".upload");
    std::string what = dst_.Describe(ref);
    bool marker_written = false;
    ObjectWriter out(dst_, ref, options_.part_size, [&](const std::string& upload_id) {
      Result<std::string> put = dst_.Put(marker, upload_id);
      if (!put.ok()) return put.status().WithContext("record the upload of " + what);
      marker_written = true;
      return OkStatus();
    });
    Result<ManifestShard> result = FillShard(shard, out, what);
    if (!result.ok()) {
      out.Abort();
      if (marker_written) (void)dst_.Delete(marker);
      return result.status().WithContext(what);
    }
    if (marker_written) {
      Status s = dst_.Delete(marker);
      if (!s.ok()) return s.WithContext("remove upload marker of " + what);
    }
    return result;
  }

  Result<ManifestShard> FillShard(const PlannedShard& shard, ObjectWriter& out,
                                  const std::string& what) {
    TF_ASSIGN_OR_RETURN(std::unique_ptr<ShardWriter> writer,
                        ShardWriter::Create(plan_.options.format, out, what));
    ShardIndex index;
    index.plan_fingerprint = plan_.fingerprint;
    index.format = plan_.options.format;
    index.shard = shard.name;
    index.shard_index = shard.index;
    index.members.reserve(shard.members.size());

    const std::vector<PackMember>& members = shard.members;
    std::deque<std::pair<size_t, std::future<Result<std::string>>>> ahead;
    size_t next_fetch = 0;
    for (size_t i = 0; i < members.size(); ++i) {
      if (Cancelled() || stop_.load()) return CancelledError("stopped");
      while (next_fetch < members.size() && next_fetch < i + kReadAhead) {
        const PackMember& m = members[next_fetch];
        if (m.size <= kSmallMember) {
          GetRequest request;
          request.object = {source_.bucket, m.key};
          request.if_match = m.etag;
          ObjectStore* store = &src_;
          ahead.emplace_back(next_fetch, pool_.Submit<Result<std::string>>([store, request] {
            return GetWholeObject(*store, request);
          }));
        }
        ++next_fetch;
      }
      const PackMember& m = members[i];
      TF_RETURN_IF_ERROR(writer->BeginMember(m));
      if (!ahead.empty() && ahead.front().first == i) {
        Result<std::string> body = ahead.front().second.get();
        ahead.pop_front();
        if (!body.ok()) return body.status();
        read_bytes_ += body->size();
        TF_RETURN_IF_ERROR(writer->Append(body->data(), body->size()));
      } else {
        GetRequest request;
        request.object = {source_.bucket, m.key};
        request.if_match = m.etag;
        ForwardSink sink(*writer, read_bytes_);
        TF_ASSIGN_OR_RETURN(GetResult r, src_.Get(request, sink));
        (void)r;
      }
      TF_ASSIGN_OR_RETURN(IndexedMember placed, writer->EndMember());
      index.members.push_back(std::move(placed));
      if (DownloadProgress* p = options_.progress) {
        p->objects_done += 1;
        p->bytes_done += m.size;
        p->bytes_received += m.size;
      }
    }
    TF_RETURN_IF_ERROR(writer->Finish());
    TF_ASSIGN_OR_RETURN(std::string etag, out.Finish());
    index.shard_bytes = out.bytes_written();
    index.shard_etag = etag;
    std::string index_name = ShardIndexName(shard.index);
    // Only now, with the shard complete, does its index appear: an index means a whole shard.
    Result<std::string> put = dst_.Put(Dest(index_name), ShardIndexToJson(index));
    if (!put.ok()) return put.status().WithContext("write " + dst_.Describe(Dest(index_name)));
    {
      std::lock_guard<std::mutex> lock(mu_);
      report_.shard_bytes_written += index.shard_bytes;
      report_.bytes_read = read_bytes_.load();
    }
    return ManifestShard{shard.name, index_name, index.members.size(), index.shard_bytes, etag};
  }

  // Objects of an older, longer plan (numbers past this plan's last shard).
  Status RemoveStale() {
    for (const std::string& name : stale_) {
      Status s = dst_.Delete(Dest(name));
      if (!s.ok()) return s.WithContext("remove stale " + dst_.Describe(Dest(name)));
      ++report_.removed_stale;
    }
    return OkStatus();
  }

  ObjectStore& src_;
  const StoreUri& source_;
  ObjectStore& dst_;
  const StoreUri& destination_;
  const std::string prefix_;
  const PackOptions& options_;
  TaskPool pool_;
  PackPlan plan_;
  std::vector<bool> done_;
  std::vector<std::string> stale_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> read_bytes_{0};
  std::mutex mu_;
  Status first_error_;                               // Guarded by mu_.
  std::map<size_t, ManifestShard> manifest_shards_;  // Guarded by mu_ while shards are written.
  PackReport report_;                                // Guarded by mu_ while shards are written.
};

}  // namespace

std::string PackDestinationPrefix(const StoreUri& destination) {
  std::string prefix = destination.key;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  return prefix;
}

PackReport Pack(ObjectStore& source_store, const StoreUri& source, ObjectStore& dest_store,
                const StoreUri& destination, const PackOptions& options) {
  Packer packer(source_store, source, dest_store, destination, options);
  PackReport report = packer.Run();
  return report;
}

}  // namespace trainfeed
