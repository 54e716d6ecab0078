#include "modes/filesystem/filesystem_mount.h"

#include "common/testing/as_nobody.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace trainfeed {
namespace {

namespace fs = std::filesystem;

const char kTarget[] = "/job/opt/ml/input/data/train";
const char kEfsOptions[] =
    "nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport";

FileSystemDataSourceSpec Spec(std::string id, std::string type, std::string dir,
                              std::string mode = "ro") {
  return {std::move(id), std::move(type), std::move(dir), std::move(mode)};
}

MountPlan MustPlan(const FileSystemDataSourceSpec& spec, const std::string& region = "") {
  Result<MountPlan> plan = PlanFileSystemMount("train", spec, region);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  return plan.ok() ? *plan : MountPlan{};
}

Status PlanError(const FileSystemDataSourceSpec& spec, const std::string& region = "") {
  Result<MountPlan> plan = PlanFileSystemMount("train", spec, region);
  EXPECT_FALSE(plan.ok()) << "planned " << plan->source;
  return plan.status();
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// ---- Planning: no privilege needed -----------------------------------------------------------

TEST(MountPlanTest, EfsIdUsesRegionalDnsNameAndRecommendedOptions) {
  MountPlan plan = MustPlan(Spec("fs-0123abcd", "EFS", "/tensorflow"), "us-east-1");
  EXPECT_EQ(plan.kind, MountPlan::Kind::kNfs);
  EXPECT_TRUE(plan.read_only);
  EXPECT_EQ(
      plan.MountCommand(kTarget),
      (std::vector<std::string>{"mount", "-t", "nfs4", "-o", std::string(kEfsOptions) + ",ro",
                                "fs-0123abcd.efs.us-east-1.amazonaws.com:/tensorflow", kTarget}));
}

TEST(MountPlanTest, EfsReadWriteHasNoRoAndRootDirectoryIsTheExportRoot) {
  MountPlan plan = MustPlan(Spec("fs-0123abcd", "EFS", "/", "rw"), "eu-west-1");
  EXPECT_FALSE(plan.read_only);
  EXPECT_EQ(plan.options, kEfsOptions);
  EXPECT_EQ(plan.source, "fs-0123abcd.efs.eu-west-1.amazonaws.com:/");
}

TEST(MountPlanTest, ChinaRegionsUseTheirOwnDnsSuffix) {
  MountPlan plan = MustPlan(Spec("fs-0123abcd", "EFS", "/d"), "cn-north-1");
  EXPECT_EQ(plan.source, "fs-0123abcd.efs.cn-north-1.amazonaws.com.cn:/d");
}

TEST(MountPlanTest, AwsIdWithoutRegionIsAClearError) {
  Status s = PlanError(Spec("fs-0123abcd", "EFS", "/d"));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "EFS channel 'train'")) << s.message();
  EXPECT_TRUE(Contains(s.message(), "region")) << s.message();
}

TEST(MountPlanTest, NfsAddressWithPortBecomesPortOption) {
  MountPlan plan = MustPlan(Spec("nfs://nas.local:2050/exports/data", "EFS", "/train/"));
  EXPECT_EQ(plan.MountCommand(kTarget),
            (std::vector<std::string>{"mount", "-t", "nfs4", "-o",
                                      std::string(kEfsOptions) + ",port=2050,ro",
                                      "nas.local:/exports/data/train", kTarget}));
}

TEST(MountPlanTest, NfsAddressWithoutPortAndIpv6Server) {
  MountPlan plan = MustPlan(Spec("nfs://[fd00::1]/srv", "EFS", "/a//./b", "rw"));
  EXPECT_EQ(plan.source, "[fd00::1]:/srv/a/b");
  EXPECT_EQ(plan.options, kEfsOptions);
}

TEST(MountPlanTest, LustreNidsWithDirectoryPath) {
  MountPlan plan =
      MustPlan(Spec("10.0.0.5@tcp:10.0.0.6@tcp:/scratch", "FSxLustre", "/datasets/imagenet", "rw"));
  EXPECT_EQ(plan.kind, MountPlan::Kind::kLustre);
  EXPECT_EQ(
      plan.MountCommand(kTarget),
      (std::vector<std::string>{"mount", "-t", "lustre", "-o", "flock",
                                "10.0.0.5@tcp:10.0.0.6@tcp:/scratch/datasets/imagenet", kTarget}));
}

TEST(MountPlanTest, LustreNidWithoutFsnameTakesItFromDirectoryPath) {
  MountPlan plan = MustPlan(Spec("mgs@tcp", "FSxLustre", "/scratch/x"));
  EXPECT_EQ(plan.source, "mgs@tcp:/scratch/x");
  EXPECT_EQ(plan.options, "flock,ro");
  Status s = PlanError(Spec("mgs@tcp", "FSxLustre", "/"));
  EXPECT_TRUE(Contains(s.message(), "fsname")) << s.message();
}

TEST(MountPlanTest, FsxIdMountNameIsTheFsname) {
  MountPlan plan =
      MustPlan(Spec("fs-0123456789abcdef0", "FSxLustre", "/1234abcd/ns1/"), "eu-west-1");
  EXPECT_EQ(plan.MountCommand(kTarget),
            (std::vector<std::string>{
                "mount", "-t", "lustre", "-o", "flock,ro",
                "fs-0123456789abcdef0.fsx.eu-west-1.amazonaws.com@tcp:/1234abcd/ns1", kTarget}));
}

TEST(MountPlanTest, FsxWithoutMountNameIsAClearError) {
  Status s = PlanError(Spec("fs-0123456789abcdef0", "FSxLustre", "/"), "eu-west-1");
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "MountName")) << s.message();
}

TEST(MountPlanTest, FileUriIsABindMount) {
  MountPlan ro = MustPlan(Spec("file:///srv/data", "EFS", "/sub"));
  EXPECT_EQ(ro.kind, MountPlan::Kind::kBind);
  EXPECT_EQ(ro.fstype, "");
  EXPECT_EQ(ro.MountCommand(kTarget),
            (std::vector<std::string>{"mount", "--rbind", "-o", "ro", "/srv/data/sub", kTarget}));
  MountPlan rw = MustPlan(Spec("file:///srv/data/", "FSxLustre", "/", "rw"));
  EXPECT_EQ(rw.source, "/srv/data");
  EXPECT_EQ(rw.options, "rw");
}

TEST(MountPlanTest, RejectsBadInput) {
  struct Case {
    FileSystemDataSourceSpec spec;
    std::string expected;
  } cases[] = {
      {Spec("file:///srv", "EFS", "/../etc"), "'..'"},
      {Spec("file:///srv", "EFS", "relative"), "absolute"},
      {Spec("file://host/srv", "EFS", "/"), "file:///absolute/path"},
      {Spec("mgs@tcp:/fs", "EFS", "/"), "Lustre address; EFS is NFS"},
      {Spec("nfs://h/x", "FSxLustre", "/"), "NFS address; FSxLustre is Lustre"},
      {Spec("fs-XYZ", "EFS", "/"), "not an AWS id"},
      {Spec("server:/export", "EFS", "/"), "neither an AWS id"},
      {Spec("nfs://h:99999/x", "EFS", "/"), "bad port"},
      {Spec("nfs:///x", "EFS", "/"), "no server"},
      {Spec("@tcp:/fs", "FSxLustre", "/"), "not a Lustre NID"},
      {Spec("file:///srv", "EFS", "/", "rx"), "ro|rw"},
      {Spec("file:///srv", "S3", "/"), "EFS|FSxLustre"},
  };
  for (const Case& c : cases) {
    Status s = PlanError(c.spec, "us-east-1");
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << c.spec.file_system_id;
    EXPECT_TRUE(Contains(s.message(), c.expected))
        << c.spec.file_system_id << " " << c.spec.directory_path << ": " << s.message();
  }
}

// ---- Host checks with fake trees: exact messages, no privilege needed ------------------------

class MountSupportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "tf-fssupport-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    paths_.proc_filesystems = dir_ + "/filesystems";
    paths_.modules_dir = dir_ + "/modules";
    paths_.helper_dirs = {dir_ + "/sbin"};
    fs::create_directories(dir_ + "/sbin");
    fs::create_directories(dir_ + "/modules");
    Write(paths_.proc_filesystems, "nodev\tsysfs\n\text4\nnodev\tfuse\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }
  void AddHelper(const std::string& name) {
    std::string path = dir_ + "/sbin/" + name;
    Write(path, "#!/bin/sh\nexit 0\n");
    fs::permissions(path, fs::perms::owner_all);
  }

  std::string dir_;
  MountHostPaths paths_;
};

TEST_F(MountSupportTest, NothingInstalledNamesHelperAndKernelInOneMessage) {
  MountPlan nfs = MustPlan(Spec("nfs://nas/x", "EFS", "/"));
  Status s = CheckMountSupport(nfs, paths_, /*check_privilege=*/false);
  EXPECT_EQ(s.code(), ErrorCode::kNotFound);
  EXPECT_EQ(s.message(),
            "EFS channel 'train': cannot mount nfs4: mount.nfs4 is not installed (Debian/Ubuntu: "
            "apt-get install nfs-common; RHEL/Amazon Linux: nfs-utils); the kernel has no nfs4 "
            "support (not in /proc/filesystems and no module for it; modprobe nfsv4, or use a "
            "kernel built with NFS client support)");
  MountPlan lustre = MustPlan(Spec("mgs@tcp:/fs", "FSxLustre", "/"));
  s = CheckMountSupport(lustre, paths_, false);
  EXPECT_EQ(s.message(),
            "FSxLustre channel 'train': cannot mount lustre: mount.lustre is not installed "
            "(Debian has no Lustre client package: install lustre-client-utils and "
            "lustre-client-modules-$(uname -r) from the Lustre or Amazon FSx client repository); "
            "the kernel has no lustre support (not in /proc/filesystems and no module for it; the "
            "Lustre client modules must be built for the running kernel)");
}

TEST_F(MountSupportTest, HelperAloneMissing) {
  Write(paths_.proc_filesystems, "nodev\tnfs\nnodev\tnfs4\n");
  Status s = CheckMountSupport(MustPlan(Spec("nfs://nas/x", "EFS", "/")), paths_, false);
  EXPECT_EQ(s.code(), ErrorCode::kNotFound);
  EXPECT_TRUE(Contains(s.message(), "mount.nfs4 is not installed")) << s.message();
  EXPECT_FALSE(Contains(s.message(), "kernel")) << s.message();
}

TEST_F(MountSupportTest, KernelAloneMissing) {
  AddHelper("mount.lustre");
  Status s = CheckMountSupport(MustPlan(Spec("mgs@tcp:/fs", "FSxLustre", "/")), paths_, false);
  EXPECT_EQ(s.code(), ErrorCode::kNotFound);
  EXPECT_TRUE(Contains(s.message(), "the kernel has no lustre support")) << s.message();
  EXPECT_FALSE(Contains(s.message(), "not installed")) << s.message();
}

TEST_F(MountSupportTest, LoadableModuleCountsAsSupport) {
  AddHelper("mount.nfs4");
  AddHelper("mount.lustre");
  Write(paths_.modules_dir + "/modules.alias",
        "alias fs-nfs4 nfsv4\nalias fs-lustre lustre\nalias fs-nfs nfs\n");
  EXPECT_TRUE(CheckMountSupport(MustPlan(Spec("nfs://nas/x", "EFS", "/")), paths_, false).ok());
  EXPECT_TRUE(
      CheckMountSupport(MustPlan(Spec("mgs@tcp:/fs", "FSxLustre", "/")), paths_, false).ok());
}

TEST_F(MountSupportTest, BindNeedsNoHelper) {
  EXPECT_TRUE(CheckMountSupport(MustPlan(Spec("file:///srv", "EFS", "/")), paths_, false).ok());
}

// ---- Real mounts: root only ------------------------------------------------------------------

// Reads a whole file; "" when it cannot be opened.
std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// errno of open(path, flags), 0 when it succeeded.
int OpenErrno(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

class FileSystemMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      FAIL() << "FileSystemMount tests need root: they make real bind mounts (run the unit tests "
                "as root, as CI does)";
    }
    std::string templ = (fs::temp_directory_path() / "tf-fsmount-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr) << std::strerror(errno);
    base_ = fs::canonical(templ).string();
    src_ = base_ + "/src";
    target_ = base_ + "/job/opt/ml/input/data/train";
    fs::create_directories(src_);
    std::ofstream(src_ + "/hello.txt") << "hello";
  }

  void TearDown() override {
    if (base_.empty()) return;
    std::vector<std::string> left = MountPointsUnder(base_);
    std::string names;
    for (const std::string& m : left) names += m + " ";
    EXPECT_TRUE(left.empty()) << "mounts left behind: " << names;
    // Detach whatever is left, deepest first, before deleting: never delete through a mount.
    for (auto it = left.rbegin(); it != left.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
    if (MountPointsUnder(base_).empty()) fs::remove_all(base_);
  }

  MountPlan BindPlan(const std::string& mode, const std::string& dir = "/") {
    return MustPlan(Spec("file://" + src_, "EFS", dir, mode));
  }

  std::string base_, src_, target_;
};

TEST_F(FileSystemMountTest, ReadOnlyBindIsReadableAndTheKernelRefusesWrites) {
  auto mount = FileSystemMount::Mount(BindPlan("ro"), target_);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  EXPECT_EQ((*mount)->target(), target_);
  EXPECT_EQ(ReadFile(target_ + "/hello.txt"), "hello");
  // Root ignores permission bits, so these errors can only come from the read-only mount.
  EXPECT_EQ(OpenErrno(target_ + "/hello.txt", O_WRONLY), EROFS);
  EXPECT_EQ(OpenErrno(target_ + "/new.txt", O_WRONLY | O_CREAT), EROFS);
  EXPECT_EQ(::mkdir((target_ + "/newdir").c_str(), 0755) == 0 ? 0 : errno, EROFS);
  EXPECT_TRUE(fs::exists(src_ + "/hello.txt"));
  EXPECT_FALSE(fs::exists(src_ + "/new.txt"));
  EXPECT_TRUE((*mount)->Unmount().ok());
}

TEST_F(FileSystemMountTest, DirectoryPathSelectsASubdirectory) {
  fs::create_directories(src_ + "/sub");
  std::ofstream(src_ + "/sub/part.txt") << "part";
  auto mount = FileSystemMount::Mount(BindPlan("ro", "/sub"), target_);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  EXPECT_EQ(ReadFile(target_ + "/part.txt"), "part");
  EXPECT_FALSE(fs::exists(target_ + "/hello.txt"));
}

TEST_F(FileSystemMountTest, ReadOnlyCoversSubmountsOfTheSource) {
  fs::create_directories(src_ + "/inner");
  ASSERT_EQ(::mount("tmpfs", (src_ + "/inner").c_str(), "tmpfs", 0, "size=1m"), 0)
      << std::strerror(errno);
  {
    auto mount = FileSystemMount::Mount(BindPlan("ro"), target_);
    ASSERT_TRUE(mount.ok()) << mount.status().ToString();
    EXPECT_EQ(OpenErrno(target_ + "/inner/f", O_WRONLY | O_CREAT), EROFS);
    ASSERT_TRUE((*mount)->Unmount().ok());
    EXPECT_TRUE(MountPointsUnder(target_).empty());
  }
  // The source's own submount is not the channel's to remove.
  EXPECT_EQ(MountPointsUnder(src_ + "/inner").size(), 1u);
  EXPECT_EQ(::umount2((src_ + "/inner").c_str(), 0), 0) << std::strerror(errno);
}

TEST_F(FileSystemMountTest, ReadWriteBindWritesLandInTheSource) {
  auto mount = FileSystemMount::Mount(BindPlan("rw"), target_);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  std::ofstream(target_ + "/written.txt") << "from the job";
  ASSERT_TRUE((*mount)->Unmount().ok());
  EXPECT_EQ(ReadFile(src_ + "/written.txt"), "from the job");
}

TEST_F(FileSystemMountTest, UnmountLeavesAnEmptyDirectoryAndIsIdempotent) {
  auto mount = FileSystemMount::Mount(BindPlan("ro"), target_);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  ASSERT_EQ(MountPointsUnder(target_), std::vector<std::string>{target_});
  Status s = (*mount)->Unmount();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE((*mount)->mounted());
  EXPECT_FALSE((*mount)->detached_lazily());
  EXPECT_TRUE(fs::is_directory(target_));
  EXPECT_TRUE(fs::is_empty(target_));
  EXPECT_TRUE(MountPointsUnder(target_).empty());
  EXPECT_TRUE((*mount)->Unmount().ok());
}

TEST_F(FileSystemMountTest, TargetWithSpacesIsFoundInMountinfo) {
  // mountinfo escapes a space as \040; Unmount must still recognise its own mount.
  std::string target = base_ + "/my job/opt/ml/input/data/train";
  auto mount = FileSystemMount::Mount(BindPlan("ro"), target);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  EXPECT_EQ(MountPointsUnder(target), std::vector<std::string>{target});
  EXPECT_TRUE((*mount)->Unmount().ok());
  EXPECT_TRUE(MountPointsUnder(target).empty());
}

TEST_F(FileSystemMountTest, DestructorUnmountsOnEarlyReturnAndException) {
  auto early_return = [&]() -> Status {
    TF_ASSIGN_OR_RETURN(std::unique_ptr<FileSystemMount> mount,
                        FileSystemMount::Mount(BindPlan("ro"), target_));
    EXPECT_EQ(MountPointsUnder(target_).size(), 1u);
    return InternalError("training failed");
  };
  EXPECT_FALSE(early_return().ok());
  EXPECT_TRUE(MountPointsUnder(target_).empty());

  try {
    auto mount = FileSystemMount::Mount(BindPlan("rw"), target_);
    ASSERT_TRUE(mount.ok()) << mount.status().ToString();
    EXPECT_EQ(MountPointsUnder(target_).size(), 1u);
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(MountPointsUnder(target_).empty());
  EXPECT_TRUE(fs::is_empty(target_));
}

TEST_F(FileSystemMountTest, BusyMountIsDetachedLazily) {
  auto mount = FileSystemMount::Mount(BindPlan("ro"), target_);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  int fd = ::open((target_ + "/hello.txt").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::umount2(target_.c_str(), 0), -1);
  ASSERT_EQ(errno, EBUSY);
  auto start = std::chrono::steady_clock::now();
  Status s = (*mount)->Unmount();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE((*mount)->detached_lazily());
  EXPECT_TRUE(MountPointsUnder(target_).empty());
  EXPECT_TRUE(fs::is_empty(target_));
  // The open file still reads from the detached mount.
  char buf[8] = {};
  EXPECT_EQ(::read(fd, buf, sizeof(buf)), 5);
  EXPECT_STREQ(buf, "hello");
  ::close(fd);
}

TEST_F(FileSystemMountTest, MissingSourceIsNotFound) {
  MountPlan plan = MustPlan(Spec("file://" + base_ + "/nope", "EFS", "/"));
  auto mount = FileSystemMount::Mount(plan, target_);
  ASSERT_FALSE(mount.ok());
  EXPECT_EQ(mount.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(mount.status().message(),
            "EFS channel 'train': source directory " + base_ + "/nope does not exist");

  auto file = FileSystemMount::Mount(BindPlan("ro", "/hello.txt"), target_);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(Contains(file.status().message(), "is not a directory")) << file.status().message();
}

TEST_F(FileSystemMountTest, WithoutPrivilegeIsPermissionDenied) {
  // Root passes every check, so the mount runs in a child that drops to 'nobody'.
  MountPlan plan = BindPlan("ro");
  Status s = RunAsNobody([&] { return FileSystemMount::Mount(plan, target_).status(); });
  std::string out = s.ToString();
  EXPECT_EQ(out,
            "PermissionDenied: mounting file-system channel 'train' (EFS) needs root (or "
            "CAP_SYS_ADMIN); this process runs as uid 65534 without it");
}

// What this host lacks for `fstype`, to know which message to expect.
bool HostHasHelper(const std::string& fstype) {
  return ::access(("/sbin/mount." + fstype).c_str(), X_OK) == 0 ||
         ::access(("/usr/sbin/mount." + fstype).c_str(), X_OK) == 0;
}
bool HostKernelHas(const std::string& fstype) {
  std::string fss = ReadFile("/proc/filesystems");
  if (Contains(fss, "\t" + fstype + "\n")) return true;
  struct utsname uts;
  ::uname(&uts);
  return Contains(ReadFile(std::string("/lib/modules/") + uts.release + "/modules.alias"),
                  "alias fs-" + fstype + " ");
}

TEST_F(FileSystemMountTest, NetworkMountsOnThisHostFailClearlyAndFast) {
  struct Case {
    FileSystemDataSourceSpec spec;
    std::string fstype;
  } cases[] = {
      {Spec("nfs://127.0.0.1:1/export", "EFS", "/"), "nfs4"},
      {Spec("127.0.0.1@tcp:/fs", "FSxLustre", "/"), "lustre"},
  };
  for (const Case& c : cases) {
    MountOptions options;
    options.helper_timeout = std::chrono::seconds(10);
    auto start = std::chrono::steady_clock::now();
    auto mount = FileSystemMount::Mount(MustPlan(c.spec), target_, options);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
    ASSERT_FALSE(mount.ok()) << c.fstype << " mounted from a server that does not exist";
    const std::string& m = mount.status().message();
    if (!HostKernelHas(c.fstype)) {
      EXPECT_TRUE(Contains(m, "the kernel has no " + c.fstype + " support")) << m;
    }
    if (!HostHasHelper(c.fstype)) {
      EXPECT_TRUE(Contains(m, "mount." + c.fstype + " is not installed")) << m;
    }
    EXPECT_TRUE(MountPointsUnder(target_).empty());
  }
}

// ---- The mount(8) path with a fake mount binary ----------------------------------------------

class HelperMountTest : public FileSystemMountTest {
 protected:
  void SetUp() override {
    FileSystemMountTest::SetUp();
    if (HasFatalFailure()) return;
    fs::create_directories(base_ + "/host/sbin");
    options_.host.proc_filesystems = base_ + "/host/filesystems";
    options_.host.modules_dir = base_ + "/host";
    options_.host.helper_dirs = {base_ + "/host/sbin"};
    options_.host.mount_binary = base_ + "/host/mount";
    std::ofstream(options_.host.proc_filesystems) << "nodev\tnfs4\n";
    WriteScript(base_ + "/host/sbin/mount.nfs4", "exit 0");
    plan_ = MustPlan(Spec("nfs://nas.example:2049/exports", "EFS", "/train"));
  }

  // The fake mount(8): records its arguments, then runs `body`.
  void WriteScript(const std::string& path, const std::string& body) {
    std::ofstream(path) << "#!/bin/sh\nprintf '%s\\n' \"$@\" > " << base_ << "/host/args\n"
                        << body << "\n";
    fs::permissions(path, fs::perms::owner_all);
  }

  MountOptions options_;
  MountPlan plan_;
};

TEST_F(HelperMountTest, RunsTheExactCommandAndUnmounts) {
  // Stands in for mount.nfs4 with a bind mount of the local source on the target ($6).
  WriteScript(options_.host.mount_binary, "exec mount --bind " + src_ + " \"$6\"");
  auto mount = FileSystemMount::Mount(plan_, target_, options_);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  std::string expected;
  std::vector<std::string> argv = plan_.MountCommand(target_);
  for (size_t i = 1; i < argv.size(); ++i) expected += argv[i] + "\n";
  EXPECT_EQ(ReadFile(base_ + "/host/args"), expected);
  EXPECT_EQ(ReadFile(target_ + "/hello.txt"), "hello");
  EXPECT_TRUE((*mount)->Unmount().ok());
  EXPECT_TRUE(MountPointsUnder(target_).empty());
}

TEST_F(HelperMountTest, FailureCarriesTheHelpersOutput) {
  WriteScript(options_.host.mount_binary,
              "echo 'mount.nfs4: access denied by server while mounting nas.example:/exports' >&2\n"
              "exit 32");
  auto mount = FileSystemMount::Mount(plan_, target_, options_);
  ASSERT_FALSE(mount.ok());
  EXPECT_EQ(mount.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_TRUE(Contains(mount.status().message(),
                       "(exit 32): mount.nfs4: access denied by server while mounting "
                       "nas.example:/exports"))
      << mount.status().message();

  WriteScript(options_.host.mount_binary, "echo 'mount.nfs4: Connection timed out' >&2; exit 32");
  mount = FileSystemMount::Mount(plan_, target_, options_);
  ASSERT_FALSE(mount.ok());
  EXPECT_EQ(mount.status().code(), ErrorCode::kUnavailable) << mount.status().ToString();
}

TEST_F(HelperMountTest, SuccessWithoutAMountIsAnError) {
  WriteScript(options_.host.mount_binary, "exit 0");
  auto mount = FileSystemMount::Mount(plan_, target_, options_);
  ASSERT_FALSE(mount.ok());
  EXPECT_EQ(mount.status().code(), ErrorCode::kInternal);
  EXPECT_TRUE(Contains(mount.status().message(), "does not list")) << mount.status().message();
}

TEST_F(HelperMountTest, HangingHelperIsKilledWithItsChildren) {
  // mount(8) forks mount.nfs4; the timeout must take both.
  WriteScript(options_.host.mount_binary, "sleep 60 &\necho $! > " + base_ + "/host/child\nwait");
  options_.helper_timeout = std::chrono::milliseconds(500);
  auto start = std::chrono::steady_clock::now();
  auto mount = FileSystemMount::Mount(plan_, target_, options_);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_FALSE(mount.ok());
  EXPECT_EQ(mount.status().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(Contains(mount.status().message(), "did not finish within 0.5 s"))
      << mount.status().message();
  pid_t child = std::atoi(ReadFile(base_ + "/host/child").c_str());
  ASSERT_GT(child, 0);
  // Gone, or a zombie waiting for its new parent to reap it.
  bool dead = false;
  for (int i = 0; i < 100 && !dead; ++i) {
    std::string stat = ReadFile("/proc/" + std::to_string(child) + "/stat");
    size_t close = stat.rfind(')');
    dead = stat.empty() || (close != std::string::npos && stat.substr(close + 2, 1) == "Z");
    if (!dead) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(dead) << "the helper's child " << child << " survived the timeout";
}

}  // namespace
}  // namespace trainfeed
