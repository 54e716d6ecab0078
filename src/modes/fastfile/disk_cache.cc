#include "modes/fastfile/disk_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

namespace trainfeed {

namespace {

// ---- CRC-32C ----
//
// Castagnoli's polynomial, because x86-64 computes it in hardware (SSE 4.2): checking a cached
// 1 MiB block then costs a fraction of reading it, where a table-driven CRC (zlib's polynomial
// included) runs at about 1 GiB/s and made the checksum the bottleneck of a pass served from the
// cache. Other CPUs use the slice-by-8 tables.

using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

constexpr CrcTables MakeCrcTables() {
  CrcTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
    t[0][i] = c;
  }
  for (int s = 1; s < 8; ++s) {
    for (uint32_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
  return t;
}

constexpr CrcTables kCrc = MakeCrcTables();

// ---- Block file header ----
//
// Little-endian: magic[8] block_size u64, index u64, length u64, bucket_len u32, key_len u32,
// etag_len u32, crc u32; then the bucket, key and ETag bytes; then the block's bytes. The CRC-32
// (C) covers the header (with the crc field zero) and the bytes.
constexpr char kMagic[8] = {'T', 'F', 'C', 'A', 'C', 'H', 'E', '1'};
constexpr size_t kFixedHeader = 48;
constexpr size_t kCrcOffset = 44;
constexpr char kSuffix[] = ".blk";
constexpr char kTempMark[] = ".blk.tmp";
constexpr char kLockName[] = ".trainfeed-cache.lock";

void PutLe(std::string& out, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// The header of block `index` of `object` holding `length` bytes, with a zero crc field.
std::string Header(const DiskCacheOptions& options, const CachedObject& object, uint64_t index,
                   uint64_t length) {
  std::string h(kFixedHeader, '\0');
  std::memcpy(h.data(), kMagic, sizeof(kMagic));
  PutLe(h, 8, options.block_size, 8);
  PutLe(h, 16, index, 8);
  PutLe(h, 24, length, 8);
  PutLe(h, 32, object.bucket.size(), 4);
  PutLe(h, 36, object.key.size(), 4);
  PutLe(h, 40, object.etag.size(), 4);
  h += object.bucket;
  h += object.key;
  h += object.etag;
  return h;
}

// splitmix64's finalizer: spreads every input bit over the output, so the folder fan-out is even.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t Fnv1a(std::string_view s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string Hex(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kDigits[v & 0xf];
  return out;
}

bool ParseHex(std::string_view s, uint64_t* out) {
  if (s.size() != 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

// Moves past the first `done` bytes of the vector (a short preadv/writev).
void SkipIovec(iovec*& iov, int& count, size_t done) {
  while (count > 0 && done >= iov->iov_len) {
    done -= iov->iov_len;
    ++iov;
    --count;
  }
  if (count > 0) {
    iov->iov_base = static_cast<char*>(iov->iov_base) + done;
    iov->iov_len -= done;
  }
}

// Reads until `iov` is full or the file ends. Returns the bytes read, or -1 with errno.
ssize_t PreadvFull(int fd, iovec* iov, int count) {
  ssize_t total = 0;
  off_t offset = 0;
  while (count > 0) {
    ssize_t n = ::preadv(fd, iov, count, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    total += n;
    offset += n;
    SkipIovec(iov, count, static_cast<size_t>(n));
  }
  return total;
}

bool WritevFull(int fd, iovec* iov, int count) {
  while (count > 0) {
    ssize_t n = ::writev(fd, iov, count);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    SkipIovec(iov, count, static_cast<size_t>(n));
  }
  return true;
}

// Calls fn(entry) for each entry of `dir`; `ec` reports a folder that cannot be read.
template <typename Fn>
void ForEachEntry(const std::filesystem::path& dir, std::error_code& ec, Fn&& fn) {
  std::filesystem::directory_iterator it(dir, ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) fn(*it);
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(uint32_t crc, const void* data,
                                                           size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t c = ~crc;
  for (; size >= 8; p += 8, size -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
  }
  auto c32 = static_cast<uint32_t>(c);
  for (; size > 0; ++p, --size) c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
}
#endif

}  // namespace

uint32_t Crc32c(uint32_t crc, const void* data, size_t size) {
#if defined(__x86_64__)
  static const bool hardware = __builtin_cpu_supports("sse4.2");
  if (hardware) return Crc32cHardware(crc, data, size);
#endif
  return Crc32cSoftware(crc, data, size);
}

uint32_t Crc32cSoftware(uint32_t crc, const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  if constexpr (std::endian::native == std::endian::little) {
    while (size >= 8) {
      uint32_t lo, hi;
      std::memcpy(&lo, p, 4);
      std::memcpy(&hi, p + 4, 4);
      lo ^= crc;
      crc = kCrc[7][lo & 0xff] ^ kCrc[6][(lo >> 8) & 0xff] ^ kCrc[5][(lo >> 16) & 0xff] ^
            kCrc[4][lo >> 24] ^ kCrc[3][hi & 0xff] ^ kCrc[2][(hi >> 8) & 0xff] ^
            kCrc[1][(hi >> 16) & 0xff] ^ kCrc[0][hi >> 24];
      p += 8;
      size -= 8;
    }
  }
  while (size-- > 0) crc = kCrc[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

// ---- DiskCache ---------------------------------------------------------------------------------

Result<std::unique_ptr<DiskCache>> DiskCache::Open(const DiskCacheOptions& options) {
  if (options.dir.empty()) return InvalidArgumentError("the cache folder is not set");
  if (options.block_size == 0) return InvalidArgumentError("the cache block size is 0");
  if (options.max_bytes == 0) return InvalidArgumentError("the cache size is 0");
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return ErrnoToStatus(ec.value(), "create cache folder '" + options.dir + "'");
  const std::string lock_path = options.dir + "/" + kLockName;
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "open '" + lock_path + "'");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return AlreadyExistsError("cache folder '" + options.dir +
                                "' is in use by another trainfeed mount");
    }
    return ErrnoToStatus(err, "lock '" + lock_path + "'");
  }
  std::unique_ptr<DiskCache> cache(new DiskCache(options, fd));
  TF_RETURN_IF_ERROR(cache->Scan());
  return Result<std::unique_ptr<DiskCache>>(std::move(cache));
}

DiskCache::DiskCache(DiskCacheOptions options, int lock_fd)
    : options_(std::move(options)), lock_fd_(lock_fd) {}

DiskCache::~DiskCache() { ::close(lock_fd_); }  // closing drops the flock

DiskCache::Hash128 DiskCache::HashOf(const CachedObject& object, uint64_t index) const {
  // Length-prefixed fields: no two different keys serialize alike.
  std::string material;
  for (const std::string* field : {&object.bucket, &object.key, &object.etag}) {
    material += std::to_string(field->size());
    material += ':';
    material += *field;
  }
  material += std::to_string(options_.block_size) + ':' + std::to_string(index);
  return {Mix(Fnv1a(material, 0xcbf29ce484222325ull)),
          Mix(Fnv1a(material, 0x84222325cbf29ce4ull) ^ 0x9e3779b97f4a7c15ull)};
}

std::string DiskCache::PathOf(const Hash128& h) const {
  const std::string name = Hex(h.hi) + Hex(h.lo);
  return options_.dir + "/" + name.substr(0, 2) + "/" + name.substr(2, 2) + "/" + name + kSuffix;
}

std::string DiskCache::PathFor(const CachedObject& object, uint64_t index) const {
  return PathOf(HashOf(object, index));
}

Status DiskCache::Scan() {
  namespace fs = std::filesystem;
  struct Found {
    Hash128 hash;
    uint64_t bytes;
    fs::file_time_type mtime;
  };
  std::vector<Found> found;
  auto is_hex2 = [](const std::string& s) {
    uint64_t v;
    return s.size() == 2 && ParseHex("00000000000000" + s, &v);
  };
  // Only the folder itself must be readable; a sub-folder that cannot be read is skipped.
  std::error_code ec;
  ForEachEntry(options_.dir, ec, [&](const fs::directory_entry& l1) {
    const std::string n1 = l1.path().filename().string();
    std::error_code sub;
    if (!is_hex2(n1) || l1.is_symlink(sub) || !l1.is_directory(sub)) return;
    ForEachEntry(l1.path(), sub, [&](const fs::directory_entry& l2) {
      const std::string n2 = l2.path().filename().string();
      std::error_code sub2;
      if (!is_hex2(n2) || l2.is_symlink(sub2) || !l2.is_directory(sub2)) return;
      ForEachEntry(l2.path(), sub2, [&](const fs::directory_entry& file) {
        const std::string name = file.path().filename().string();
        Hash128 h;
        if (name.size() < 32 || !ParseHex(name.substr(0, 16), &h.hi) ||
            !ParseHex(name.substr(16, 16), &h.lo) || name.substr(0, 2) != n1 ||
            name.substr(2, 2) != n2) {
          return;  // not ours
        }
        const std::string_view rest = std::string_view(name).substr(32);
        std::error_code fec;
        if (rest.starts_with(kTempMark)) {
          fs::remove(file.path(), fec);  // a write that never finished
          return;
        }
        if (rest != kSuffix || file.is_symlink(fec) || !file.is_regular_file(fec)) return;
        uint64_t bytes = file.file_size(fec);
        if (fec) return;
        fs::file_time_type mtime = file.last_write_time(fec);
        if (fec) return;
        found.push_back({h, bytes, mtime});
      });
    });
  });
  if (ec) return ErrnoToStatus(ec.value(), "scan cache folder '" + options_.dir + "'");
  // Oldest first, so the most recently written ends up at the front of the LRU list.
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.mtime < b.mtime; });
  std::vector<Hash128> evicted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Found& f : found) InsertLocked(f.hash, f.bytes, &evicted);
  }
  RemoveFiles(evicted);
  spdlog::debug("cache {}: {} blocks, {} bytes (limit {}), {} evicted at start", options_.dir,
                block_count(), used_bytes(), options_.max_bytes, evicted.size());
  return OkStatus();
}

void DiskCache::InsertLocked(const Hash128& h, uint64_t bytes, std::vector<Hash128>* evicted) {
  EraseLocked(h);
  lru_.push_front(h);
  index_[h] = Entry{bytes, lru_.begin()};
  used_ += bytes;
  // The newest entry is at the front, so it goes last, and only if it alone is too big.
  while (used_ > options_.max_bytes && !lru_.empty()) {
    Hash128 victim = lru_.back();
    EraseLocked(victim);
    evicted->push_back(victim);
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
}

void DiskCache::EraseLocked(const Hash128& h) {
  auto it = index_.find(h);
  if (it == index_.end()) return;
  used_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  index_.erase(it);
}

void DiskCache::Forget(const Hash128& h, bool remove_file) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    EraseLocked(h);
  }
  if (remove_file) RemoveFiles({h});
}

void DiskCache::RemoveFiles(const std::vector<Hash128>& hashes) {
  for (const Hash128& h : hashes) {
    // A reader that has the file open keeps reading the unlinked file whole.
    if (::unlink(PathOf(h).c_str()) != 0 && errno != ENOENT) {
      spdlog::debug("cache: cannot remove {}: {}", PathOf(h), std::strerror(errno));
    }
  }
}

bool DiskCache::Contains(const CachedObject& object, uint64_t index) const {
  Hash128 h = HashOf(object, index);
  std::lock_guard<std::mutex> lock(mu_);
  return index_.contains(h);
}

bool DiskCache::Read(const CachedObject& object, uint64_t index, char* out, uint64_t length) {
  const Hash128 h = HashOf(object, index);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!index_.contains(h)) return false;
  }
  const std::string path = PathOf(h);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) Forget(h, false);  // gone behind our back
    return false;
  }
  const std::string expected = Header(options_, object, index, length);
  std::string header(expected.size(), '\0');
  char extra;  // must stay empty: a longer file is not this block
  iovec iov[3] = {{header.data(), header.size()}, {out, length}, {&extra, 1}};
  ssize_t n = PreadvFull(fd, iov, 3);
  ::close(fd);
  bool valid = n >= 0 && static_cast<uint64_t>(n) == header.size() + length;
  if (valid) {
    uint32_t stored = 0;
    for (int i = 0; i < 4; ++i) {
      const auto byte = static_cast<unsigned char>(header[kCrcOffset + i]);
      stored |= static_cast<uint32_t>(byte) << (8 * i);
    }
    std::memset(header.data() + kCrcOffset, 0, 4);
    valid = header == expected &&
            Crc32c(Crc32c(0, header.data(), header.size()), out, length) == stored;
  }
  if (!valid) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("cache: {} does not hold block {} of {} ({} bytes): ignored and removed", path,
                  index, object.key, length);
    Forget(h, true);
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(h);
  if (it != index_.end()) lru_.splice(lru_.begin(), lru_, it->second.lru);
  return true;
}

bool DiskCache::BeginWrite(const CachedObject& object, uint64_t index, uint64_t length) {
  if (object.etag.empty()) return false;
  const Hash128 h = HashOf(object, index);
  const uint64_t file_bytes = kFixedHeader + object.bucket.size() + object.key.size() +
                              object.etag.size() + length;
  std::lock_guard<std::mutex> lock(mu_);
  if (file_bytes > options_.max_bytes || index_.contains(h) || writing_.contains(h)) return false;
  // One block is always admitted, so a backlog limit below the block size still caches.
  if (backlog_ > 0 && backlog_ + length > options_.write_backlog_bytes) return false;
  writing_.insert(h);
  backlog_ += length;
  return true;
}

void DiskCache::AbandonWrite(const CachedObject& object, uint64_t index, uint64_t length) {
  const Hash128 h = HashOf(object, index);
  std::lock_guard<std::mutex> lock(mu_);
  writing_.erase(h);
  backlog_ -= std::min(backlog_, length);
}

bool DiskCache::Write(const CachedObject& object, uint64_t index, const char* data,
                      uint64_t length) {
  const Hash128 h = HashOf(object, index);
  const std::string path = PathOf(h);
  std::string header = Header(options_, object, index, length);
  const uint32_t crc = Crc32c(Crc32c(0, header.data(), header.size()), data, length);
  PutLe(header, kCrcOffset, crc, 4);

  // A name no other writer uses, in the block's own folder so the rename stays in one directory.
  const std::string temp = path + ".tmp." + std::to_string(::getpid()) + "." +
                           std::to_string(temp_counter_.fetch_add(1));
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ENOENT) {
    // First block in this folder: make both levels (an existing one is fine).
    const size_t slash2 = path.rfind('/');
    const size_t slash1 = path.rfind('/', slash2 - 1);
    ::mkdir(path.substr(0, slash1).c_str(), 0755);
    ::mkdir(path.substr(0, slash2).c_str(), 0755);
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  }
  bool ok = fd >= 0;
  int err = ok ? 0 : errno;
  if (ok) {
    iovec iov[2] = {{header.data(), header.size()}, {const_cast<char*>(data), length}};
    ok = WritevFull(fd, iov, 2);
    if (!ok) err = errno;
    if (::close(fd) != 0 && ok) {
      ok = false;
      err = errno;
    }
    if (ok && ::rename(temp.c_str(), path.c_str()) != 0) {
      ok = false;
      err = errno;
    }
    if (!ok) ::unlink(temp.c_str());
  }
  if (!ok) LogWriteFailure(temp, err);

  std::vector<Hash128> evicted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_.erase(h);
    backlog_ -= std::min(backlog_, length);
    if (ok) InsertLocked(h, header.size() + length, &evicted);
  }
  RemoveFiles(evicted);
  return ok;
}

void DiskCache::LogWriteFailure(const std::string& what, int err) {
  // Once per mount: a full disk would otherwise log every block.
  if (write_failure_logged_.exchange(true)) return;
  spdlog::warn("cache: cannot write {}: {} (blocks that cannot be written are not cached)", what,
               std::strerror(err == 0 ? EIO : err));
}

uint64_t DiskCache::used_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return used_;
}

uint64_t DiskCache::block_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return index_.size();
}

}  // namespace trainfeed
