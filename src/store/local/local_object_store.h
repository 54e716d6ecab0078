// LocalObjectStore: the ObjectStore of file:// URIs, over a local directory tree.
//
// A key is a path relative to the root ("/" unless configured), components joined with '/', so
// file:///data/train/a.csv is bucket "" and key "data/train/a.csv". The semantics are those of S3
// (see object_store.h), which makes a directory tree look like a bucket:
//   - Only regular files are objects. Directories are not listed as keys; a delimiter listing
//     names a directory in common_prefixes only if a file lies somewhere below it, as S3 does.
//   - Listings are in exact byte order of the full key. Siblings are sorted by name, a directory
//     as name + "/", so the depth-first walk yields S3's order ("a-c" < "a/b" < "a0").
//   - Symlinks: those in the directory part of a list prefix or of a key are resolved by the
//     kernel (the user named them). During a listing walk a symlink to a regular file is listed
//     with its target's size, ETag and mtime (dataset caches are often built of such links); a
//     symlink to a directory is never followed (no cycles, no escaping the tree) and a dangling
//     one is skipped.
//   - A list prefix whose directory does not exist yields an empty page, like an S3 prefix with no
//     matches. An unreadable directory anywhere in the walk fails the listing with
//     PermissionDenied naming that directory: silently skipping it would lose data.
//   - ETag: derived from (device, inode, size, mtime ns, ctime ns) of the file, so any write,
//     replacement or `cp -p`-style mtime reset gives a new ETag. A rewrite of the same size within
//     one filesystem timestamp tick may keep the old ETag; writers that rename into place (as
//     Put does) always get a new inode and so a new ETag.
//   - Put writes ".<name>.trainfeed-put-<random>" next to the destination and renames it into
//     place, creating parent directories; readers never see a partial file. A key ending in '/'
//     (an S3 folder marker) creates that directory if the body is empty and is never listed; a
//     folder marker with a body is InvalidArgument. A file and a directory cannot share a name
//     (S3 allows "a" and "a/b"): such a Put fails with AlreadyExists naming the path.
//   - Keys with an empty, "." or ".." component, a leading '/' or a NUL byte are InvalidArgument.
//   - Multipart uploads stage parts in a hidden directory ".<name>.trainfeed-mpu-<upload id>"
//     next to the destination. Staging and temporary names are hidden from listings, as S3 hides
//     uploads in progress. Parts must be >= min_part_size but the last (S3's EntityTooSmall).
//
// Thread-safe: no state is shared between calls beyond the filesystem itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/object_store.h"

namespace trainfeed {

struct LocalStoreOptions {
  // Directory that keys are relative to; "/" for file:// URIs. Tests may confine a store to a
  // temporary directory. Must be absolute.
  std::string root = "/";
  // Every multipart part but the last must be at least this large, as on S3.
  uint64_t min_part_size = uint64_t{5} << 20;
};

class LocalObjectStore final : public ObjectStore {
 public:
  LocalObjectStore() : LocalObjectStore(LocalStoreOptions()) {}
  explicit LocalObjectStore(LocalStoreOptions options);

  Result<ListPage> List(const ListRequest& request) override;
  Result<ObjectInfo> Head(const ObjectRef& object) override;
  Result<GetResult> Get(const GetRequest& request, ByteSink& sink) override;
  Result<std::string> Put(const ObjectRef& object, std::string_view body) override;
  // Removes the file; a missing key is not an error. A folder-marker key removes the directory
  // only if it is empty (its files keep the "prefix" alive, as on S3).
  Status Delete(const ObjectRef& object) override;
  Result<std::string> CreateMultipartUpload(const ObjectRef& object) override;
  Result<std::string> UploadPart(const ObjectRef& object, const std::string& upload_id,
                                 int part_number, std::string_view body) override;
  Result<std::string> CompleteMultipartUpload(const ObjectRef& object, const std::string& upload_id,
                                              const std::vector<CompletedPart>& parts) override;
  Status AbortMultipartUpload(const ObjectRef& object, const std::string& upload_id) override;
  // "file://" + root + key: "file:///data/train/a.csv" for the default root.
  std::string Describe(const ObjectRef& object) const override;

 private:
  // Checks the bucket ("" only) and the key; returns the file's path.
  Result<std::string> PathOf(const ObjectRef& object) const;
  // Path of the staging directory of `upload_id` for the object at `path`.
  Result<std::string> StagingDirOf(const std::string& path, const std::string& upload_id) const;

  LocalStoreOptions options_;  // root always ends in '/'
};

}  // namespace trainfeed
