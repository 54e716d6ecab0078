#include "modes/fastfile/tree_snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <type_traits>

#include "modes/fastfile/disk_cache.h"  // Crc32c

namespace trainfeed {

namespace {

// "TFTREE" + format version. Bump the version whenever the layout below or FileTree::Node changes.
constexpr char kMagic[8] = {'T', 'F', 'T', 'R', 'E', 'E', '0', '1'};
constexpr uint32_t kByteOrderMark = 0x01020304;

struct Header {
  char magic[8];
  uint32_t node_size;   // sizeof(FileTree::Node) of the build that wrote it
  uint32_t byte_order;  // kByteOrderMark as written: another byte order reads it swapped
  uint64_t payload_size;
  uint32_t payload_crc;  // CRC-32C of the payload
  uint32_t reserved;
};

class Writer {
 public:
  void U64(uint64_t v) { Raw(&v, sizeof v); }
  void Str(const std::string& s) {
    U64(s.size());
    Raw(s.data(), s.size());
  }
  template <typename T>
  void Vec(const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    U64(v.size());
    Raw(v.data(), v.size() * sizeof(T));
  }
  void Raw(const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
  std::string out;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U64(uint64_t& v) { return Raw(&v, sizeof v); }
  bool Str(std::string& s) {
    uint64_t n;
    if (!U64(n) || n > in_.size()) return false;
    s.assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  template <typename T>
  bool Vec(std::vector<T>& v) {
    uint64_t n;
    if (!U64(n) || n > in_.size() / sizeof(T)) return false;
    v.resize(n);
    return Raw(v.data(), n * sizeof(T));
  }
  bool Raw(void* p, size_t n) {
    if (n > in_.size()) return false;
    std::memcpy(p, in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

}  // namespace

// Reaches FileTree's private arrays (a friend of FileTree).
struct TreeSnapshotAccess {
  static void Save(const FileTree& t, const std::string& source, Writer& w) {
    w.Str(source);
    w.Str(t.prefix_);
    const TreeBuildReport& r = t.report_;
    for (uint64_t v : {r.files, r.folders, r.bytes, r.folder_markers, r.hidden_files, r.skipped_keys}) {
      w.U64(v);
    }
    for (const auto* examples : {&r.hidden_examples, &r.skipped_examples}) {
      w.U64(examples->size());
      for (const std::string& e : *examples) w.Str(e);
    }
    w.Vec(t.nodes_);
    w.Vec(t.children_);
    w.Str(t.arena_);
  }

  // False when the payload is malformed; `source` gets the recorded source either way it can.
  static bool Load(Reader& in, std::string& source, FileTree& t) {
    TreeBuildReport& r = t.report_;
    if (!in.Str(source) || !in.Str(t.prefix_)) return false;
    for (uint64_t* v : {&r.files, &r.folders, &r.bytes, &r.folder_markers, &r.hidden_files, &r.skipped_keys}) {
      if (!in.U64(*v)) return false;
    }
    for (auto* examples : {&r.hidden_examples, &r.skipped_examples}) {
      uint64_t n;
      if (!in.U64(n) || n > TreeBuildReport::kMaxExamples) return false;
      examples->resize(n);
      for (std::string& e : *examples) {
        if (!in.Str(e)) return false;
      }
    }
    return in.Vec(t.nodes_) && in.Vec(t.children_) && in.Str(t.arena_) && in.done() && Consistent(t);
  }

  // Every index points inside its array, so a damaged snapshot the CRC missed still cannot make
  // a FUSE handler read out of bounds.
  static constexpr uint32_t kNodeSize = sizeof(FileTree::Node);

  static bool Consistent(const FileTree& t) {
    const uint64_t n = t.nodes_.size();
    if (n == 0 || !t.nodes_[0].is_dir) return false;
    for (const FileTree::Node& node : t.nodes_) {
      if (node.parent >= n) return false;
      if (node.text_offset + node.name_size + 1 + node.etag_size > t.arena_.size()) return false;
      if (node.is_dir && uint64_t{node.first_child} + node.child_count > t.children_.size()) {
        return false;
      }
    }
    for (uint32_t child : t.children_) {
      if (child >= n || child == 0) return false;
    }
    return true;
  }
};

Status SaveTreeSnapshot(const FileTree& tree, const std::string& source, const std::string& path) {
  Writer payload;
  TreeSnapshotAccess::Save(tree, source, payload);
  Header header{};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.node_size = TreeSnapshotAccess::kNodeSize;
  header.byte_order = kByteOrderMark;
  header.payload_size = payload.out.size();
  header.payload_crc = Crc32c(0, payload.out.data(), payload.out.size());

  std::string what = "write listing snapshot '" + path + "'";
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, what);
  bool ok = true;
  for (std::string_view part : {std::string_view(reinterpret_cast<const char*>(&header), sizeof header),
                                std::string_view(payload.out)}) {
    while (ok && !part.empty()) {
      ssize_t n = ::write(fd, part.data(), part.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ok = false;
      else part.remove_prefix(static_cast<size_t>(n));
    }
  }
  if (ok) ok = ::fsync(fd) == 0;
  int saved = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return ErrnoToStatus(saved, what);
  }
  return OkStatus();
}

Result<FileTree> LoadTreeSnapshot(const std::string& path, const std::string& source) {
  std::string what = "listing snapshot '" + path + "'";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError(what + ": no such file");
    return ErrnoToStatus(errno, "read " + what);
  }
  std::string data;
  char buffer[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int saved = errno;
      ::close(fd);
      return ErrnoToStatus(saved, "read " + what);
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);

  Header header;
  if (data.size() < sizeof header) return DataLossError(what + ": truncated");
  std::memcpy(&header, data.data(), sizeof header);
  if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0 || header.byte_order != kByteOrderMark ||
      header.node_size != TreeSnapshotAccess::kNodeSize) {
    return DataLossError(what + ": not a snapshot of this trainfeed version");
  }
  std::string_view payload(data.data() + sizeof header, data.size() - sizeof header);
  if (payload.size() != header.payload_size) return DataLossError(what + ": truncated");
  if (Crc32c(0, payload.data(), payload.size()) != header.payload_crc) {
    return DataLossError(what + ": checksum mismatch (damaged)");
  }
  FileTree tree;
  std::string recorded;
  Reader in(payload);
  if (!TreeSnapshotAccess::Load(in, recorded, tree)) return DataLossError(what + ": malformed");
  if (recorded != source) {
    return InvalidArgumentError(what + " was listed from '" + recorded + "', not '" + source + "'");
  }
  return tree;
}

}  // namespace trainfeed
