#include "store/store_uri.h"

#include <filesystem>

namespace trainfeed {

std::string StoreUri::ToString() const {
  if (scheme == Scheme::kS3) return "s3://" + bucket + "/" + key;
  return "file:///" + key;
}

Result<StoreUri> ParseStoreUri(std::string_view uri) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("URI '" + std::string(uri) + "': " + std::string(why));
  };
  if (uri.find('\0') != std::string_view::npos) return bad("contains a NUL byte");
  StoreUri out;
  if (uri.starts_with("s3://")) {
    std::string_view rest = uri.substr(5);
    size_t slash = rest.find('/');
    std::string_view bucket = rest.substr(0, slash);
    if (bucket.empty()) return bad("no bucket name");
    // S3 bucket names: 3-63 of [a-z0-9.-]; we also accept '_' and upper case, which some
    // S3-compatible servers allow, but never anything that could break a URL or a path.
    for (char c : bucket) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '-' || c == '_';
      if (!ok) return bad("bucket name has character '" + std::string(1, c) + "'");
    }
    out.scheme = StoreUri::Scheme::kS3;
    out.bucket = std::string(bucket);
    if (slash != std::string_view::npos) out.key = std::string(rest.substr(slash + 1));
    return out;
  }
  if (uri.starts_with("file://")) {
    std::string path(uri.substr(7));
    if (path.empty()) return bad("no path");
    bool trailing_slash = path.back() == '/';
    std::filesystem::path p = path;
    if (p.is_relative()) p = std::filesystem::current_path() / p;
    std::string abs = p.lexically_normal().string();
    // lexically_normal drops a trailing "/." but keeps a trailing '/'; the slash matters for
    // prefix semantics, so restore it exactly as given.
    if (trailing_slash && (abs.empty() || abs.back() != '/')) abs += '/';
    if (!trailing_slash && abs.size() > 1 && abs.back() == '/') abs.pop_back();
    out.scheme = StoreUri::Scheme::kFile;
    out.key = abs.substr(1);
    return out;
  }
  return bad("expected s3://bucket/prefix or file:///path");
}

}  // namespace trainfeed
