#include "pack/verify.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "dataset/local_names.h"
#include "dataset/recordio.h"
#include "modes/fastfile/disk_cache.h"  // Crc32c
#include "modes/file/prefix_download.h"
#include "pack/pack_index.h"
#include "pack/pack_plan.h"
#include "pack/packer.h"
#include "pack/parallel.h"
#include "pack/shard_writer.h"
#include "store/whole_object.h"

namespace trainfeed {

namespace {

class CrcSink final : public ByteSink {
 public:
  Status Append(const char* data, size_t size) override {
    crc = Crc32c(crc, data, size);
    bytes += size;
    return OkStatus();
  }
  uint32_t crc = 0;
  uint64_t bytes = 0;
};

class Problems {
 public:
  explicit Problems(VerifyReport& report, size_t max) : report_(report), max_(max) {}
  void Add(std::string line) {
    std::lock_guard<std::mutex> lock(mu_);
    ++report_.problems;
    if (report_.lines.size() < max_) report_.lines.push_back(std::move(line));
  }

 private:
  std::mutex mu_;
  VerifyReport& report_;  // problems and lines Guarded by mu_.
  size_t max_;
};

// Walks one shard's bytes as they stream in and checks each member against the index.
class ShardCheckSink final : public ByteSink {
 public:
  ShardCheckSink(const ShardIndex& index, Problems& problems)
      : index_(index), problems_(problems) {
    order_.resize(index.members.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    std::sort(order_.begin(), order_.end(), [&](size_t a, size_t b) {
      return index.members[a].entry_offset < index.members[b].entry_offset;
    });
    StartMember();
  }

  Status Append(const char* data, size_t size) override {
    uint64_t begin = pos_, end = pos_ + size;
    while (cur_ < order_.size()) {
      const IndexedMember& m = index_.members[order_[cur_]];
      if (m.entry_offset >= end) break;
      uint64_t entry_end = m.entry_offset + m.entry_length;
      Take(data, begin, end, m.entry_offset, m.entry_offset + head_want_, [&](const char* p, size_t n) {
        head_.append(p, n);
      });
      if (m.offset) {
        Take(data, begin, end, *m.offset, *m.offset + m.length, [&](const char* p, size_t n) {
          crc_ = Crc32c(crc_, p, n);
          got_ += n;
        });
      } else {
        Take(data, begin, end, m.entry_offset, entry_end, [&](const char* p, size_t n) {
          entry_.append(p, n);
        });
      }
      if (entry_end > end) break;
      FinishMember(m);
      ++cur_;
      StartMember();
    }
    pos_ = end;
    return OkStatus();
  }

  // After the GET: members the shard ended before.
  void Finish() {
    for (; cur_ < order_.size(); ++cur_) {
      const IndexedMember& m = index_.members[order_[cur_]];
      problems_.Add(index_.shard + ": ends at byte " + std::to_string(pos_) + ", before '" +
                    m.key + "' (entry at " + std::to_string(m.entry_offset) + ")");
    }
  }
  uint64_t bytes() const { return pos_; }

 private:
  template <typename Fn>
  static void Take(const char* data, uint64_t begin, uint64_t end, uint64_t from, uint64_t to,
                   Fn&& fn) {
    uint64_t a = std::max(begin, from), b = std::min(end, to);
    if (a < b) fn(data + (a - begin), static_cast<size_t>(b - a));
  }

  void StartMember() {
    head_.clear();
    entry_.clear();
    crc_ = 0;
    got_ = 0;
    if (cur_ >= order_.size()) return;
    const IndexedMember& m = index_.members[order_[cur_]];
    uint64_t want = index_.format == PackFormat::kTar ? 512 : 12 + m.name.size();
    head_want_ = std::min(want, m.entry_length);
  }

  void FinishMember(const IndexedMember& m) {
    std::string where = index_.shard + ": '" + m.key + "' (entry at " +
                        std::to_string(m.entry_offset) + ")";
    if (index_.format == PackFormat::kTar) {
      if (head_.size() < 263 || head_.compare(257, 5, "ustar") != 0) {
        problems_.Add(where + ": no tar header there");
        return;
      }
    } else {
      std::string expected_head = std::string("\x0a\x23\xd7\xce", 4);
      if (head_.compare(0, 4, expected_head) != 0) {
        problems_.Add(where + ": no RecordIO record there");
        return;
      }
      std::string name_header = ShardWriter::RecordHeader(m.name);
      if (m.offset && head_.compare(8, std::string::npos, name_header) != 0) {
        problems_.Add(where + ": the record does not name '" + m.name + "'");
        return;
      }
    }
    if (!m.offset) {
      // A record split around an aligned magic: decode it whole.
      RecordIOReader reader(entry_);
      Result<std::optional<std::string>> record = reader.Next();
      std::string header = ShardWriter::RecordHeader(m.name);
      if (!record.ok() || !record->has_value() || (*record)->compare(0, header.size(), header) != 0) {
        problems_.Add(where + ": not a RecordIO record naming '" + m.name + "'");
        return;
      }
      const std::string& payload = **record;
      crc_ = Crc32c(0, payload.data() + header.size(), payload.size() - header.size());
      got_ = payload.size() - header.size();
    }
    if (got_ != m.length) {
      problems_.Add(where + ": " + std::to_string(got_) + " bytes, the index says " +
                    std::to_string(m.length));
    } else if (crc_ != m.crc32c) {
      problems_.Add(where + ": CRC-32C " + Crc32cHex(crc_) + ", the index says " +
                    Crc32cHex(m.crc32c));
    }
  }

  const ShardIndex& index_;
  Problems& problems_;
  std::vector<size_t> order_;
  size_t cur_ = 0;
  uint64_t pos_ = 0;
  uint64_t head_want_ = 0;
  std::string head_, entry_;
  uint32_t crc_ = 0;
  uint64_t got_ = 0;
};

Result<std::string> GetText(ObjectStore& store, const ObjectRef& ref) {
  GetRequest request;
  request.object = ref;
  return GetWholeObject(store, request);
}

Status RunVerify(ObjectStore& src, const StoreUri& source, ObjectStore& dst,
                 const StoreUri& destination, const VerifyOptions& options, VerifyReport& report,
                 Problems& problems) {
  std::string prefix = PackDestinationPrefix(destination);
  auto dest = [&](const std::string& name) { return ObjectRef{destination.bucket, prefix + name}; };
  auto cancelled = [&] { return options.cancel != nullptr && options.cancel->load(); };

  Result<std::string> manifest_text = GetText(dst, dest("index.json"));
  if (!manifest_text.ok()) {
    if (manifest_text.status().code() == ErrorCode::kNotFound) {
      return NotFoundError(dst.Describe(dest("index.json")) +
                           " does not exist: the pack is incomplete (run pack again first)");
    }
    return manifest_text.status();
  }
  TF_ASSIGN_OR_RETURN(PackManifest manifest,
                      ParsePackManifest(*manifest_text, dst.Describe(dest("index.json"))));
  if (manifest.source != source.ToString()) {
    problems.Add("index.json: packed from " + manifest.source + ", not " + source.ToString());
  }

  TF_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, ListPrefix(src, source));
  PackPlanOptions plan_options{manifest.shard_size, manifest.format, manifest.shuffle_seed};
  Result<PackPlan> plan = PlanShards(objects, source.key, plan_options);
  if (!plan.ok()) {
    problems.Add("cannot plan the source again: " + plan.status().ToString());
  } else if (plan->fingerprint != manifest.plan_fingerprint) {
    problems.Add(source.ToString() + " changed since it was packed (plan " +
                 plan->fingerprint.substr(0, 12) + "…, index.json has " +
                 manifest.plan_fingerprint.substr(0, 12) + "…)");
  }

  // Shards: each streamed once through the checker.
  std::vector<ShardIndex> indexes(manifest.shards.size());
  std::mutex mu;
  int readers = std::max(1, options.concurrency / 8);
  ParallelFor(manifest.shards.size(), readers, [&](size_t i) {
    if (cancelled()) return;
    const ManifestShard& ms = manifest.shards[i];
    Result<std::string> text = GetText(dst, dest(ms.index));
    if (!text.ok()) {
      problems.Add(ms.index + ": " + text.status().ToString());
      return;
    }
    Result<ShardIndex> index = ParseShardIndex(*text, dst.Describe(dest(ms.index)));
    if (!index.ok()) {
      problems.Add(index.status().ToString());
      return;
    }
    if (index->plan_fingerprint != manifest.plan_fingerprint || index->shard != ms.name ||
        index->members.size() != ms.members) {
      problems.Add(ms.index + ": does not belong to index.json (another plan or shard)");
    }
    ShardCheckSink sink(*index, problems);
    GetRequest request;
    request.object = dest(ms.name);
    Result<GetResult> got = dst.Get(request, sink);
    if (!got.ok()) {
      problems.Add(ms.name + ": " + got.status().ToString());
      return;
    }
    sink.Finish();
    if (sink.bytes() != index->shard_bytes) {
      problems.Add(ms.name + ": " + std::to_string(sink.bytes()) + " bytes, the index says " +
                   std::to_string(index->shard_bytes));
    }
    if (got->etag != index->shard_etag) {
      problems.Add(ms.name + ": ETag " + got->etag + " is not the packed shard's (" +
                   index->shard_etag + "): it was replaced after packing");
    }
    std::lock_guard<std::mutex> lock(mu);
    report.shards += 1;
    report.shard_bytes += sink.bytes();
    indexes[i] = std::move(*index);
  });
  if (cancelled()) return CancelledError("interrupted");

  // Every source object in exactly one shard.
  std::vector<const IndexedMember*> members;
  std::unordered_map<std::string, std::string> shard_of;
  for (const ShardIndex& index : indexes) {
    for (const IndexedMember& m : index.members) {
      auto [it, inserted] = shard_of.emplace(m.key, index.shard);
      if (!inserted) {
        problems.Add("'" + m.key + "' is packed twice: in " + it->second + " and " + index.shard);
      } else {
        members.push_back(&m);
      }
    }
  }
  for (const ObjectInfo& o : objects) {
    if (!IsFolderMarker(o.key) && shard_of.find(o.key) == shard_of.end()) {
      problems.Add(src.Describe({source.bucket, o.key}) + ": in the source but in no shard");
    }
  }
  report.members = members.size();

  // Every member against a fresh read of its source object.
  std::atomic<uint64_t> source_bytes{0};
  ParallelFor(members.size(), options.concurrency, [&](size_t i) {
    if (cancelled()) return;
    const IndexedMember& m = *members[i];
    ObjectRef ref{source.bucket, m.key};
    CrcSink sink;
    GetRequest request;
    request.object = ref;
    Result<GetResult> got = src.Get(request, sink);
    source_bytes += sink.bytes;
    if (!got.ok()) {
      if (got.status().code() == ErrorCode::kNotFound) {
        problems.Add(src.Describe(ref) + ": no longer exists");
      } else {
        problems.Add(got.status().ToString());
      }
      return;
    }
    if (sink.bytes != m.size) {
      problems.Add(src.Describe(ref) + ": " + std::to_string(sink.bytes) +
                   " bytes, the packed copy has " + std::to_string(m.size));
    } else if (sink.crc != m.crc32c) {
      problems.Add(src.Describe(ref) + ": CRC-32C " + Crc32cHex(sink.crc) +
                   " differs from the packed copy's " + Crc32cHex(m.crc32c));
    }
  });
  report.source_bytes = source_bytes.load();
  if (cancelled()) return CancelledError("interrupted");
  return OkStatus();
}

}  // namespace

VerifyReport VerifyPack(ObjectStore& source_store, const StoreUri& source, ObjectStore& dest_store,
                        const StoreUri& destination, const VerifyOptions& options) {
  auto started = std::chrono::steady_clock::now();
  VerifyReport report;
  Problems problems(report, options.max_reported);
  report.fatal = RunVerify(source_store, source, dest_store, destination, options, report, problems);
  report.elapsed = std::chrono::steady_clock::now() - started;
  return report;
}

}  // namespace trainfeed
