#include "cluster/host_identity.h"

#include <gtest/gtest.h>

#include <map>

namespace trainfeed {
namespace {

using Env = std::map<std::string, std::string>;

EnvLookup LookupIn(const Env& env) {
  return [&env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

Result<HostIdentity> Resolve(const Env& env, int instance_count = 1, HostFlags flags = {}) {
  return ResolveHostIdentity(flags, LookupIn(env), instance_count);
}

std::string ErrorOf(const Result<HostIdentity>& r) { return r.ok() ? "OK" : r.status().ToString(); }

bool HasNoteContaining(const HostIdentity& id, std::string_view text) {
  for (const std::string& n : id.notes) {
    if (n.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(HostIdentity, NoSourceIsASingleHost) {
  Result<HostIdentity> r = Resolve({});
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->hosts, std::vector<std::string>{"algo-1"});
  EXPECT_EQ(r->current_host, "algo-1");
  EXPECT_EQ(r->index(), 0u);
  EXPECT_EQ(r->source, "single host");
  EXPECT_TRUE(r->notes.empty());
  EXPECT_TRUE(Resolve({}, 0).ok()) << "InstanceCount unset";
}

TEST(HostIdentity, SeveralInstancesWithoutASourceSayHowToPassIdentity) {
  Result<HostIdentity> r = Resolve({}, 4);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  for (const char* hint : {"InstanceCount is 4", "--hosts", "--current-host", "srun", "torchrun",
                           "mpirun", "indexed Job"}) {
    EXPECT_NE(r.status().message().find(hint), std::string::npos) << hint;
  }
}

TEST(HostIdentity, SlurmRankNamesAlgoHostsInNumericOrder) {
  Result<HostIdentity> r = Resolve({{"SLURM_PROCID", "9"}, {"SLURM_NTASKS", "12"}}, 12);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  ASSERT_EQ(r->hosts.size(), 12u);
  EXPECT_EQ(r->hosts[0], "algo-1");
  EXPECT_EQ(r->hosts[8], "algo-9");
  EXPECT_EQ(r->hosts[9], "algo-10") << "numeric, not lexicographic";
  EXPECT_EQ(r->hosts[11], "algo-12");
  EXPECT_EQ(r->current_host, "algo-10");
  EXPECT_EQ(r->index(), 9u);
  EXPECT_EQ(r->source, "Slurm");
  EXPECT_TRUE(r->notes.empty());
}

TEST(HostIdentity, EachSchedulerIsRecognised) {
  struct Case {
    Env env;
    std::string source;
    std::string current;
  };
  const Case cases[] = {
      {{{"RANK", "1"}, {"WORLD_SIZE", "2"}}, "torchrun", "algo-2"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_WORLD_SIZE", "1"}}, "torchrun", "algo-1"},
      {{{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "3"}}, "Open MPI", "algo-3"},
      {{{"JOB_COMPLETION_INDEX", "3"}, {"TRAINFEED_HOST_COUNT", "4"}}, "Kubernetes", "algo-4"},
  };
  for (const Case& c : cases) {
    Result<HostIdentity> r = Resolve(c.env, 0);
    ASSERT_TRUE(r.ok()) << c.source << ": " << ErrorOf(r);
    EXPECT_EQ(r->source, c.source);
    EXPECT_EQ(r->current_host, c.current) << c.source;
  }
}

TEST(HostIdentity, KubernetesCountFallsBackToInstanceCount) {
  Result<HostIdentity> r = Resolve({{"JOB_COMPLETION_INDEX", "2"}}, 3);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->hosts, (std::vector<std::string>{"algo-1", "algo-2", "algo-3"}));
  EXPECT_EQ(r->current_host, "algo-3");
  EXPECT_TRUE(r->notes.empty());

  // TRAINFEED_HOST_COUNT beats the spec, which is then noted as different.
  r = Resolve({{"JOB_COMPLETION_INDEX", "0"}, {"TRAINFEED_HOST_COUNT", "2"}}, 3);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->hosts.size(), 2u);
  EXPECT_TRUE(HasNoteContaining(*r, "InstanceCount is 3 but the job runs on 2 host(s)"));

  r = Resolve({{"JOB_COMPLETION_INDEX", "3"}}, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("JOB_COMPLETION_INDEX=3 is out of range for InstanceCount=1"),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("TRAINFEED_HOST_COUNT"), std::string::npos);
}

TEST(HostIdentity, PrecedenceIsSlurmTorchrunMpiKubernetes) {
  Env env = {
      {"SLURM_PROCID", "1"},         {"SLURM_NTASKS", "4"},         {"RANK", "0"},
      {"WORLD_SIZE", "2"},           {"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "4"},
      {"JOB_COMPLETION_INDEX", "0"}, {"TRAINFEED_HOST_COUNT", "4"}};
  Result<HostIdentity> r = Resolve(env, 4);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->source, "Slurm");
  EXPECT_EQ(r->current_host, "algo-2");
  // Only the sources that disagree are mentioned.
  ASSERT_EQ(r->notes.size(), 2u);
  EXPECT_TRUE(HasNoteContaining(*r, "torchrun (RANK=0, WORLD_SIZE=2) disagrees with Slurm"));
  EXPECT_TRUE(HasNoteContaining(*r, "Kubernetes (JOB_COMPLETION_INDEX=0, TRAINFEED_HOST_COUNT=4)"));

  env.erase("SLURM_PROCID");
  r = Resolve(env, 4);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->source, "torchrun");
  EXPECT_EQ(r->hosts.size(), 2u);
  EXPECT_TRUE(HasNoteContaining(*r, "Slurm ignored: SLURM_NTASKS is set but SLURM_PROCID is not"));
  EXPECT_TRUE(HasNoteContaining(*r, "InstanceCount is 4 but the job runs on 2 host(s)"));
}

TEST(HostIdentity, HalfASourceIsIgnored) {
  // salloc/sbatch shells export SLURM_NTASKS without a task rank.
  Result<HostIdentity> r = Resolve({{"SLURM_NTASKS", "4"}});
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->source, "single host");
  EXPECT_TRUE(HasNoteContaining(*r, "Slurm ignored"));
}

TEST(HostIdentity, BadNumbersFromTheDecidingSourceAreErrors) {
  EXPECT_EQ(ErrorOf(Resolve({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}}, 4)),
            "InvalidArgument: Slurm: SLURM_PROCID=4 is out of range for SLURM_NTASKS=4");
  EXPECT_EQ(ErrorOf(Resolve({{"RANK", "0"}, {"WORLD_SIZE", "0"}})),
            "InvalidArgument: torchrun: WORLD_SIZE is 0");
  EXPECT_NE(ErrorOf(Resolve({{"RANK", "-1"}, {"WORLD_SIZE", "2"}})).find("RANK='-1'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Resolve({{"RANK", "1"}, {"WORLD_SIZE", "2x"}})).find("WORLD_SIZE='2x'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Resolve({{"RANK", ""}, {"WORLD_SIZE", "2"}})).find("RANK is empty"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Resolve({{"RANK", "0"}, {"WORLD_SIZE", "99999999999999999999999"}}))
                .find("not a non-negative integer"),
            std::string::npos);
  // Blanks around a number are harmless.
  EXPECT_TRUE(Resolve({{"RANK", " 1 "}, {"WORLD_SIZE", "2\t"}}).ok());
  // A broken lower-precedence source is only noted.
  Result<HostIdentity> r =
      Resolve({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"RANK", "x"}, {"WORLD_SIZE", "2"}});
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_TRUE(HasNoteContaining(*r, "torchrun ignored: RANK='x'"));
}

TEST(HostIdentity, TorchrunWithSeveralProcessesPerNodeIsRefused) {
  Result<HostIdentity> r =
      Resolve({{"RANK", "3"}, {"WORLD_SIZE", "16"}, {"LOCAL_WORLD_SIZE", "8"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--nproc-per-node=1"), std::string::npos);
}

TEST(HostIdentity, ExplicitFlagsWin) {
  HostFlags flags{"node-a, node-b ,node-c", "node-b"};
  Result<HostIdentity> r = Resolve({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "3"}}, 3, flags);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->hosts, (std::vector<std::string>{"node-a", "node-b", "node-c"})) << "order kept";
  EXPECT_EQ(r->current_host, "node-b");
  EXPECT_EQ(r->index(), 1u);
  EXPECT_EQ(r->source, "--hosts");
  EXPECT_TRUE(r->notes.empty()) << "Slurm agrees";

  r = Resolve({{"RANK", "0"}, {"WORLD_SIZE", "2"}}, 3, flags);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_TRUE(HasNoteContaining(*r, "torchrun (RANK=0, WORLD_SIZE=2) disagrees with --hosts"));

  // Explicit flags beat even a broken scheduler variable.
  r = Resolve({{"RANK", "5"}, {"WORLD_SIZE", "2"}}, 3, flags);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_TRUE(HasNoteContaining(*r, "torchrun ignored: RANK=5 is out of range"));
}

TEST(HostIdentity, ExplicitHostsWithSchedulerRank) {
  HostFlags flags{"gpu7,gpu3,gpu9", ""};
  Result<HostIdentity> r = Resolve({{"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "3"}}, 3, flags);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->current_host, "gpu9");
  EXPECT_EQ(r->source, "--hosts + Slurm");

  EXPECT_NE(ErrorOf(Resolve({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}, 3, flags))
                .find("--hosts lists 3 hosts but Slurm (SLURM_PROCID=0, SLURM_NTASKS=2) has 2"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Resolve({}, 3, flags)).find("neither --current-host nor a scheduler rank"),
            std::string::npos);
}

TEST(HostIdentity, ExplicitFlagValidation) {
  EXPECT_EQ(ErrorOf(Resolve({}, 2, {"a,b", "c"})),
            "InvalidArgument: --current-host 'c' is not in --hosts 'a,b'");
  EXPECT_EQ(ErrorOf(Resolve({}, 3, {"a,b,a", "a"})),
            "InvalidArgument: --hosts 'a,b,a' lists 'a' twice");
  EXPECT_EQ(ErrorOf(Resolve({}, 2, {"a,,b", "a"})),
            "InvalidArgument: --hosts 'a,,b' has an empty host name");
  EXPECT_EQ(ErrorOf(Resolve({}, 2, {"a,b,", "a"})),
            "InvalidArgument: --hosts 'a,b,' has an empty host name");
  EXPECT_EQ(ErrorOf(Resolve({}, 1, {"", "  "})), "InvalidArgument: --current-host is empty");
  EXPECT_NE(ErrorOf(Resolve({}, 2, {"", "a"})).find("needs --hosts"), std::string::npos);

  // One name needs no --current-host; a lone --current-host is a single-host job.
  Result<HostIdentity> r = Resolve({}, 1, {"solo", ""});
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->current_host, "solo");
  r = Resolve({}, 1, {"", "solo"});
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->hosts, std::vector<std::string>{"solo"});

  // A host count that differs from InstanceCount is allowed but noted.
  r = Resolve({}, 3, {"a,b", "a"});
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_TRUE(HasNoteContaining(*r, "InstanceCount is 3 but the job runs on 2 host(s)"));
}

TEST(HostIdentity, AlgoHostNames) {
  EXPECT_TRUE(AlgoHostNames(0).empty());
  EXPECT_EQ(AlgoHostNames(2), (std::vector<std::string>{"algo-1", "algo-2"}));
}

}  // namespace
}  // namespace trainfeed
