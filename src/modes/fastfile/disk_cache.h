// DiskCache: a block cache on local disk shared by all readers of a FastFile mount (--cache DIR
// --cache-size N), so that a second pass over the data reads local files instead of the store.
//
// Design.
//  - Objects are cut into fixed-size blocks (block_size, 1 MiB by default; the last block of an
//    object is shorter). A block is keyed by (bucket, key, ETag, block size, block index): an
//    object that changed has a new ETag, so its old blocks are never served, they just age out.
//  - Each block is one file, DIR/ab/cd/abcd...(32 hex digits).blk, named by a 128-bit hash of the
//    key (two levels of 256 folders keep every folder small). The file holds a header (magic,
//    block size, index, length, bucket, key and ETag) and the bytes, and a CRC-32C over both. A
//    read checks all of it: a truncated, corrupted or foreign file (a hash collision, another
//    block size) is a miss, never served, and is deleted.
//  - A block is written to a unique temporary name in its folder and renamed into place, so a
//    reader sees the old file, the new one or none, never half of one; a crash leaves at most a
//    temporary file, which the next start removes. Nothing is fsynced: after a power loss the
//    checksum rejects whatever the file system kept of a block.
//  - The total size of the block files (headers included) stays within max_bytes: the least
//    recently used blocks are deleted first. The in-memory index (hash -> size, LRU position) is
//    rebuilt at start by scanning DIR, oldest modification time first, so a new mount keeps what
//    the last one cached (reads are verified anyway); files whose name is not ours are left alone
//    and not counted.
//  - One process uses a DIR at a time: Open takes an exclusive flock on DIR/.trainfeed-cache.lock,
//    since two indexes over one folder would each believe the other's blocks are free space.
//  - Writes are bounded: BeginWrite admits a block only while the bytes waiting to be written stay
//    within write_backlog_bytes, so a slow disk makes the cache skip blocks instead of holding
//    fetched memory (or readers) hostage.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"

namespace trainfeed {

// CRC-32C (Castagnoli, as iSCSI and ext4 use it): Crc32c(0, "123456789", 9) is 0xe3069283. Pass
// the previous result as `crc` to continue over more bytes. In hardware where the CPU has it.
uint32_t Crc32c(uint32_t crc, const void* data, size_t size);
// The same with lookup tables only; for tests and CPUs without the instruction.
uint32_t Crc32cSoftware(uint32_t crc, const void* data, size_t size);

struct DiskCacheOptions {
  std::string dir;                            // created if missing
  uint64_t max_bytes = 10ull << 30;           // total size of the block files
  uint64_t block_size = 1ull << 20;           // bytes per block (the last one may be shorter)
  uint64_t write_backlog_bytes = 64ull << 20;  // admitted but not yet written
};

// One version of one object.
struct CachedObject {
  std::string bucket;
  std::string key;
  std::string etag;  // never empty: without an ETag nothing identifies the version
};

class DiskCache {
 public:
  // Creates `dir` if needed, locks it, removes leftover temporary files and indexes the blocks
  // already there (evicting down to max_bytes). Errors: the folder cannot be created or read, or
  // another process holds it (kAlreadyExists).
  static Result<std::unique_ptr<DiskCache>> Open(const DiskCacheOptions& options);
  ~DiskCache();
  DiskCache(const DiskCache&) = delete;
  DiskCache& operator=(const DiskCache&) = delete;

  uint64_t block_size() const { return options_.block_size; }
  // Whether the index lists the block: no I/O (a listed file may still fail to read).
  bool Contains(const CachedObject& object, uint64_t index) const;
  // Reads block `index`, which must be exactly `length` bytes, into `out`. True only for a
  // verified block; `out` may hold garbage otherwise. A file that fails the checks is deleted.
  bool Read(const CachedObject& object, uint64_t index, char* out, uint64_t length);

  // Writing is two steps so the caller can queue the work: BeginWrite admits the block (false
  // when it is cached, being written, or the backlog is full), then exactly one Write or
  // AbandonWrite with the same arguments follows. Write returns whether the block was stored;
  // failures (disk full, permissions) are logged once and leave the cache as it was.
  bool BeginWrite(const CachedObject& object, uint64_t index, uint64_t length);
  bool Write(const CachedObject& object, uint64_t index, const char* data, uint64_t length);
  void AbandonWrite(const CachedObject& object, uint64_t index, uint64_t length);

  uint64_t used_bytes() const;     // size of the indexed block files
  uint64_t block_count() const;    // indexed block files
  uint64_t max_bytes() const { return options_.max_bytes; }
  uint64_t evictions() const { return evictions_.load(); }
  uint64_t rejected() const { return rejected_.load(); }  // files that failed verification

  // The file that holds (or would hold) block `index` of `object`; for tests.
  std::string PathFor(const CachedObject& object, uint64_t index) const;

 private:
  struct Hash128 {
    uint64_t hi = 0, lo = 0;
    bool operator==(const Hash128&) const = default;
  };
  struct Hash128Hasher {
    size_t operator()(const Hash128& h) const { return static_cast<size_t>(h.lo); }
  };
  struct Entry {
    uint64_t bytes = 0;
    std::list<Hash128>::iterator lru;  // position in lru_
  };

  explicit DiskCache(DiskCacheOptions options, int lock_fd);
  Hash128 HashOf(const CachedObject& object, uint64_t index) const;
  std::string PathOf(const Hash128& h) const;
  Status Scan();
  // Records a file of `bytes` bytes under `h` as the most recently used one; returns the paths
  // evicted to stay within max_bytes (to delete outside the lock). mu_ held.
  void InsertLocked(const Hash128& h, uint64_t bytes, std::vector<Hash128>* evicted);
  void EraseLocked(const Hash128& h);
  void Forget(const Hash128& h, bool remove_file);
  void RemoveFiles(const std::vector<Hash128>& hashes);
  void LogWriteFailure(const std::string& what, int err);

  const DiskCacheOptions options_;
  const int lock_fd_;
  mutable std::mutex mu_;
  std::unordered_map<Hash128, Entry, Hash128Hasher> index_;  // Guarded by mu_.
  std::list<Hash128> lru_;                                    // Guarded by mu_. Newest first.
  std::unordered_set<Hash128, Hash128Hasher> writing_;        // Guarded by mu_.
  uint64_t used_ = 0;                                         // Guarded by mu_.
  uint64_t backlog_ = 0;                                      // Guarded by mu_.
  std::atomic<uint64_t> evictions_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> temp_counter_{0};
  std::atomic<bool> write_failure_logged_{false};
};

}  // namespace trainfeed
