#include "advise/dataset_stats.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>

#include "dataset/local_names.h"

namespace trainfeed {

int SizeHistogram::BucketOf(uint64_t size) {
  if (size == 0) return 0;
  int octave = std::bit_width(size) - 1;
  double mantissa = static_cast<double>(size) / std::ldexp(1.0, octave);  // in [1, 2)
  int sub = static_cast<int>(std::floor(kSubBuckets * std::log2(mantissa)));
  return 1 + octave * kSubBuckets + std::clamp(sub, 0, kSubBuckets - 1);
}

void SizeHistogram::Add(uint64_t size) {
  int b = BucketOf(size);
  ++counts_[b];
  bytes_[b] += size;
  ++count_;
  min_ = std::min(min_, size);
  max_ = std::max(max_, size);
}

uint64_t SizeHistogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += counts_[b];
    if (seen < rank) continue;
    if (b == 0) return 0;
    // Geometric middle of [2^((b-1)/8), 2^(b/8)).
    double middle = std::exp2((b - 0.5) / kSubBuckets);
    uint64_t estimate = middle >= 1.8e19 ? max_ : static_cast<uint64_t>(std::llround(middle));
    return std::clamp(estimate, min_, max_);
  }
  return max_;
}

std::vector<SizeHistogram::Octave> SizeHistogram::Octaves() const {
  std::vector<Octave> rows;
  if (counts_[0] > 0) rows.push_back({0, 0, counts_[0], 0});
  int first = -1, last = -1;
  for (int b = 1; b < kBuckets; ++b) {
    if (counts_[b] == 0) continue;
    int octave = (b - 1) / kSubBuckets;
    if (first < 0) first = octave;
    last = octave;
  }
  for (int k = first; first >= 0 && k <= last; ++k) {
    Octave row;
    row.from = uint64_t{1} << k;
    row.to = k == 63 ? ~uint64_t{0} : uint64_t{1} << (k + 1);
    for (int s = 0; s < kSubBuckets; ++s) {
      row.objects += counts_[1 + k * kSubBuckets + s];
      row.bytes += bytes_[1 + k * kSubBuckets + s];
    }
    rows.push_back(row);
  }
  return rows;
}

DatasetStatsBuilder::DatasetStatsBuilder(std::string prefix) : prefix_(std::move(prefix)) {
  size_t slash = prefix_.rfind('/');
  base_ = slash == std::string::npos ? "" : prefix_.substr(0, slash + 1);
  open_.push_back({});
}

void DatasetStatsBuilder::Add(const ObjectInfo& object) {
  if (IsFolderMarker(object.key)) return;
  DatasetStats& s = stats_;
  ++s.objects;
  s.bytes += object.size;
  s.sizes.Add(object.size);
  if (s.objects == 1 || object.size < s.smallest.size) s.smallest = {object.key, object.size};
  if (s.objects == 1 || object.size > s.largest.size) s.largest = {object.key, object.size};

  if (object.size < kSmallFileBytes) {
    ++s.small_objects;
    s.small_bytes += object.size;
    // Reservoir sampling (Algorithm R): every small object is equally likely to be probed.
    ++small_seen_;
    if (s.small_sample.size() < kProbeSmallSample) {
      s.small_sample.push_back({object.key, object.size});
    } else if (uint64_t j = rng_() % small_seen_; j < kProbeSmallSample) {
      s.small_sample[j] = {object.key, object.size};
    }
  }
  // A min-heap of the largest objects: its front is the smallest of them.
  auto larger = [](const KeyAndSize& a, const KeyAndSize& b) { return a.size > b.size; };
  auto& top = s.largest_objects;
  if (top.size() < kProbeLargest) {
    top.push_back({object.key, object.size});
    std::push_heap(top.begin(), top.end(), larger);
  } else if (object.size > top.front().size) {
    std::pop_heap(top.begin(), top.end(), larger);
    top.back() = {object.key, object.size};
    std::push_heap(top.begin(), top.end(), larger);
  }

  if (!prefix_.empty() && prefix_.back() != '/' &&
      !(object.key.size() > prefix_.size() && object.key.compare(0, prefix_.size(), prefix_) == 0 &&
        object.key[prefix_.size()] == '/')) {
    s.folder_prefix = false;
  }
  // Keys of a raw prefix all begin with it, hence with base_; a store that broke that rule would
  // only skew the folder counts.
  std::string_view key = object.key;
  if (key.compare(0, base_.size(), base_) == 0) AddToTree(key.substr(base_.size()));
}

void DatasetStatsBuilder::AddToTree(std::string_view relative_key) {
  parts_.clear();
  size_t start = 0;
  while (true) {
    size_t slash = relative_key.find('/', start);
    if (slash == std::string_view::npos) break;
    parts_.push_back(relative_key.substr(start, slash - start));
    start = slash + 1;
  }
  const size_t folders = parts_.size();
  parts_.push_back(relative_key.substr(start));
  stats_.max_depth = std::max(stats_.max_depth, static_cast<int>(folders));

  // Keep the open folders this key shares; close the rest (their keys are all behind us).
  size_t shared = 0;
  while (shared < folders && shared + 1 < open_.size() && open_[shared + 1].name == parts_[shared]) {
    ++shared;
  }
  while (open_.size() > shared + 1) CloseFolder();
  for (size_t i = shared; i < folders; ++i) {
    // A name that is both a file and a folder (FastFile shows the folder) counts twice here.
    std::string entry = std::string(parts_[i]) + "/";
    OpenFolder& parent = open_.back();
    if (parent.last_entry != entry) {
      ++parent.entries;
      parent.last_entry = std::move(entry);
    }
    open_.push_back({std::string(parts_[i]), "", 0});
  }
  ++open_.back().entries;
  open_.back().last_entry = std::string(parts_.back());
}

void DatasetStatsBuilder::CloseFolder() {
  if (open_.back().entries > stats_.widest_folder_entries) {
    std::string path = base_;
    for (size_t i = 1; i < open_.size(); ++i) path += open_[i].name + "/";
    stats_.widest_folder = std::move(path);
    stats_.widest_folder_entries = open_.back().entries;
  }
  open_.pop_back();
}

DatasetStats DatasetStatsBuilder::Finish() {
  while (!open_.empty()) CloseFolder();
  std::sort(stats_.largest_objects.begin(), stats_.largest_objects.end(),
            [](const KeyAndSize& a, const KeyAndSize& b) { return a.size > b.size; });
  return std::move(stats_);
}

Result<DatasetStats> CollectDatasetStats(ObjectStore& store, const StoreUri& uri,
                                         const std::atomic<bool>* cancel) {
  auto started = std::chrono::steady_clock::now();
  DatasetStatsBuilder builder(uri.key);
  ListRequest request;
  request.bucket = uri.bucket;
  request.prefix = uri.key;
  do {
    if (cancel && cancel->load()) return CancelledError("interrupted while listing");
    TF_ASSIGN_OR_RETURN(ListPage page, store.List(request));
    for (const ObjectInfo& info : page.objects) builder.Add(info);
    request.continuation_token = page.next_continuation_token;
  } while (!request.continuation_token.empty());
  DatasetStats stats = builder.Finish();
  if (stats.objects == 0) {
    return NotFoundError("no objects match " + uri.ToString() +
                         " (an empty dataset: check the prefix)");
  }
  stats.uri = uri.ToString();
  stats.listing_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace trainfeed
