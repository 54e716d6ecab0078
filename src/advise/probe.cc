#include "advise/probe.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "common/units.h"

namespace trainfeed {

namespace {

class CountingSink final : public ByteSink {
 public:
  explicit CountingSink(const std::atomic<bool>* cancel) : cancel_(cancel) {}
  Status Append(const char*, size_t size) override {
    if (cancel_ && cancel_->load()) return CancelledError("interrupted");
    bytes += size;
    return OkStatus();
  }
  uint64_t bytes = 0;

 private:
  const std::atomic<bool>* cancel_;
};

struct RunResult {
  uint64_t bytes = 0;
  double seconds = 0;
  std::vector<double> latencies;  // per request, seconds
};

// Runs `requests` with up to `concurrency` in flight; the first failure wins.
Result<RunResult> RunGets(ObjectStore& store, const std::vector<GetRequest>& requests,
                          int concurrency, const std::atomic<bool>* cancel) {
  RunResult run;
  run.latencies.assign(requests.size(), 0);
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bytes{0};
  std::mutex mu;
  Status failure;  // Guarded by mu.
  auto started = std::chrono::steady_clock::now();
  auto worker = [&] {
    for (size_t i = next++; i < requests.size(); i = next++) {
      if (cancel && cancel->load()) return;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!failure.ok()) return;
      }
      CountingSink sink(cancel);
      auto t0 = std::chrono::steady_clock::now();
      Result<GetResult> got = store.Get(requests[i], sink);
      run.latencies[i] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      bytes += sink.bytes;
      if (!got.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (failure.ok()) {
          failure = got.status().WithContext("probe GET " + store.Describe(requests[i].object));
        }
        return;
      }
    }
  };
  size_t threads = std::min<size_t>(static_cast<size_t>(std::max(concurrency, 1)), requests.size());
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (std::thread& t : pool) t.join();
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  run.bytes = bytes.load();
  if (cancel && cancel->load()) return CancelledError("interrupted while probing");
  if (!failure.ok()) return failure;
  return run;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[(values.size() - 1) / 2];
}

}  // namespace

Result<ProbeResult> RunProbe(ObjectStore& store, const std::string& bucket,
                             const DatasetStats& stats, const ProbeOptions& options) {
  ProbeResult result;
  const ReadRates defaults = DefaultReadRates();
  std::vector<std::string> notes;

  // Small objects: per-request cost.
  std::vector<GetRequest> small;
  for (const KeyAndSize& o : stats.small_sample) {
    if (small.size() >= options.max_small_gets) break;
    GetRequest request;
    request.object = {bucket, o.key};
    if (o.size > options.max_small_get_bytes) request.range = ByteRange{0, options.max_small_get_bytes};
    small.push_back(std::move(request));
  }
  if (small.empty()) {
    // No small object: the same per-request cost, measured with 4 KiB heads of large ones.
    for (size_t i = 0; i < options.max_small_gets && !stats.largest_objects.empty(); ++i) {
      const KeyAndSize& o = stats.largest_objects[i % stats.largest_objects.size()];
      if (o.size == 0) break;
      GetRequest request;
      request.object = {bucket, o.key};
      request.range = ByteRange{0, std::min<uint64_t>(o.size, 4096)};
      small.push_back(std::move(request));
    }
    notes.push_back("no object under 50 MB: per-object cost measured with 4 KiB ranged GETs");
  }
  if (!small.empty()) {
    TF_ASSIGN_OR_RETURN(RunResult run, RunGets(store, small, options.concurrency, options.cancel));
    result.small_gets = small.size();
    result.small_bytes = run.bytes;
    result.small_seconds = run.seconds;
    result.latency_p50_seconds = Median(run.latencies);
  }

  // Large objects: streaming rate.
  std::vector<GetRequest> large;
  uint64_t planned = 0;
  for (const KeyAndSize& o : stats.largest_objects) {
    if (o.size < options.min_large_object_bytes || planned >= options.max_large_bytes) break;
    for (uint64_t begin = 0; begin < o.size && planned < options.max_large_bytes;) {
      uint64_t end = std::min({o.size, begin + options.part_size,
                               begin + (options.max_large_bytes - planned)});
      GetRequest request;
      request.object = {bucket, o.key};
      request.range = ByteRange{begin, end};
      large.push_back(std::move(request));
      planned += end - begin;
      begin = end;
    }
  }
  if (!large.empty()) {
    TF_ASSIGN_OR_RETURN(RunResult run, RunGets(store, large, options.concurrency, options.cancel));
    result.large_gets = large.size();
    result.large_bytes = run.bytes;
    result.large_seconds = run.seconds;
    result.large_measured = run.bytes > 0 && run.seconds > 0;
  }
  if (!result.large_measured) {
    notes.push_back("the largest object (" + FormatBytes(static_cast<double>(stats.largest.size)) +
                    ") is under " +
                    FormatBytes(static_cast<double>(options.min_large_object_bytes)) +
                    ": streaming rate not measured, default assumed");
  }

  ReadRates& rates = result.rates;
  rates.measured = true;
  rates.bytes_per_second = result.large_measured
                               ? static_cast<double>(result.large_bytes) / result.large_seconds
                               : defaults.bytes_per_second;
  if (result.small_gets > 0 && result.small_seconds > 0) {
    // Take out the time the small objects' bytes need at the streaming rate, since the
    // estimates add bytes / bytes_per_second on their own; keep at least a tenth of the run so
    // a noisy large rate cannot make the request rate infinite.
    double byte_time = static_cast<double>(result.small_bytes) / rates.bytes_per_second;
    double request_time = std::max(result.small_seconds - byte_time, result.small_seconds * 0.1);
    rates.objects_per_second = static_cast<double>(result.small_gets) / request_time;
    rates.object_latency_seconds = result.latency_p50_seconds;
  } else {
    rates.objects_per_second = defaults.objects_per_second;
    rates.object_latency_seconds = defaults.object_latency_seconds;
    notes.push_back("no object to probe: default per-object rates");
  }
  for (const std::string& n : notes) result.note += (result.note.empty() ? "" : "; ") + n;
  return result;
}

}  // namespace trainfeed
