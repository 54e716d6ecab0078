#include "cluster/host_identity.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

namespace trainfeed {
namespace {

// A scheduler's view: this process is rank `rank` of `size`.
struct RankSource {
  std::string name;  // "Slurm", ...
  std::string rank_var;
  std::string size_var;
  size_t rank = 0;
  size_t size = 0;
  // Why this source cannot name hosts, if it is the one chosen; "" when it can.
  std::string unusable;
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Strict decimal: digits only (surrounding blanks allowed), at most a million, so a typo such as
// "4,096" or "-1" is an error rather than a silently different cluster.
Result<size_t> ParseCount(std::string_view what, std::string_view text) {
  constexpr uint64_t kMax = 1000000;
  std::string_view t = Trim(text);
  if (t.empty()) return InvalidArgumentError(std::string(what) + " is empty");
  uint64_t v = 0;
  for (char c : t) {
    if (c >= '0' && c <= '9') v = v * 10 + static_cast<uint64_t>(c - '0');
    if (c < '0' || c > '9' || v > kMax) {
      return InvalidArgumentError(std::string(what) + "='" + std::string(text) +
                                  "' is not a non-negative integer up to " + std::to_string(kMax));
    }
  }
  return static_cast<size_t>(v);
}

std::string Describe(const RankSource& s) {
  return s.name + " (" + s.rank_var + "=" + std::to_string(s.rank) + ", " + s.size_var + "=" +
         std::to_string(s.size) + ")";
}

// Reads one scheduler's pair of variables: nullopt when neither is set, a note when only one is.
// A malformed or out-of-range value makes the source `unusable`, which is an error only if it is
// the source that decides.
std::optional<RankSource> ReadRankSource(const EnvLookup& getenv, std::string name,
                                         std::string rank_var, std::string size_var,
                                         std::vector<std::string>& notes) {
  std::optional<std::string> rank = getenv(rank_var);
  std::optional<std::string> size = getenv(size_var);
  if (!rank && !size) return std::nullopt;
  if (!rank || !size) {
    notes.push_back(name + " ignored: " + (rank ? rank_var : size_var) + " is set but " +
                    (rank ? size_var : rank_var) + " is not");
    return std::nullopt;
  }
  RankSource s;
  s.name = std::move(name);
  s.rank_var = std::move(rank_var);
  s.size_var = std::move(size_var);
  Result<size_t> r = ParseCount(s.rank_var, *rank);
  Result<size_t> n = ParseCount(s.size_var, *size);
  if (!r.ok()) {
    s.unusable = r.status().message();
  } else if (!n.ok()) {
    s.unusable = n.status().message();
  } else if (*n == 0) {
    s.unusable = s.size_var + " is 0";
  } else if (*r >= *n) {
    s.unusable = s.rank_var + "=" + std::to_string(*r) + " is out of range for " + s.size_var +
                 "=" + std::to_string(*n);
  } else {
    s.rank = *r;
    s.size = *n;
  }
  return s;
}

// All scheduler sources present in the environment, highest precedence first.
std::vector<RankSource> ReadRankSources(const EnvLookup& getenv, int instance_count,
                                        std::vector<std::string>& notes) {
  std::vector<RankSource> found;
  auto add = [&](std::optional<RankSource> s) {
    if (s) found.push_back(std::move(*s));
  };
  add(ReadRankSource(getenv, "Slurm", "SLURM_PROCID", "SLURM_NTASKS", notes));
  std::optional<RankSource> torchrun =
      ReadRankSource(getenv, "torchrun", "RANK", "WORLD_SIZE", notes);
  if (torchrun && torchrun->unusable.empty()) {
    // torchrun's RANK counts processes, not hosts: with several per node every GPU process
    // would claim to be a separate host.
    if (std::optional<std::string> local = getenv("LOCAL_WORLD_SIZE")) {
      Result<size_t> local_size = ParseCount("LOCAL_WORLD_SIZE", *local);
      if (!local_size.ok()) {
        torchrun->unusable = local_size.status().message();
      } else if (*local_size > 1) {
        torchrun->unusable = "LOCAL_WORLD_SIZE=" + std::to_string(*local_size) +
                             ": torchrun must start one trainfeed per host "
                             "(--nproc-per-node=1); the training script starts its own workers";
      }
    }
  }
  add(std::move(torchrun));
  add(ReadRankSource(getenv, "Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", notes));

  if (std::optional<std::string> index = getenv("JOB_COMPLETION_INDEX")) {
    // An indexed Job only numbers its pods; the count comes from us.
    std::optional<std::string> count = getenv("TRAINFEED_HOST_COUNT");
    if (!count) count = std::to_string(instance_count > 0 ? instance_count : 1);
    std::optional<RankSource> k8s = ReadRankSource(
        [&](const std::string& var) { return var == "JOB_COMPLETION_INDEX" ? index : count; },
        "Kubernetes", "JOB_COMPLETION_INDEX",
        getenv("TRAINFEED_HOST_COUNT") ? "TRAINFEED_HOST_COUNT" : "InstanceCount", notes);
    if (k8s && k8s->unusable.find("out of range") != std::string::npos) {
      k8s->unusable += "; set TRAINFEED_HOST_COUNT (or InstanceCount) to the Job's completions";
    }
    add(std::move(k8s));
  }
  return found;
}

Result<std::vector<std::string>> SplitHosts(std::string_view csv) {
  std::vector<std::string> hosts;
  std::set<std::string, std::less<>> seen;
  size_t start = 0;
  while (true) {
    size_t comma = csv.find(',', start);
    std::string_view name =
        Trim(csv.substr(start, comma == std::string_view::npos ? csv.npos : comma - start));
    if (name.empty()) {
      return InvalidArgumentError("--hosts '" + std::string(csv) + "' has an empty host name");
    }
    if (!seen.insert(std::string(name)).second) {
      return InvalidArgumentError("--hosts '" + std::string(csv) + "' lists '" + std::string(name) +
                                  "' twice");
    }
    hosts.emplace_back(name);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return hosts;
}

void NoteDisagreements(const std::vector<RankSource>& sources, size_t used_rank, size_t used_size,
                       const std::string& used_name, std::vector<std::string>& notes) {
  for (const RankSource& s : sources) {
    if (!s.unusable.empty()) {
      notes.push_back(s.name + " ignored: " + s.unusable);
    } else if (s.rank != used_rank || s.size != used_size) {
      notes.push_back(Describe(s) + " disagrees with " + used_name + "; using " + used_name);
    }
  }
}

// With explicit names a scheduler can only disagree about the count or our position.
void NoteOverriddenSources(const std::vector<RankSource>& sources, const HostIdentity& id,
                           std::vector<std::string>& notes) {
  for (const RankSource& s : sources) {
    if (!s.unusable.empty()) {
      notes.push_back(s.name + " ignored: " + s.unusable);
    } else if (s.size != id.hosts.size() || s.rank != id.index()) {
      notes.push_back(Describe(s) + " disagrees with --hosts/--current-host; using the flags");
    }
  }
}

void NoteInstanceCount(size_t hosts, int instance_count, std::vector<std::string>& notes) {
  if (instance_count > 0 && static_cast<size_t>(instance_count) != hosts) {
    notes.push_back("InstanceCount is " + std::to_string(instance_count) + " but the job runs on " +
                    std::to_string(hosts) + " host(s)");
  }
}

}  // namespace

size_t HostIdentity::index() const {
  auto it = std::find(hosts.begin(), hosts.end(), current_host);
  return static_cast<size_t>(it - hosts.begin());
}

std::vector<std::string> AlgoHostNames(size_t count) {
  std::vector<std::string> hosts;
  hosts.reserve(count);
  for (size_t i = 1; i <= count; ++i) hosts.push_back("algo-" + std::to_string(i));
  return hosts;
}

Result<HostIdentity> ResolveHostIdentity(const HostFlags& flags, const EnvLookup& getenv,
                                         int instance_count) {
  HostIdentity id;
  std::vector<RankSource> sources = ReadRankSources(getenv, instance_count, id.notes);

  if (!flags.hosts.empty() || !flags.current_host.empty()) {
    id.source = "--hosts";
    std::string current(Trim(flags.current_host));
    if (flags.hosts.empty()) {
      if (current.empty()) return InvalidArgumentError("--current-host is empty");
      // A lone --current-host names a single-host job.
      if (instance_count > 1) {
        return InvalidArgumentError("--current-host '" + current +
                                    "' needs --hosts: InstanceCount is " +
                                    std::to_string(instance_count));
      }
      id.hosts = {current};
      id.current_host = current;
      NoteOverriddenSources(sources, id, id.notes);
      return id;
    }
    TF_ASSIGN_OR_RETURN(id.hosts, SplitHosts(flags.hosts));
    if (current.empty() && id.hosts.size() == 1) current = id.hosts[0];
    if (current.empty()) {
      // The same --hosts list can be given to every task; the scheduler says which one we are.
      if (sources.empty()) {
        return InvalidArgumentError("--hosts lists " + std::to_string(id.hosts.size()) +
                                    " hosts but neither --current-host nor a scheduler rank "
                                    "(Slurm, torchrun, Open MPI, Kubernetes) says which one "
                                    "this is");
      }
      const RankSource& s = sources.front();
      if (!s.unusable.empty()) return InvalidArgumentError(s.name + ": " + s.unusable);
      if (s.size != id.hosts.size()) {
        return InvalidArgumentError("--hosts lists " + std::to_string(id.hosts.size()) +
                                    " hosts but " + Describe(s) + " has " + std::to_string(s.size));
      }
      current = id.hosts[s.rank];
      id.source = "--hosts + " + s.name;
      NoteDisagreements(sources, s.rank, s.size, s.name, id.notes);
    } else if (std::find(id.hosts.begin(), id.hosts.end(), current) == id.hosts.end()) {
      return InvalidArgumentError("--current-host '" + current + "' is not in --hosts '" +
                                  flags.hosts + "'");
    }
    id.current_host = current;
    if (id.source == "--hosts") NoteOverriddenSources(sources, id, id.notes);
    NoteInstanceCount(id.hosts.size(), instance_count, id.notes);
    return id;
  }

  if (!sources.empty()) {
    const RankSource& s = sources.front();
    if (!s.unusable.empty()) return InvalidArgumentError(s.name + ": " + s.unusable);
    id.source = s.name;
    id.hosts = AlgoHostNames(s.size);
    id.current_host = id.hosts[s.rank];
    NoteDisagreements(sources, s.rank, s.size, s.name, id.notes);
    NoteInstanceCount(s.size, instance_count, id.notes);
    return id;
  }

  if (instance_count > 1) {
    return InvalidArgumentError(
        "InstanceCount is " + std::to_string(instance_count) +
        " but nothing says which host this is: pass --hosts (the same list to every host) and "
        "--current-host, or start one trainfeed per host with srun (Slurm), torchrun "
        "--nproc-per-node=1, mpirun (Open MPI) or a Kubernetes indexed Job");
  }
  id.source = "single host";
  id.hosts = AlgoHostNames(1);
  id.current_host = id.hosts[0];
  return id;
}

}  // namespace trainfeed
