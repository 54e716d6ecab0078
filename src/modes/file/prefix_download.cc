#include "modes/file/prefix_download.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "dataset/local_names.h"

namespace trainfeed {

namespace {

// Runs `produce` (which Add()s items) against a started Downloader, with the progress and
// cancellation ticker around it. `produce` returns the status that stops the run early, if any.
DownloadReport RunDownload(ObjectStore& store, const std::string& destination_dir,
                           const FileModeOptions& options,
                           const std::function<Status(Downloader&)>& produce) {
  Downloader downloader(store, options.download);
  DownloadReport report;
  if (Status s = downloader.Start(destination_dir); !s.ok()) {
    report.fatal = s;
    return report;
  }
  // Ticks on its own thread so a slow listing page or a full queue never delays it.
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
  Status produced = produce(downloader);
  if (!produced.ok()) downloader.Cancel(produced);
  report = downloader.Finish();
  {
    std::lock_guard<std::mutex> lock(tick_mu);
    done = true;
  }
  tick_cv.notify_all();
  ticker.join();
  if (options.on_progress) options.on_progress(downloader.progress(), true);
  return report;
}

Status NoObjects(const StoreUri& source) {
  return NotFoundError("no objects match " + source.ToString() +
                       " (an empty channel is an error: check the prefix)");
}

}  // namespace

DownloadReport DownloadPrefix(ObjectStore& store, const StoreUri& source,
                              const std::string& destination_dir, const FileModeOptions& options) {
  uint64_t listed = 0;
  DownloadReport report = RunDownload(store, destination_dir, options, [&](Downloader& d) {
    for (PrefixPages pages(store, source); pages.more();) {
      Result<std::vector<ObjectInfo>> page = pages.Next();
      if (!page.ok()) return page.status();
      for (ObjectInfo& info : *page) {
        ++listed;
        Result<std::string> local = LocalNameForPrefixKey(source.key, info.key);
        if (!local.ok()) {
          d.AddFailure(info.key, local.status());
          continue;
        }
        if (!d.Add({{source.bucket, info.key}, std::move(info), std::move(*local)})) {
          return OkStatus();  // stopped: the downloader already knows why
        }
      }
    }
    return OkStatus();
  });
  if (report.fatal.ok() && listed == 0) report.fatal = NoObjects(source);
  return report;
}

DownloadReport DownloadItems(ObjectStore& store, std::vector<DownloadItem> items,
                             const std::string& destination_dir, const FileModeOptions& options) {
  return RunDownload(store, destination_dir, options, [&](Downloader& d) {
    for (DownloadItem& item : items) {
      if (!d.Add(std::move(item))) break;
    }
    return OkStatus();
  });
}

PrefixPages::PrefixPages(ObjectStore& store, const StoreUri& source, int first_page_keys)
    : store_(&store) {
  request_.bucket = source.bucket;
  request_.prefix = source.key;
  request_.max_keys = first_page_keys;
}

Result<std::vector<ObjectInfo>> PrefixPages::Next() {
  TF_ASSIGN_OR_RETURN(ListPage page, store_->List(request_));
  std::vector<ObjectInfo> objects;
  objects.reserve(page.objects.size());
  for (ObjectInfo& info : page.objects) {
    if (!IsFolderMarker(info.key)) objects.push_back(std::move(info));
  }
  request_.continuation_token = page.next_continuation_token;
  request_.max_keys = ListRequest{}.max_keys;
  more_ = !request_.continuation_token.empty();
  return objects;
}

Result<std::vector<ObjectInfo>> ListPrefix(ObjectStore& store, const StoreUri& source) {
  std::vector<ObjectInfo> objects;
  for (PrefixPages pages(store, source); pages.more();) {
    TF_ASSIGN_OR_RETURN(std::vector<ObjectInfo> page, pages.Next());
    for (ObjectInfo& info : page) objects.push_back(std::move(info));
  }
  if (objects.empty()) return NoObjects(source);
  return objects;
}

}  // namespace trainfeed
