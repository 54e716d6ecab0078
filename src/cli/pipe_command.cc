// `trainfeed pipe`: Pipe mode without a job spec, so any program can be fed through FIFOs.
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "common/units.h"
#include "store/s3/aws_config.h"

namespace trainfeed {

int RunPipe(const GlobalFlags& flags, const PipeChannelConfig& config, const std::string& dir,
            const HostFlags& host_flags) {
  Result<HostIdentity> hosts = ResolveHostIdentity(host_flags, ProcessEnv, 1);
  if (!hosts.ok()) return ReportError(hosts.status());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ReportError(ErrnoToStatus(ec.value(), "create '" + dir + "'"));
  std::string abs_dir = std::filesystem::absolute(dir).lexically_normal().string();
  while (abs_dir.size() > 1 && abs_dir.back() == '/') abs_dir.pop_back();

  Result<std::unique_ptr<PipeItems>> loaded = LoadPipeItems(config, flags.store);
  if (!loaded.ok()) return ReportError(loaded.status());
  const PipeItems& items = **loaded;
  Result<FifoChannelOptions> options = FifoOptionsFor(config, items, *hosts, abs_dir);
  if (!options.ok()) return ReportError(options.status());
  if (Status s = PrepareFifos(abs_dir, config.name, options->prefetch.first_epoch); !s.ok()) {
    return ReportError(s);
  }
  options->cancel = &g_interrupted;
  if (flags.verbosity == 0) options->on_report = [](const std::string&) {};
  if (flags.verbosity > 0) {
    // A listing still streaming in is counted so far.
    const bool listed_all = items.listing_done();
    const uint64_t count = items.items.size();
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < count; ++i) {
      const PipeItem& item = items.items[i];
      bytes += item.is_text ? item.text.size() : item.size;
    }
    std::string who = hosts->hosts.size() > 1 ? ", host " + hosts->current_host + " of " +
                                                    std::to_string(hosts->hosts.size())
                                              : "";
    std::fprintf(stderr, "trainfeed: pipe '%s': %s%llu items (%s) from %s%s; first FIFO %s\n",
                 config.name.c_str(), listed_all ? "" : "listing; the first ",
                 static_cast<unsigned long long>(count),
                 FormatBytes(static_cast<double>(bytes)).c_str(), config.source.s3_uri.c_str(),
                 who.c_str(), FifoPath(abs_dir, config.name, options->prefetch.first_epoch).c_str());
  }
  Status s = RunFifoChannel(items, *options);
  if (s.code() == ErrorCode::kCancelled && g_interrupted.load()) {
    if (flags.verbosity > 0) std::fprintf(stderr, "trainfeed: %s\n", s.message().c_str());
    return 0;
  }
  if (!s.ok()) return ReportError(s);
  return 0;
}

}  // namespace trainfeed
