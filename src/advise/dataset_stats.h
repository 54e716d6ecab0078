// advise, part 1: what a dataset looks like, from its listing alone, in constant memory.
//
// `trainfeed advise` lists a prefix once (page by page, as File mode does) and folds every key
// into a DatasetStatsBuilder: counts and totals, a size histogram of 1/8-octave buckets (the
// percentiles come from it, not from a list of every size, so a listing of millions of keys costs
// a few KiB), the smallest and largest object, the share of small files, and the shape of the
// folder tree (widest folder, deepest nesting). It also keeps a few keys for the throughput probe:
// a uniform sample of small objects and the largest objects.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "store/object_store.h"
#include "store/store_uri.h"

namespace trainfeed {

// AWS's line between small and large files: FastFile streams files above 50 MB well; smaller
// ones are better serialised into larger containers. Decimal MB, as in AWS's guidance.
inline constexpr uint64_t kSmallFileBytes = 50'000'000;

// Counts of object sizes in buckets 2^(i/8) wide. A percentile is read as the geometric middle of
// the bucket that holds it (clamped to the smallest and largest size seen), so it is within
// 2^(1/16) - 1 = 4.4% of the true order statistic; a bucket is 9% wide. Fixed size: 8 KiB.
class SizeHistogram {
 public:
  static constexpr int kSubBuckets = 8;  // per octave
  // Relative error bound of Quantile() for sizes above a few bytes (below, it is exact).
  static constexpr double kRelativeError = 0.0443;  // 2^(1/16) - 1, rounded up

  void Add(uint64_t size);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  // Estimate of the nearest-rank q-quantile, q in [0, 1]: the size of the ceil(q * count)-th
  // smallest object. 0 when empty.
  uint64_t Quantile(double q) const;

  // One row of the terminal histogram: objects of size in [from, to) (from = to = 0 for empty
  // objects), and their bytes.
  struct Octave {
    uint64_t from = 0, to = 0;
    uint64_t objects = 0, bytes = 0;
  };
  // Whole octaves [2^k, 2^(k+1)) from the smallest to the largest non-empty one, empty objects
  // first; octaves in between with no object are included, so the bars line up.
  std::vector<Octave> Octaves() const;

  // Bucket of a size: 0 for 0, else 1 + floor(8 * log2(size)).
  static int BucketOf(uint64_t size);

 private:
  static constexpr int kBuckets = 1 + 64 * kSubBuckets;
  std::array<uint64_t, kBuckets> counts_{};
  std::array<uint64_t, kBuckets> bytes_{};
  uint64_t count_ = 0;
  uint64_t min_ = ~uint64_t{0};
  uint64_t max_ = 0;
};

struct KeyAndSize {
  std::string key;
  uint64_t size = 0;
};

struct DatasetStats {
  std::string uri;  // as listed, canonical form
  uint64_t objects = 0;
  uint64_t bytes = 0;
  // Objects smaller than kSmallFileBytes, and their bytes.
  uint64_t small_objects = 0;
  uint64_t small_bytes = 0;
  KeyAndSize smallest, largest;  // first in listing order on ties
  SizeHistogram sizes;
  // The folder with the most direct entries (files and sub-folders), relative to the bucket or
  // root, ending in '/'; its entry count; and the most folders any key sits below the prefix's
  // folder (0: every key is directly in it).
  std::string widest_folder;
  uint64_t widest_folder_entries = 0;
  int max_depth = 0;
  // True when the URI's key ends in '/' or is empty, or every key lies below key + "/": then the
  // prefix names a folder and FastFile can mount it (with the '/' added).
  bool folder_prefix = true;
  double listing_seconds = 0;
  // Kept for the probe: up to kProbeSmallSample small objects, uniformly sampled, and the
  // kProbeLargest largest objects (largest first).
  std::vector<KeyAndSize> small_sample;
  std::vector<KeyAndSize> largest_objects;

  double small_share_by_count() const {
    return objects ? static_cast<double>(small_objects) / static_cast<double>(objects) : 0;
  }
  double small_share_by_bytes() const {
    return bytes ? static_cast<double>(small_bytes) / static_cast<double>(bytes) : 0;
  }
};

// Folds a listing into DatasetStats. Keys must arrive in listing order (ascending bytes), which
// is what makes the folder walk constant-memory: a folder's keys are contiguous. Not thread-safe.
class DatasetStatsBuilder {
 public:
  static constexpr size_t kProbeSmallSample = 64;
  static constexpr size_t kProbeLargest = 32;

  // `prefix` is the URI's key; folders are counted below its last '/'.
  explicit DatasetStatsBuilder(std::string prefix);
  // Folder markers (keys ending in '/') are not objects and are skipped, as File mode does.
  void Add(const ObjectInfo& object);
  // Call once, after the last Add().
  DatasetStats Finish();

 private:
  struct OpenFolder {
    std::string name;        // one path component
    std::string last_entry;  // the last direct entry counted ("name" or "name/" for a folder)
    uint64_t entries = 0;
  };
  void AddToTree(std::string_view relative_key);
  void CloseFolder();

  std::string prefix_;
  std::string base_;  // prefix_ up to and including its last '/'
  DatasetStats stats_;
  std::vector<OpenFolder> open_;  // root (the base folder) first
  std::vector<std::string_view> parts_;
  std::mt19937_64 rng_{0x5eed};  // fixed: the same listing samples the same keys
  uint64_t small_seen_ = 0;
};

// Lists every object under `uri` page by page into DatasetStats. NotFound when the bucket does not
// exist or the prefix matches no object; Cancelled when `cancel` turns true between pages.
Result<DatasetStats> CollectDatasetStats(ObjectStore& store, const StoreUri& uri,
                                         const std::atomic<bool>* cancel = nullptr);

}  // namespace trainfeed
