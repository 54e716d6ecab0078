#include "modes/fastfile/tree.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <limits>
#include <unordered_set>

#include "dataset/local_names.h"

namespace trainfeed {

namespace {

// Matches what the read path asks the kernel for (max_read), so a buffered reader that sizes its
// buffer from st_blksize issues whole FUSE reads.
constexpr blksize_t kBlockSize = 1 << 20;
constexpr size_t kNameMax = 255;

int64_t ToNanos(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

timespec ToTimespec(int64_t ns) {
  int64_t sec = ns / 1'000'000'000;
  int64_t rem = ns % 1'000'000'000;
  if (rem < 0) {  // before 1970: keep tv_nsec in [0, 1e9)
    rem += 1'000'000'000;
    --sec;
  }
  return timespec{static_cast<time_t>(sec), static_cast<long>(rem)};
}

// Splits `relative` at '/' into `parts`. False when any component is not a safe name.
bool SplitSafe(std::string_view relative, std::vector<std::string_view>& parts) {
  parts.clear();
  if (relative.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (true) {
    size_t end = relative.find('/', start);
    std::string_view part = relative.substr(
        start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (part.empty() || part == "." || part == ".." || part.size() > kNameMax) return false;
    parts.push_back(part);
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

void AddExample(std::vector<std::string>& examples, std::string_view key) {
  if (examples.size() < TreeBuildReport::kMaxExamples) examples.emplace_back(key);
}

}  // namespace

// ---- FileTree ----

std::string_view FileTree::Name(NodeId id) const {
  const Node& n = node(id);
  return std::string_view(arena_).substr(n.text_offset, n.name_size);
}

std::string_view FileTree::Etag(NodeId id) const {
  const Node& n = node(id);
  return std::string_view(arena_).substr(n.text_offset + n.name_size + 1, n.etag_size);
}

std::chrono::system_clock::time_point FileTree::LastModified(NodeId id) const {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(node(id).mtime_ns)));
}

FileTree::NodeId FileTree::Lookup(NodeId dir, std::string_view name) const {
  const Node& d = node(dir);
  if (!d.is_dir) return kNoNode;
  auto begin = children_.begin() + d.first_child;
  auto end = begin + d.child_count;
  auto it = std::lower_bound(
      begin, end, name, [this](uint32_t child, std::string_view n) { return Name(child + 1) < n; });
  if (it == end || Name(*it + 1) != name) return kNoNode;
  return *it + 1;
}

std::string FileTree::Path(NodeId id) const {
  std::vector<std::string_view> names;
  for (NodeId n = id; n != kRootId; n = Parent(n)) names.push_back(Name(n));
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    if (!path.empty()) path += '/';
    path.append(*it);
  }
  return path;
}

ObjectInfo FileTree::Object(NodeId id) const {
  ObjectInfo info;
  info.key = Key(id);
  info.size = Size(id);
  info.etag = std::string(Etag(id));
  info.last_modified = LastModified(id);
  return info;
}

void FileTree::FillAttributes(NodeId id, uid_t uid, gid_t gid, struct stat* st) const {
  const Node& n = node(id);
  *st = {};
  st->st_ino = id;
  st->st_mode = n.is_dir ? (S_IFDIR | 0555) : (S_IFREG | 0444);
  st->st_nlink = n.is_dir ? 2 + n.subdir_count : 1;
  st->st_uid = uid;
  st->st_gid = gid;
  st->st_size = static_cast<off_t>(n.size);
  st->st_blksize = kBlockSize;
  st->st_blocks = static_cast<blkcnt_t>((n.size + 511) / 512);
  st->st_mtim = ToTimespec(n.mtime_ns);
  st->st_atim = st->st_mtim;
  st->st_ctim = st->st_mtim;
}

size_t FileTree::MemoryBytes() const {
  size_t bytes = nodes_.capacity() * sizeof(Node) + children_.capacity() * sizeof(uint32_t) +
                 arena_.capacity() + prefix_.capacity();
  for (const auto& e : report_.hidden_examples) bytes += e.capacity();
  for (const auto& e : report_.skipped_examples) bytes += e.capacity();
  return bytes;
}

// ---- FileTreeBuilder ----

// (parent, name) -> node index while building. The set holds node indexes only; hashing and
// comparison read the names from the tree, and a (parent, name) probe finds a node without
// copying the name.
struct FileTreeBuilder::Index {
  struct Probe {
    uint32_t parent;
    std::string_view name;
  };
  struct Hash {
    using is_transparent = void;
    const FileTree* tree;
    size_t operator()(const Probe& p) const {
      return std::hash<std::string_view>{}(p.name) ^ (p.parent * 0x9E3779B97F4A7C15ull);
    }
    size_t operator()(uint32_t index) const { return (*this)(ProbeOf(tree, index)); }
  };
  struct Equal {
    using is_transparent = void;
    const FileTree* tree;
    bool operator()(uint32_t a, uint32_t b) const { return a == b; }
    bool operator()(const Probe& p, uint32_t index) const {
      Probe q = ProbeOf(tree, index);
      return p.parent == q.parent && p.name == q.name;
    }
    bool operator()(uint32_t index, const Probe& p) const { return (*this)(p, index); }
  };
  static Probe ProbeOf(const FileTree* tree, uint32_t index) {
    FileTree::NodeId id = index + 1;
    return {static_cast<uint32_t>(tree->Parent(id) - 1), tree->Name(id)};
  }

  explicit Index(const FileTree* tree) : set(64, Hash{tree}, Equal{tree}) {}
  std::unordered_set<uint32_t, Hash, Equal> set;
};

FileTreeBuilder::FileTreeBuilder(std::string prefix) : index_(std::make_unique<Index>(&tree_)) {
  tree_.prefix_ = std::move(prefix);
  tree_.nodes_.emplace_back();  // the root: its own parent, no name
  tree_.nodes_[0].is_dir = true;
  tree_.arena_.push_back('\0');
}

FileTreeBuilder::~FileTreeBuilder() = default;

uint32_t FileTreeBuilder::AddNode(uint32_t parent, std::string_view name, bool is_dir) {
  auto it = index_->set.find(Index::Probe{parent, name});
  if (it != index_->set.end()) return *it;
  if (tree_.nodes_.size() >= std::numeric_limits<uint32_t>::max()) {
    overflow_ = Status(ErrorCode::kResourceExhausted, "more than 4 Gi entries under the prefix");
    return std::numeric_limits<uint32_t>::max();
  }
  FileTree::Node n;
  n.parent = parent;
  n.is_dir = is_dir;
  n.text_offset = tree_.arena_.size();
  n.name_size = static_cast<uint16_t>(name.size());
  tree_.arena_.append(name);
  tree_.arena_.push_back('\0');
  uint32_t index = static_cast<uint32_t>(tree_.nodes_.size());
  tree_.nodes_.push_back(n);
  index_->set.insert(index);
  return index;
}

void FileTreeBuilder::Skip(const ObjectInfo& info) {
  ++tree_.report_.skipped_keys;
  AddExample(tree_.report_.skipped_examples, info.key);
}

void FileTreeBuilder::Hide(std::string_view key) {
  ++tree_.report_.hidden_files;
  AddExample(tree_.report_.hidden_examples, key);
}

void FileTreeBuilder::Add(const ObjectInfo& info) {
  if (!overflow_.ok()) return;
  const std::string& prefix = tree_.prefix_;
  if (!std::string_view(info.key).starts_with(prefix)) return Skip(info);
  std::string_view relative = std::string_view(info.key).substr(prefix.size());
  bool marker = IsFolderMarker(info.key);
  if (marker) {
    ++tree_.report_.folder_markers;
    if (!relative.empty()) relative.remove_suffix(1);
  }
  if (relative.empty()) {
    // The prefix's own marker ("train/" under "train/") dates the root; anything else here is a
    // key equal to a prefix that does not end in '/', which names no path below the root.
    if (!marker) return Skip(info);
    FileTree::Node& root = tree_.nodes_[0];
    root.mtime_ns = std::max(root.mtime_ns, ToNanos(info.last_modified));
    return;
  }
  std::vector<std::string_view> parts;
  if (!SplitSafe(relative, parts) || info.etag.size() > std::numeric_limits<uint16_t>::max()) {
    return Skip(info);
  }
  size_t folders = marker ? parts.size() : parts.size() - 1;
  uint32_t parent = 0;
  for (size_t i = 0; i < folders; ++i) {
    uint32_t child = AddNode(parent, parts[i], /*is_dir=*/true);
    if (!overflow_.ok()) return;
    FileTree::Node& n = tree_.nodes_[child];
    if (!n.is_dir) {
      // A file listed earlier has the name of this folder: the folder wins.
      Hide(prefix +
           std::string(relative.substr(0, parts[i].data() + parts[i].size() - relative.data())));
      n.is_dir = true;
      n.size = 0;
      n.etag_size = 0;
      n.mtime_ns = 0;
    }
    parent = child;
  }
  if (marker) {
    FileTree::Node& folder = tree_.nodes_[parent];
    folder.mtime_ns = std::max(folder.mtime_ns, ToNanos(info.last_modified));
    return;
  }
  size_t nodes_before = tree_.nodes_.size();
  uint32_t file = AddNode(parent, parts.back(), /*is_dir=*/false);
  if (!overflow_.ok()) return;
  if (tree_.nodes_.size() == nodes_before) {
    // The name exists already: a folder (it wins) or the same key listed twice (keep the first).
    if (tree_.nodes_[file].is_dir) Hide(info.key);
    return;
  }
  FileTree::Node& n = tree_.nodes_[file];
  n.size = info.size;
  n.mtime_ns = ToNanos(info.last_modified);
  n.etag_size = static_cast<uint16_t>(info.etag.size());
  tree_.arena_.append(info.etag);  // right after the name's NUL
}

Result<FileTree> FileTreeBuilder::Finish() {
  if (!overflow_.ok()) return overflow_;
  index_.reset();
  std::vector<FileTree::Node>& nodes = tree_.nodes_;
  TreeBuildReport& report = tree_.report_;
  // Group children by parent: count, place runs by prefix sums, then fill each run.
  for (size_t i = 1; i < nodes.size(); ++i) {
    FileTree::Node& parent = nodes[nodes[i].parent];
    ++parent.child_count;
    if (nodes[i].is_dir) {
      ++parent.subdir_count;
      ++report.folders;
    } else {
      ++report.files;
      report.bytes += nodes[i].size;
    }
  }
  uint32_t next = 0;
  for (FileTree::Node& n : nodes) {
    n.first_child = next;
    next += n.child_count;
  }
  tree_.children_.resize(next);
  std::vector<uint32_t> filled(nodes.size(), 0);
  for (size_t i = 1; i < nodes.size(); ++i) {
    uint32_t p = nodes[i].parent;
    tree_.children_[nodes[p].first_child + filled[p]++] = static_cast<uint32_t>(i);
  }
  filled = {};
  for (FileTree::Node& n : nodes) {
    if (n.child_count < 2) continue;
    auto begin = tree_.children_.begin() + n.first_child;
    std::sort(begin, begin + n.child_count,
              [this](uint32_t a, uint32_t b) { return tree_.Name(a + 1) < tree_.Name(b + 1); });
  }
  // A folder is as new as the newest thing below it. Descendants always have higher indexes
  // than their ancestors (folders are created before what they hold), so one backwards pass
  // sees every node's final time before passing it up.
  for (size_t i = nodes.size() - 1; i >= 1; --i) {
    FileTree::Node& parent = nodes[nodes[i].parent];
    parent.mtime_ns = std::max(parent.mtime_ns, nodes[i].mtime_ns);
  }
  nodes.shrink_to_fit();
  tree_.children_.shrink_to_fit();
  tree_.arena_.shrink_to_fit();
  return std::move(tree_);
}

Result<FileTree> BuildFileTree(std::string prefix, const std::vector<ObjectInfo>& objects) {
  FileTreeBuilder builder(std::move(prefix));
  for (const ObjectInfo& info : objects) builder.Add(info);
  return builder.Finish();
}

Status CheckFolderPrefix(const StoreUri& uri) {
  if (uri.key.empty() || uri.key.back() == '/') return OkStatus();
  return InvalidArgumentError("FastFile mounts a folder, but '" + uri.ToString() +
                              "' ends inside a name; end the URI with '/' ('" + uri.ToString() +
                              "/')");
}

namespace {

// Lists every page of `request` (from its first), handing each object to `add`.
Status ListAllPages(ObjectStore& store, ListRequest request, const std::atomic<bool>* cancel,
                    const std::function<void(const ListPage&)>& add) {
  do {
    if (cancel && cancel->load()) return CancelledError("interrupted while listing");
    TF_ASSIGN_OR_RETURN(ListPage page, store.List(request));
    add(page);
    request.continuation_token = page.next_continuation_token;
  } while (!request.continuation_token.empty());
  return OkStatus();
}

}  // namespace

Result<FileTree> ListFileTree(ObjectStore& store, const StoreUri& uri, const std::atomic<bool>* cancel,
                              int parallelism) {
  FileTreeBuilder builder(uri.key);
  std::mutex mu;  // guards builder
  auto add_objects = [&](const ListPage& page) {
    std::lock_guard<std::mutex> lock(mu);
    for (const ObjectInfo& info : page.objects) builder.Add(info);
  };

  // Walk down with '/' as delimiter until there are enough disjoint folders to list at once. A
  // flat prefix ends here with the whole listing (the delimiter costs nothing there); a layout
  // of folders pays one extra request per folder opened, at most kMaxExpandedFolders.
  constexpr size_t kMaxExpandedFolders = 64;
  std::deque<std::string> folders{uri.key};
  std::vector<std::string> leaves;  // listed recursively below
  size_t expanded = 0;
  while (!folders.empty()) {
    if (expanded >= kMaxExpandedFolders || folders.size() + leaves.size() >= size_t(parallelism) * 4) {
      break;
    }
    ListRequest request;
    request.bucket = uri.bucket;
    request.prefix = folders.front();
    request.delimiter = "/";
    folders.pop_front();
    ++expanded;
    TF_RETURN_IF_ERROR(ListAllPages(store, request, cancel, [&](const ListPage& page) {
      add_objects(page);
      for (const std::string& p : page.common_prefixes) folders.push_back(p);
    }));
  }
  leaves.insert(leaves.end(), folders.begin(), folders.end());

  // The remaining folders are disjoint key ranges: list each recursively, several at a time.
  std::atomic<size_t> next{0};
  Status first_error;
  std::atomic<bool> failed{false};
  auto worker = [&] {
    for (size_t i = next++; i < leaves.size() && !failed.load(); i = next++) {
      ListRequest request;
      request.bucket = uri.bucket;
      request.prefix = leaves[i];
      Status s = ListAllPages(store, request, cancel, add_objects);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = s;
        failed = true;
      }
    }
  };
  std::vector<std::thread> threads;
  size_t thread_count = std::min(leaves.size(), size_t(std::max(parallelism, 1)));
  for (size_t t = 1; t < thread_count; ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  if (!first_error.ok()) return first_error;

  TF_ASSIGN_OR_RETURN(FileTree tree, builder.Finish());
  if (tree.report().files == 0) {
    return NotFoundError("no objects match " + uri.ToString() +
                         " (an empty channel is an error: check the prefix)");
  }
  return tree;
}

}  // namespace trainfeed
