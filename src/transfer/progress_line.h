// The progress line of long transfers: redrawn in place on a terminal, a plain line every
// `plain_interval` otherwise (logs, CI), and a summary at the end. Writes to stderr.
#pragma once

#include <chrono>
#include <string>

#include "transfer/downloader.h"

namespace trainfeed {

class ProgressLine {
 public:
  explicit ProgressLine(std::string label, bool quiet = false);
  void Update(const DownloadProgress& progress, bool final);

 private:
  std::string label_;
  bool quiet_;
  bool tty_;
  std::chrono::steady_clock::time_point started_, last_print_;
  std::chrono::seconds plain_interval_{10};
};

}  // namespace trainfeed
