// Which host of a multi-host job this process is, and who its peers are: the `hosts` and
// `current_host` of resourceconfig.json, also the basis of ShardedByS3Key sharding.
//
// Pure: flags and environment are inputs. Sources, highest precedence first:
//   1. --hosts a,b,c --current-host b (names kept as given, in the order given). Without
//      --current-host, the rank of the first scheduler source below picks the name, so the same
//      --hosts list can be passed to every task;
//   2. Slurm:      SLURM_PROCID, SLURM_NTASKS (one task per host: launch with srun);
//   3. torchrun:   RANK, WORLD_SIZE (--nproc-per-node=1; LOCAL_WORLD_SIZE > 1 is refused);
//   4. Open MPI:   OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE (one rank per host);
//   5. Kubernetes indexed Job: JOB_COMPLETION_INDEX, with the host count from
//      TRAINFEED_HOST_COUNT, else the job's InstanceCount;
//   6. none: a single host, unless InstanceCount > 1, which is an error.
// A scheduler source needs both of its variables; one alone is ignored with a note. Sources 2-5
// give rank r of n, which becomes hosts algo-1..algo-n in numeric order (algo-10 after algo-9)
// and current host algo-(r+1). Every host must therefore see the same n. Lower-precedence sources
// that disagree with the one used are not errors (wrappers often leave stale variables behind)
// but are reported in `notes`.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/env.h"
#include "common/status.h"

namespace trainfeed {

struct HostIdentity {
  std::vector<std::string> hosts;  // never empty, no duplicates
  std::string current_host;        // one of `hosts`
  // Where the identity came from, for logs: "--hosts", "Slurm", "torchrun", "Open MPI",
  // "Kubernetes", "single host".
  std::string source;
  // Things the caller should log once: ignored or disagreeing sources, an InstanceCount that
  // differs from the host count.
  std::vector<std::string> notes;

  // Position of current_host in hosts (its rank); hosts.size() if absent, which Resolve never
  // returns.
  size_t index() const;
};

// Command-line flags; "" means not given.
struct HostFlags {
  std::string hosts;         // --hosts, comma-separated
  std::string current_host;  // --current-host
};

// `instance_count` is the job's ResourceConfig.InstanceCount; it sizes a Kubernetes indexed Job
// without TRAINFEED_HOST_COUNT and guards the single-host fallback.
// InvalidArgument, naming the flag or variable, for: a malformed or out-of-range number, an empty
// or duplicate host name, a current host not in the list, --hosts with several names but no
// --current-host, or InstanceCount > 1 with no identity source at all.
Result<HostIdentity> ResolveHostIdentity(const HostFlags& flags, const EnvLookup& getenv,
                                         int instance_count);

// "algo-1".."algo-<count>", in numeric order.
std::vector<std::string> AlgoHostNames(size_t count);

}  // namespace trainfeed
