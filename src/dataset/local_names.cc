#include "dataset/local_names.h"

namespace trainfeed {

Result<std::string> CheckSafeRelativePath(std::string_view relative, std::string_view key) {
  auto refuse = [&](std::string_view why) {
    return InvalidArgumentError("key '" + std::string(key) + "' " + std::string(why) +
                                "; refusing to write it");
  };
  if (relative.empty()) return refuse("maps to an empty local name");
  if (relative.find('\0') != std::string_view::npos) return refuse("contains a NUL byte");
  if (relative.front() == '/') return refuse("maps to an absolute path");
  size_t start = 0;
  while (start <= relative.size()) {
    size_t end = relative.find('/', start);
    if (end == std::string_view::npos) end = relative.size();
    std::string_view part = relative.substr(start, end - start);
    if (part.empty()) return refuse("has an empty path component ('//')");
    if (part == "." || part == "..") return refuse("has a '" + std::string(part) + "' component");
    // NAME_MAX on every common Linux file system.
    if (part.size() > 255) return refuse("has a path component longer than 255 bytes");
    start = end + 1;
  }
  return std::string(relative);
}

Result<std::string> LocalNameForPrefixKey(std::string_view prefix, std::string_view key) {
  std::string_view relative;
  if (prefix.empty() || prefix.back() == '/') {
    relative = key.substr(prefix.size());
  } else if (key.size() > prefix.size() && key[prefix.size()] == '/') {
    relative = key.substr(prefix.size() + 1);
  } else {
    size_t last_slash = prefix.rfind('/');
    relative = last_slash == std::string_view::npos ? key : key.substr(last_slash + 1);
  }
  return CheckSafeRelativePath(relative, key);
}

}  // namespace trainfeed
