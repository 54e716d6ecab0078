#include "modes/file/prefix_download.h"

#include <atomic>
#include <condition_variable>
#include <thread>

#include "dataset/local_names.h"

namespace trainfeed {

DownloadReport DownloadPrefix(ObjectStore& store, const StoreUri& source,
                              const std::string& destination_dir,
                              const PrefixDownloadOptions& options) {
  Downloader downloader(store, options.download);
  DownloadReport report;
  if (Status s = downloader.Start(destination_dir); !s.ok()) {
    report.fatal = s;
    return report;
  }

  // Progress ticks on its own thread so a slow page or a blocked queue never delays it.
  std::mutex tick_mu;
  std::condition_variable tick_cv;
  bool done = false;
  std::thread ticker([&] {
    std::unique_lock<std::mutex> lock(tick_mu);
    while (!tick_cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return done; })) {
      if (options.cancel && options.cancel->load()) {
        downloader.Cancel(CancelledError("interrupted"));
      }
      if (options.on_progress) options.on_progress(downloader.progress(), false);
    }
  });

  ListRequest request;
  request.bucket = source.bucket;
  request.prefix = source.key;
  uint64_t index = 0;
  Status listing_status;
  bool stopped = false;
  do {
    Result<ListPage> page = store.List(request);
    if (!page.ok()) {
      listing_status = page.status();
      break;
    }
    for (ObjectInfo& info : page->objects) {
      if (IsFolderMarker(info.key)) continue;
      uint64_t i = index++;
      if (options.select && !options.select(i, info)) continue;
      Result<std::string> local = LocalNameForPrefixKey(source.key, info.key);
      if (!local.ok()) {
        downloader.AddFailure(info.key, local.status());
        continue;
      }
      DownloadItem item{{source.bucket, info.key}, std::move(info), std::move(*local)};
      if (!downloader.Add(std::move(item))) {
        stopped = true;
        break;
      }
    }
    request.continuation_token = page->next_continuation_token;
  } while (!stopped && !request.continuation_token.empty());

  if (!listing_status.ok()) downloader.Cancel(listing_status);
  report = downloader.Finish();
  if (report.fatal.ok() && index == 0) {
    report.fatal = NotFoundError("no objects match " + source.ToString() +
                                 " (an empty channel is an error: check the prefix)");
  }
  {
    std::lock_guard<std::mutex> lock(tick_mu);
    done = true;
  }
  tick_cv.notify_all();
  ticker.join();
  if (options.on_progress) options.on_progress(downloader.progress(), true);
  return report;
}

}  // namespace trainfeed
