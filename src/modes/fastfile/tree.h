// FastFile's directory tree: the read-only POSIX view of one listed prefix.
//
// Built once from the listing, then never changed, so the kernel may cache every entry and
// attribute for as long as it likes and FUSE handlers read it without locks. Keys are taken
// relative to the prefix and '/' separates folders. Keys that do not map one to one to a path:
//   - folder markers (keys ending in '/', usually empty) create their folder and are not files;
//   - a key that is both a file and a folder prefix ("a" and "a/b"): the folder wins and the file
//     is hidden. A path cannot be both, and the folder is the one that holds the dataset;
//   - keys with an empty component ("a//b", "/a"), a "." or ".." component, a NUL byte or a
//     component longer than 255 bytes (NAME_MAX) are skipped, so no key can name a path outside
//     the mount or one the kernel would refuse.
// Both kinds are counted in the build report, with a few example keys for one warning line each.
//
// Layout: node ids are indexes into flat vectors (id 1 is the root, as FUSE wants; ids are the
// inode numbers), names and ETags sit in one character arena, and each folder's children are one
// contiguous run of ids sorted by name: readdir offsets are positions in that run, and lookup is a
// binary search. About 100 bytes per object in total (see MemoryBytes()).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/object_store.h"
#include "store/store_uri.h"

namespace trainfeed {

struct TreeBuildReport {
  uint64_t files = 0;
  uint64_t folders = 0;  // the root not counted
  uint64_t bytes = 0;    // sum of the file sizes
  uint64_t folder_markers = 0;
  uint64_t hidden_files = 0;  // files shadowed by a folder of the same name
  uint64_t skipped_keys = 0;  // keys that name no safe path
  // The first few keys of each kind, for the warning (at most kMaxExamples each).
  static constexpr size_t kMaxExamples = 3;
  std::vector<std::string> hidden_examples;
  std::vector<std::string> skipped_examples;
};

// Immutable once built; safe for concurrent reads from any number of threads.
class FileTree {
 public:
  using NodeId = uint64_t;  // the inode number FUSE sees
  static constexpr NodeId kNoNode = 0;
  static constexpr NodeId kRootId = 1;  // FUSE_ROOT_ID

  FileTree() = default;
  FileTree(FileTree&&) = default;
  FileTree& operator=(FileTree&&) = default;

  // True for ids of this tree (the kernel only hands back ids we gave it; this guards bugs).
  bool Contains(NodeId id) const { return id >= kRootId && id <= nodes_.size(); }
  bool IsDir(NodeId id) const { return node(id).is_dir; }
  // The entry's name, "" for the root. The bytes are followed by a NUL, for C APIs.
  std::string_view Name(NodeId id) const;
  NodeId Parent(NodeId id) const { return node(id).parent + 1; }  // the root is its own parent
  uint64_t Size(NodeId id) const { return node(id).size; }        // 0 for folders
  std::string_view Etag(NodeId id) const;                         // "" for folders
  // Files: the object's LastModified. Folders: the newest LastModified below them.
  std::chrono::system_clock::time_point LastModified(NodeId id) const;

  // Children of folder `dir`, sorted by name (byte order); index in [0, ChildCount(dir)).
  size_t ChildCount(NodeId dir) const { return node(dir).child_count; }
  NodeId Child(NodeId dir, size_t index) const {
    return children_[node(dir).first_child + index] + 1;
  }
  // The child of folder `dir` called `name`, or kNoNode.
  NodeId Lookup(NodeId dir, std::string_view name) const;

  // "a/b/c" relative to the mount root; "" for the root.
  std::string Path(NodeId id) const;
  // The object key of a file (prefix + path).
  std::string Key(NodeId id) const { return prefix_ + Path(id); }
  // What the listing said about file `id`: key, size, ETag, LastModified.
  ObjectInfo Object(NodeId id) const;

  // POSIX attributes: files r--r--r--, folders r-xr-xr-x with nlink 2 + subfolders, owned by
  // uid/gid, times = LastModified, st_blksize 1 MiB (the FUSE read size, so stdio and Python
  // buffers issue whole-size reads).
  void FillAttributes(NodeId id, uid_t uid, gid_t gid, struct stat* st) const;

  const std::string& prefix() const { return prefix_; }
  size_t node_count() const { return nodes_.size(); }
  const TreeBuildReport& report() const { return report_; }
  // Heap bytes held by the tree (capacity, not size): what a mount pays per listed object.
  size_t MemoryBytes() const;

 private:
  friend class FileTreeBuilder;
  friend struct TreeSnapshotAccess;  // tree_snapshot.cc saves and restores the arrays below
  struct Node {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    uint64_t text_offset = 0;  // into arena_: name, NUL, ETag
    uint32_t parent = 0;       // index (id - 1); the root's is 0, itself
    uint32_t first_child = 0;  // folders: children_[first_child, first_child + child_count)
    uint32_t child_count = 0;
    uint32_t subdir_count = 0;
    uint16_t name_size = 0;
    uint16_t etag_size = 0;
    bool is_dir = false;
  };
  const Node& node(NodeId id) const { return nodes_[id - 1]; }

  std::string prefix_;
  std::vector<Node> nodes_;
  std::vector<uint32_t> children_;  // node indexes, grouped by parent, sorted by name
  std::string arena_;
  TreeBuildReport report_;
};

// Builds a FileTree from listed objects, in any order. Not thread-safe.
class FileTreeBuilder {
 public:
  // `prefix`: the listed prefix; keys are taken relative to it.
  explicit FileTreeBuilder(std::string prefix);
  ~FileTreeBuilder();
  FileTreeBuilder(const FileTreeBuilder&) = delete;
  FileTreeBuilder& operator=(const FileTreeBuilder&) = delete;

  // REQUIRES: info.key starts with the prefix (a listing of that prefix guarantees it).
  // A key listed twice keeps its first listing.
  void Add(const ObjectInfo& info);
  // The finished tree; the builder is spent. ResourceExhausted past 4 Gi entries.
  Result<FileTree> Finish();

 private:
  struct Index;
  uint32_t AddNode(uint32_t parent, std::string_view name, bool is_dir);
  void Skip(const ObjectInfo& info);
  void Hide(std::string_view key);

  FileTree tree_;
  std::unique_ptr<Index> index_;  // (parent, name) -> node, while building
  Status overflow_;
};

// Convenience for tests and small inputs: builds the tree of `objects` listed under `prefix`.
Result<FileTree> BuildFileTree(std::string prefix, const std::vector<ObjectInfo>& objects);

// FastFile mounts whole folders: the URI's key must be empty (bucket root) or end in '/'.
// InvalidArgument naming the URI otherwise (SageMaker refuses prefixes that stop inside a name).
Status CheckFolderPrefix(const StoreUri& uri);

// Lists every key under `uri` (folder markers included) into a tree. ListObjectsV2 pages come one
// after another, so a single listing of 100k keys is 100 round trips in a row; instead the top
// folders are opened with '/' as delimiter until there are enough disjoint folders, and those are
// listed recursively `parallelism` at a time (a flat prefix is simply listed in one pass). NotFound
// when the prefix holds no file at all (an empty channel is an error, as in File mode); Cancelled
// when `cancel` turns true between pages.
Result<FileTree> ListFileTree(ObjectStore& store, const StoreUri& uri,
                              const std::atomic<bool>* cancel = nullptr, int parallelism = 16);

}  // namespace trainfeed
