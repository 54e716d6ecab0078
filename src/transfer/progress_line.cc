#include "transfer/progress_line.h"

#include <unistd.h>

#include <cstdio>

#include "common/units.h"

namespace trainfeed {

ProgressLine::ProgressLine(std::string label, bool quiet)
    : label_(std::move(label)),
      quiet_(quiet),
      tty_(::isatty(STDERR_FILENO) == 1),
      started_(std::chrono::steady_clock::now()),
      last_print_(started_) {}

void ProgressLine::Update(const DownloadProgress& p, bool final) {
  if (quiet_) return;
  auto now = std::chrono::steady_clock::now();
  if (!final && !tty_ && now - last_print_ < plain_interval_) return;
  last_print_ = now;
  double seconds = std::chrono::duration<double>(now - started_).count();
  double received = static_cast<double>(p.bytes_received.load());
  double rate = seconds > 0 ? received / seconds : 0;
  uint64_t done_bytes = p.bytes_done.load(), total_bytes = p.bytes_queued.load();
  uint64_t done_objects = p.objects_done.load(), total_objects = p.objects_queued.load();
  bool totals_known = p.listing_done.load();
  std::string line = label_ + ": ";
  if (final) {
    line += std::to_string(done_objects) + " objects (" + FormatBytes(done_bytes) + ") in " +
            FormatDuration(seconds) + ", " + FormatBytes(rate) + "/s";
    if (p.objects_skipped.load() > 0) {
      line += ", " + std::to_string(p.objects_skipped.load()) + " already complete";
    }
    if (p.objects_failed.load() > 0) line += ", " + std::to_string(p.objects_failed.load()) + " failed";
  } else {
    line += FormatBytes(done_bytes) + " / " + FormatBytes(total_bytes) + (totals_known ? "" : "+");
    line += ", " + std::to_string(done_objects) + "/" + std::to_string(total_objects) +
            (totals_known ? "" : "+") + " objects, " + FormatBytes(rate) + "/s";
    if (totals_known && rate > 0 && total_bytes >= done_bytes) {
      line += ", ETA " + FormatDuration(static_cast<double>(total_bytes - done_bytes) / rate);
    }
  }
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace trainfeed
