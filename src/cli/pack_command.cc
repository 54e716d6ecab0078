// `trainfeed pack SRC DST`: many small objects into shards with an index (pack/packer.h), and
// `--verify` of a finished pack (pack/verify.h).
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "common/units.h"
#include "pack/verify.h"
#include "transfer/progress_line.h"

namespace trainfeed {

namespace {

int RunVerify(const GlobalFlags& flags, ObjectStore& src, const StoreUri& source, ObjectStore& dst,
              const StoreUri& destination, const PackOptions& options) {
  VerifyOptions verify;
  verify.concurrency = options.concurrency;
  verify.cancel = &g_interrupted;
  VerifyReport report = VerifyPack(src, source, dst, destination, verify);
  if (!report.fatal.ok()) return ReportError(report.fatal);
  for (const std::string& line : report.lines) {
    std::fprintf(stderr, "trainfeed: error: %s\n", line.c_str());
  }
  if (report.problems > report.lines.size()) {
    std::fprintf(stderr, "trainfeed: error: ... and %llu more problems\n",
                 static_cast<unsigned long long>(report.problems - report.lines.size()));
  }
  double seconds = report.elapsed.count();
  if (!flags.quiet || report.problems > 0) {
    std::fprintf(stderr,
                 "verify: %llu members in %llu shards (%s) checked against the index and the "
                 "source (%s) in %s: %s\n",
                 static_cast<unsigned long long>(report.members),
                 static_cast<unsigned long long>(report.shards),
                 FormatBytes(static_cast<double>(report.shard_bytes)).c_str(),
                 FormatBytes(static_cast<double>(report.source_bytes)).c_str(),
                 FormatDuration(seconds).c_str(),
                 report.problems == 0
                     ? "OK"
                     : (std::to_string(report.problems) + " problems").c_str());
  }
  return report.ok() ? 0 : 1;
}

}  // namespace

int RunPack(const GlobalFlags& flags, const std::string& source_text,
            const std::string& destination_text, PackOptions options, bool verify) {
  Result<StoreUri> source = ParseStoreUri(source_text);
  if (!source.ok()) return ReportError(source.status());
  Result<StoreUri> destination = ParseStoreUri(destination_text);
  if (!destination.ok()) return ReportError(destination.status());
  Result<std::unique_ptr<ObjectStore>> src = OpenObjectStore(*source, flags.store);
  if (!src.ok()) return ReportError(src.status());
  Result<std::unique_ptr<ObjectStore>> dst = OpenObjectStore(*destination, flags.store);
  if (!dst.ok()) return ReportError(dst.status());
  if (verify) return RunVerify(flags, **src, *source, **dst, *destination, options);

  DownloadProgress counters;
  options.progress = &counters;
  options.cancel = &g_interrupted;
  ProgressLine progress("pack", flags.quiet);
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::thread ticker([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return finished; })) {
      if (counters.listing_done.load()) progress.Update(counters, false);
    }
  });
  PackReport report = Pack(**src, *source, **dst, *destination, options);
  {
    std::lock_guard<std::mutex> lock(mu);
    finished = true;
  }
  cv.notify_all();
  ticker.join();
  if (!flags.quiet && ::isatty(STDERR_FILENO) == 1) std::fprintf(stderr, "\r\033[K");
  if (!report.ok() && report.writing_started) {
    std::fprintf(stderr, "pack: incomplete: %llu of %llu shards done (%llu written now); no "
                 "index.json written, run again to resume\n",
                 static_cast<unsigned long long>(report.shards_kept + report.shards_written),
                 static_cast<unsigned long long>(report.shards),
                 static_cast<unsigned long long>(report.shards_written));
  }
  if (!report.ok()) return ReportError(report.fatal);
  if (!flags.quiet) {
    double seconds = report.elapsed.count();
    std::string extra;
    if (report.aborted_uploads > 0) {
      extra += ", " + std::to_string(report.aborted_uploads) + " unfinished uploads aborted";
    }
    if (report.removed_stale > 0) {
      extra += ", " + std::to_string(report.removed_stale) + " stale objects removed";
    }
    std::fprintf(stderr,
                 "pack: %llu members (%s) in %llu shards (%llu written, %llu kept) -> %s in %s, "
                 "%s/s%s\n",
                 static_cast<unsigned long long>(report.members),
                 FormatBytes(static_cast<double>(report.member_bytes)).c_str(),
                 static_cast<unsigned long long>(report.shards),
                 static_cast<unsigned long long>(report.shards_written),
                 static_cast<unsigned long long>(report.shards_kept),
                 destination->ToString().c_str(), FormatDuration(seconds).c_str(),
                 FormatBytes(seconds > 0 ? static_cast<double>(report.bytes_read) / seconds : 0)
                     .c_str(),
                 extra.c_str());
  }
  return 0;
}

}  // namespace trainfeed
