// Listing snapshots: a FileTree saved to a local file, so re-mounting a dataset that is known not
// to have changed skips the listing (100k objects: seconds of ListObjectsV2 pages -> milliseconds).
//
// The file holds the tree's flat arrays as they are in memory, behind a header that names the
// source it was listed from and a CRC-32C of everything after it. A snapshot is only used for the
// same source (endpoint + URI) and the same build layout; anything else (missing, corrupt, other
// source, other layout) makes the caller list again. A snapshot is a promise that the dataset has
// not changed: objects deleted since then read as EIO, objects added are not seen, and an object
// rewritten in place fails its reads (If-Match on the listed ETag), never mixing bytes.
#pragma once

#include <string>

#include "common/status.h"
#include "modes/fastfile/tree.h"

namespace trainfeed {

// Writes `tree` to `path` atomically (a temporary file in the same folder, fsync'd and renamed).
// `source` identifies the listing, e.g. "http://127.0.0.1:7480 s3://bucket/prefix/".
Status SaveTreeSnapshot(const FileTree& tree, const std::string& source, const std::string& path);

// Reads the snapshot at `path`. NotFound when there is none; InvalidArgument when it was saved for
// another source; DataLoss when it is damaged, truncated or from an incompatible build.
Result<FileTree> LoadTreeSnapshot(const std::string& path, const std::string& source);

}  // namespace trainfeed
