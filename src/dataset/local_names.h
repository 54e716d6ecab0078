// Where an object lands on local disk: SageMaker's File-mode naming rule, plus the safety checks
// that keep every write inside the channel directory.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace trainfeed {

// The local path (relative, '/'-separated) of object `key` listed under S3Prefix `prefix`:
//   - prefix empty or ending in '/': key minus prefix;
//   - key starts with prefix + "/" (the prefix names a folder): key minus prefix + "/";
//   - otherwise (prefix ends inside a name, or names one object): the key relative to the last
//     '/' of the prefix, so s3://b/data/train matching data/train-1.csv gives "train-1.csv".
// REQUIRES: key starts with prefix.
// InvalidArgument, naming the key, when the result would not be a safe relative path: empty,
// absolute, a "." or ".." component, an empty component ("a//b"), a NUL byte, or a component
// longer than 255 bytes. Folder markers (keys ending in '/') are not objects: callers skip them.
Result<std::string> LocalNameForPrefixKey(std::string_view prefix, std::string_view key);

// Checks that `relative` is a safe relative path as described above; returns it unchanged.
Result<std::string> CheckSafeRelativePath(std::string_view relative, std::string_view key);

// True for S3 "folder marker" keys (end in '/'), which File mode skips.
inline bool IsFolderMarker(std::string_view key) { return !key.empty() && key.back() == '/'; }

}  // namespace trainfeed
