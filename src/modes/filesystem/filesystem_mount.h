// File-system channels (FileSystemDataSource, contract §5): the file system is mounted at
// <job>/opt/ml/input/data/<channel> before the training command starts and unmounted after,
// whatever happens. EFS is NFS 4.1, FSxLustre is Lustre, and a self-hosted file:///path is a bind
// mount of a local directory.
//
// Planning is pure (testable without privilege); FileSystemMount does the mounting.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "job/job_spec.h"

namespace trainfeed {

// What will be mounted, where from, and how.
struct MountPlan {
  enum class Kind { kBind, kNfs, kLustre };
  Kind kind = Kind::kBind;
  std::string source;   // "/srv/data/sub" | "server:/export/dir" | "mgs@tcp:/fsname/dir"
  std::string fstype;   // "" (bind) | "nfs4" | "lustre"
  std::string options;  // mount(8) -o value; bind: "ro" | "rw"
  bool read_only = true;
  // For messages only: "EFS channel 'train'".
  std::string channel;
  std::string file_system_type;  // EFS | FSxLustre

  // The argv of mount(8) that performs this plan. NFS and Lustre mounts run exactly this; a bind
  // mount is done with mount(2) directly and this is its equivalent, for logs.
  std::vector<std::string> MountCommand(const std::string& target) const;
  // "EFS channel 'train'", the prefix of every message about this mount.
  std::string Describe() const;
};

// Turns a channel's FileSystemDataSource into a plan. FileSystemId is an AWS id (fs-0123abcd...,
// then `region` names the DNS zone: <id>.efs.<region>.amazonaws.com, or for FSx
// <id>.fsx.<region>.amazonaws.com@tcp:/<MountName> where MountName is DirectoryPath's first
// component) or a self-hosted address: nfs://server[:port]/export (EFS), mgs@tcp[:mgs2@tcp]:/fsname
// (FSxLustre; without "/fsname" the MountName comes from DirectoryPath as for FSx), or
// file:///path (either type). DirectoryPath is joined to the export / fsname / local path; ".."
// components are refused so a channel cannot climb out of what it names.
Result<MountPlan> PlanFileSystemMount(const std::string& channel,
                                      const FileSystemDataSourceSpec& spec,
                                      const std::string& region);

// Where the host's mount tools and kernel support are looked up; tests point these at fake trees.
struct MountHostPaths {
  std::string proc_filesystems = "/proc/filesystems";
  // Directory holding modules.alias; "" means /lib/modules/<uname -r>.
  std::string modules_dir;
  std::vector<std::string> helper_dirs = {"/sbin", "/usr/sbin"};
  // mount(8); "" means the first of /usr/bin, /bin, /usr/sbin, /sbin that has it.
  std::string mount_binary;
};

// Checks, without mounting, that this host can perform `plan`: privilege (CAP_SYS_ADMIN), and for
// NFS/Lustre the mount.<fstype> helper and the kernel's file-system type (listed in
// /proc/filesystems, or loadable: modules.alias has "fs-<fstype>"). Every missing piece is named in
// one message, so a host needs one round of fixing. `check_privilege` is false only in tests.
Status CheckMountSupport(const MountPlan& plan, const MountHostPaths& paths = {},
                         bool check_privilege = true);

struct MountOptions {
  // NFS/Lustre: mount(8) still running after this is killed (an unreachable server with "hard"
  // retries for minutes), so a job never hangs before it starts.
  std::chrono::milliseconds helper_timeout = std::chrono::minutes(3);
  MountHostPaths host;
};

// A mounted channel. Unmounts in Unmount() and in the destructor, so an early return or an
// exception in the runner never leaves a mount behind.
class FileSystemMount {
 public:
  // Checks the host (CheckMountSupport), creates `target` if missing and mounts `plan` on it: a
  // bind mount with mount(2), NFS/Lustre by running MountCommand with mount(8) (its output goes
  // into the error message; at the timeout its process group is killed: Unavailable).
  static Result<std::unique_ptr<FileSystemMount>> Mount(const MountPlan& plan,
                                                        const std::string& target,
                                                        const MountOptions& options = {});

  FileSystemMount(const FileSystemMount&) = delete;
  FileSystemMount& operator=(const FileSystemMount&) = delete;
  ~FileSystemMount();

  // Unmounts the target and anything mounted below it, deepest first. A busy mount (a file still
  // open inside) is retried a few times, then detached lazily (MNT_DETACH): the path is free at
  // once and the kernel finishes when the last file closes. Idempotent.
  Status Unmount();

  const std::string& target() const { return target_; }  // canonical path
  const MountPlan& plan() const { return plan_; }
  bool mounted() const { return mounted_; }
  // True when the last Unmount had to detach lazily; the caller should log it.
  bool detached_lazily() const { return detached_lazily_; }

 private:
  FileSystemMount(MountPlan plan, std::string target, std::vector<int> foreign_mounts)
      : plan_(std::move(plan)),
        target_(std::move(target)),
        foreign_mounts_(std::move(foreign_mounts)) {}

  MountPlan plan_;
  std::string target_;
  // mountinfo ids already at or below the target before Mount; Unmount leaves them alone.
  std::vector<int> foreign_mounts_;
  bool mounted_ = true;
  bool detached_lazily_ = false;
};

// Mount points at or below `path` in /proc/self/mountinfo, in mount order. For tests and for
// the runner's leftover check.
std::vector<std::string> MountPointsUnder(const std::string& path);

}  // namespace trainfeed
