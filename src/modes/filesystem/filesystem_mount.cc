#include "modes/filesystem/filesystem_mount.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace trainfeed {
namespace {

constexpr char kEfsOptions[] =
    "nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport";
constexpr char kLustreOptions[] = "flock";
constexpr int kCapSysAdmin = 21;
// Busy unmount: tries before the lazy detach, and the pause between them.
constexpr int kBusyTries = 5;
constexpr auto kBusyPause = std::chrono::milliseconds(100);
// mount(8) output kept for the error message; the end says why it failed.
constexpr size_t kMaxHelperOutput = 4096;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string ToLower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Splits an absolute path into its components, dropping "" and "."; ".." is refused so a
// DirectoryPath cannot climb above the export, fsname or local directory it is joined to.
Result<std::vector<std::string>> PathComponents(const std::string& path, std::string_view what) {
  if (path.empty() || path[0] != '/') {
    return InvalidArgumentError(std::string(what) + " '" + path + "' must be an absolute path");
  }
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(path);
  while (std::getline(in, part, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return InvalidArgumentError(std::string(what) + " '" + path + "' must not contain '..'");
    }
    parts.push_back(part);
  }
  return parts;
}

// "/" + parts joined by "/"; "/" for none.
std::string JoinPath(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

bool IsAwsFileSystemId(const std::string& id) {
  // Contract §5: fs-[0-9a-f]{8,}, 11-21 characters.
  if (id.size() < 11 || id.size() > 21 || !StartsWith(id, "fs-")) return false;
  return std::all_of(id.begin() + 3, id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsRegion(const std::string& region) {
  return !region.empty() && std::all_of(region.begin(), region.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// China regions live under their own DNS suffix.
std::string AwsDnsSuffix(const std::string& region) {
  return StartsWith(region, "cn-") ? "amazonaws.com.cn" : "amazonaws.com";
}

// Parses "nfs://host[:port]/export" into host (IPv6 kept in brackets), port ("" if none) and
// export components.
Status ParseNfsUri(const std::string& uri, std::string* host, std::string* port,
                   std::vector<std::string>* export_parts) {
  std::string rest = uri.substr(6);
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError("FileSystemId '" + uri + "': " + why +
                                " (expected nfs://server[:port]/export)");
  };
  if (authority.empty()) return bad("no server");
  std::string port_text;
  if (authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return bad("unclosed '[' in the server address");
    *host = authority.substr(0, close + 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("unexpected text after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
  } else {
    size_t colon = authority.find(':');
    *host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
    }
  }
  if (host->empty() || host->find_first_of("@, \t") != std::string::npos) {
    return bad("bad server '" + *host + "'");
  }
  if (!port_text.empty()) {
    if (port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(),
                     [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(port_text) < 1 || std::stoi(port_text) > 65535) {
      return bad("bad port '" + port_text + "'");
    }
    *port = std::to_string(std::stoi(port_text));
  }
  TF_ASSIGN_OR_RETURN(*export_parts, PathComponents(path, "export of '" + uri + "'"));
  return OkStatus();
}

// Splits a Lustre address "nid[:nid...][:/fsname[/path]]" into the NID list and the path parts
// (fsname first). NIDs never contain '/', so the first ":/" is the separator.
Status ParseLustreAddress(const std::string& address, std::string* nids,
                          std::vector<std::string>* fs_parts) {
  size_t sep = address.find(":/");
  *nids = address.substr(0, sep);
  if (sep != std::string::npos) {
    TF_ASSIGN_OR_RETURN(*fs_parts,
                        PathComponents(address.substr(sep + 1), "fsname of '" + address + "'"));
  }
  std::istringstream in(*nids);
  std::string nid;
  int count = 0;
  while (std::getline(in, nid, ':')) {
    ++count;
    if (nid.find('@') == std::string::npos || nid.front() == '@' || nid.back() == '@' ||
        nid.find_first_of(" \t/") != std::string::npos) {
      return InvalidArgumentError("FileSystemId '" + address + "': '" + nid +
                                  "' is not a Lustre NID (expected mgs@tcp[:mgs2@tcp]:/fsname)");
    }
  }
  if (count == 0 || nids->back() == ':') {
    return InvalidArgumentError("FileSystemId '" + address +
                                "': no MGS NID (expected mgs@tcp[:mgs2@tcp]:/fsname)");
  }
  return OkStatus();
}

std::string NfsOptions(const std::string& port, bool read_only) {
  std::string options = kEfsOptions;
  if (!port.empty()) options += ",port=" + port;
  if (read_only) options += ",ro";
  return options;
}

std::string LustreOptions(bool read_only) {
  return std::string(kLustreOptions) + (read_only ? ",ro" : "");
}

// ---- Host checks ----------------------------------------------------------------------------

bool HasCapSysAdmin() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (!StartsWith(line, "CapEff:")) continue;
    uint64_t caps = std::strtoull(line.c_str() + 7, nullptr, 16);
    return (caps >> kCapSysAdmin) & 1;
  }
  return ::geteuid() == 0;  // No /proc: root is the best guess.
}

std::string PrivilegeMessage(const MountPlan& plan) {
  return "mounting file-system channel '" + plan.channel + "' (" + plan.file_system_type +
         ") needs root (or CAP_SYS_ADMIN); this process runs as uid " +
         std::to_string(::geteuid()) + " without it";
}

bool IsExecutable(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string FindMountBinary() {
  for (const char* p : {"/usr/bin/mount", "/bin/mount", "/usr/sbin/mount", "/sbin/mount"}) {
    if (IsExecutable(p)) return p;
  }
  return "";
}

// True when the kernel has `fstype` now (/proc/filesystems) or can load it on demand: mount(2)
// asks for module "fs-<fstype>", which modules.alias maps to a module file.
bool KernelSupports(const std::string& fstype, const MountHostPaths& paths) {
  std::ifstream fs(paths.proc_filesystems);
  if (!fs) return true;  // Cannot tell; let mount(8) say.
  std::string line;
  while (std::getline(fs, line)) {
    std::istringstream words(line);
    std::string word, last;
    while (words >> word) last = word;
    if (last == fstype) return true;
  }
  std::string modules_dir = paths.modules_dir;
  if (modules_dir.empty()) {
    struct utsname uts;
    if (::uname(&uts) != 0) return false;
    modules_dir = std::string("/lib/modules/") + uts.release;
  }
  std::ifstream aliases(modules_dir + "/modules.alias");
  const std::string wanted = "alias fs-" + fstype + " ";
  while (std::getline(aliases, line)) {
    if (StartsWith(line, wanted)) return true;
  }
  return false;
}

std::string MissingHelperMessage(const MountPlan& plan) {
  if (plan.kind == MountPlan::Kind::kNfs) {
    return "mount.nfs4 is not installed (Debian/Ubuntu: apt-get install nfs-common; "
           "RHEL/Amazon Linux: nfs-utils)";
  }
  return "mount.lustre is not installed (Debian has no Lustre client package: install "
         "lustre-client-utils and lustre-client-modules-$(uname -r) from the Lustre or "
         "Amazon FSx client repository)";
}

std::string NoKernelSupportMessage(const MountPlan& plan) {
  if (plan.kind == MountPlan::Kind::kNfs) {
    return "the kernel has no nfs4 support (not in /proc/filesystems and no module for it; "
           "modprobe nfsv4, or use a kernel built with NFS client support)";
  }
  return "the kernel has no lustre support (not in /proc/filesystems and no module for it; "
         "the Lustre client modules must be built for the running kernel)";
}

// ---- mount(8) -------------------------------------------------------------------------------

struct HelperRun {
  bool finished = false;  // false: killed at the deadline
  int exit_code = -1;     // 128+N for a signal
  std::string output;     // stdout and stderr, interleaved
};

// Runs argv in its own process group (mount(8) forks mount.<type>, and a timeout must kill
// both) with stdin /dev/null and the C locale, so the captured messages can be matched.
Result<HelperRun> RunHelper(const std::string& binary, const std::vector<std::string>& argv,
                            std::chrono::milliseconds timeout) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "pipe");
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (StartsWith(kv, "LC_ALL=") || StartsWith(kv, "LANG=") || StartsWith(kv, "LANGUAGE=")) {
      continue;
    }
    env.emplace_back(kv);
  }
  env.push_back("LC_ALL=C");
  std::vector<char*> cenv;
  for (std::string& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int err = posix_spawn(&pid, binary.c_str(), &actions, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (err != 0) {
    ::close(fds[0]);
    return ErrnoToStatus(err, "start " + binary);
  }

  HelperRun run;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto remaining_ms = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
  };
  // Read until EOF; a helper that leaves a child holding the pipe is bounded by the deadline.
  char buf[1024];
  for (;;) {
    struct pollfd p = {fds[0], POLLIN, 0};
    int ready = ::poll(&p, 1, remaining_ms());
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    run.output.append(buf, static_cast<size_t>(n));
    if (run.output.size() > kMaxHelperOutput) {
      run.output.erase(0, run.output.size() - kMaxHelperOutput);
    }
  }
  ::close(fds[0]);
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      run.finished = true;
      break;
    }
    if (r < 0 && errno != EINTR) return ErrnoToStatus(errno, "waitpid " + binary);
    if (remaining_ms() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!run.finished) {
    ::kill(-pid, SIGKILL);
    // A process stuck in the kernel may not die at once; reap it if it does, never wait long.
    for (int i = 0; i < 100 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return run;
  }
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

// One line of mount(8)'s output for a message: newlines become "; ".
std::string OneLine(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "; ";
    } else {
      out += c;
    }
  }
  return out;
}

std::string JoinArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

Status HelperFailure(const MountPlan& plan, const std::vector<std::string>& argv,
                     const HelperRun& run) {
  const std::string said = OneLine(run.output);
  const std::string head = plan.Describe() + ": " + JoinArgv(argv) + " failed (exit " +
                           std::to_string(run.exit_code) +
                           "): " + (said.empty() ? "no output" : said);
  const std::string lower = ToLower(said);
  auto has = [&](const char* needle) { return lower.find(needle) != std::string::npos; };
  if (has("only root") || has("operation not permitted") || has("must be superuser")) {
    return PermissionDeniedError(head + " (" + PrivilegeMessage(plan) + ")");
  }
  if (has("access denied") || has("permission denied")) {
    return PermissionDeniedError(head +
                                 " (the server refuses this client: check its exports "
                                 "or security groups)");
  }
  if (has("unknown filesystem type")) {
    return NotFoundError(head + " (" + NoKernelSupportMessage(plan) + ")");
  }
  if (has("no such file or directory")) {
    return NotFoundError(head + " (check the export or fsname and DirectoryPath)");
  }
  if (has("timed out") || has("connection refused") || has("no route to host") ||
      has("network is unreachable") || has("resolve") || has("name or service not known") ||
      has("temporary failure")) {
    return UnavailableError(head);
  }
  return InternalError(head);
}

// ---- mountinfo ------------------------------------------------------------------------------

struct MountEntry {
  int id;
  std::string mount_point;
};

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountInfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const char* d = s.c_str() + i + 1;
      if (d[0] >= '0' && d[0] <= '3' && d[1] >= '0' && d[1] <= '7' && d[2] >= '0' && d[2] <= '7') {
        out += static_cast<char>((d[0] - '0') * 64 + (d[1] - '0') * 8 + (d[2] - '0'));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

bool IsAtOrUnder(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return path == root || (StartsWith(path, root) && path[root.size()] == '/');
}

std::vector<MountEntry> MountsUnder(const std::string& root) {
  std::vector<MountEntry> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, fs_root, mount_point;
    if (!(fields >> id >> parent >> dev >> fs_root >> mount_point)) continue;
    mount_point = UnescapeMountInfo(mount_point);
    if (IsAtOrUnder(mount_point, root)) out.push_back({std::atoi(id.c_str()), mount_point});
  }
  return out;
}

// Creates `target` (and parents) if missing; returns its canonical path, the form mountinfo
// uses.
Result<std::string> PrepareTarget(const MountPlan& plan, const std::string& target) {
  std::error_code ec;
  std::filesystem::create_directories(target, ec);
  if (ec) return ErrnoToStatus(ec.value(), plan.Describe() + ": create mount point " + target);
  struct stat st;
  if (::stat(target.c_str(), &st) != 0) {
    return ErrnoToStatus(errno, plan.Describe() + ": mount point " + target);
  }
  if (!S_ISDIR(st.st_mode)) {
    return AlreadyExistsError(plan.Describe() + ": mount point " + target +
                              " exists and is not a directory");
  }
  char* real = ::realpath(target.c_str(), nullptr);
  if (real == nullptr) return ErrnoToStatus(errno, plan.Describe() + ": resolve " + target);
  std::string out(real);
  std::free(real);
  return out;
}

// Makes the bind mount at `target` and everything below it read-only. mount_setattr covers
// submounts of the source too (a plain MS_RDONLY remount only changes the top mount); the remount
// is the fallback for kernels before 5.12.
int MakeReadOnly(const std::string& source, const std::string& target) {
#ifdef SYS_mount_setattr
  struct {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
  } attr = {0x1 /* MOUNT_ATTR_RDONLY */, 0, 0, 0};
  constexpr unsigned kAtRecursive = 0x8000;
  if (::syscall(SYS_mount_setattr, AT_FDCWD, target.c_str(), kAtRecursive, &attr, sizeof(attr)) ==
      0) {
    return 0;
  }
  if (errno != ENOSYS) return errno;
#endif
  // A remount must keep the flags the source is locked with (nosuid, nodev, ... in a user
  // namespace), or the kernel refuses it.
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
  struct statvfs sv;
  if (::statvfs(source.c_str(), &sv) == 0) {
    if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  }
  return ::mount(nullptr, target.c_str(), nullptr, flags, nullptr) == 0 ? 0 : errno;
}

Status BindMount(const MountPlan& plan, const std::string& target) {
  if (::mount(plan.source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    int err = errno;
    if (err == EPERM) return PermissionDeniedError(PrivilegeMessage(plan));
    return ErrnoToStatus(err, plan.Describe() + ": bind-mount " + plan.source + " on " + target);
  }
  if (!plan.read_only) return OkStatus();
  int err = MakeReadOnly(plan.source, target);
  struct statvfs sv;
  if (err == 0 && (::statvfs(target.c_str(), &sv) != 0 || !(sv.f_flag & ST_RDONLY))) err = EIO;
  if (err != 0) {
    // Never leave a writable mount of an "ro" channel behind.
    ::umount2(target.c_str(), MNT_DETACH);
    return ErrnoToStatus(err, plan.Describe() + ": make the bind mount of " + plan.source + " on " +
                                  target + " read-only");
  }
  return OkStatus();
}

// True when mountinfo lists a mount exactly at `target` that was not there before (`foreign`).
bool NewMountAt(const std::string& target, const std::vector<int>& foreign) {
  for (const MountEntry& m : MountsUnder(target)) {
    if (m.mount_point == target &&
        std::find(foreign.begin(), foreign.end(), m.id) == foreign.end()) {
      return true;
    }
  }
  return false;
}

Status HelperMount(const MountPlan& plan, const std::string& target,
                   const std::vector<int>& foreign, const MountOptions& options) {
  const std::chrono::milliseconds timeout = options.helper_timeout;
  const std::string binary =
      options.host.mount_binary.empty() ? FindMountBinary() : options.host.mount_binary;
  if (binary.empty()) {
    return NotFoundError(plan.Describe() +
                         ": mount(8) is not installed (Debian: apt-get install "
                         "mount)");
  }
  const std::vector<std::string> argv = plan.MountCommand(target);
  TF_ASSIGN_OR_RETURN(HelperRun run, RunHelper(binary, argv, timeout));
  if (!run.finished) {
    // The killed helper may have mounted just before dying.
    if (NewMountAt(target, foreign)) ::umount2(target.c_str(), MNT_DETACH);
    const std::string port = plan.kind == MountPlan::Kind::kNfs ? "TCP 2049" : "TCP 988";
    std::string said = OneLine(run.output);
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%.1f", timeout.count() / 1000.0);
    return UnavailableError(plan.Describe() + ": " + JoinArgv(argv) + " did not finish within " +
                            seconds +
                            " s and was killed (is the server reachable from this host on " + port +
                            "?)" + (said.empty() ? "" : ": " + said));
  }
  if (run.exit_code != 0) return HelperFailure(plan, argv, run);
  if (!NewMountAt(target, foreign)) {
    return InternalError(plan.Describe() + ": " + JoinArgv(argv) +
                         " succeeded but /proc/self/mountinfo does not list " + target);
  }
  return OkStatus();
}

}  // namespace

std::vector<std::string> MountPlan::MountCommand(const std::string& target) const {
  if (kind == Kind::kBind) return {"mount", "--rbind", "-o", options, source, target};
  return {"mount", "-t", fstype, "-o", options, source, target};
}

std::string MountPlan::Describe() const { return file_system_type + " channel '" + channel + "'"; }

Result<MountPlan> PlanFileSystemMount(const std::string& channel,
                                      const FileSystemDataSourceSpec& spec,
                                      const std::string& region) {
  MountPlan plan;
  plan.channel = channel;
  plan.file_system_type = spec.file_system_type;
  const std::string context = plan.Describe();
  auto invalid = [&](const std::string& why) { return InvalidArgumentError(context + ": " + why); };

  if (spec.file_system_type != "EFS" && spec.file_system_type != "FSxLustre") {
    return invalid("FileSystemType '" + spec.file_system_type + "' is not one of EFS|FSxLustre");
  }
  const bool efs = spec.file_system_type == "EFS";
  // The SDK's FileSystemInput defaults to ro; an unset mode stays on the safe side.
  if (spec.access_mode == "ro" || spec.access_mode.empty()) {
    plan.read_only = true;
  } else if (spec.access_mode == "rw") {
    plan.read_only = false;
  } else {
    return invalid("FileSystemAccessMode '" + spec.access_mode + "' is not one of ro|rw");
  }
  Result<std::vector<std::string>> dir = PathComponents(spec.directory_path, "DirectoryPath");
  if (!dir.ok()) return dir.status().WithContext(context);
  const std::string& id = spec.file_system_id;

  if (StartsWith(id, "file://")) {
    std::string path = id.substr(7);
    if (StartsWith(path, "localhost/")) path = path.substr(9);
    if (path.empty() || path[0] != '/') {
      return invalid("FileSystemId '" + id + "' must be file:///absolute/path");
    }
    Result<std::vector<std::string>> base = PathComponents(path, "FileSystemId path");
    if (!base.ok()) return base.status().WithContext(context);
    plan.kind = MountPlan::Kind::kBind;
    plan.source = JoinPath(Concat(*base, *dir));
    plan.options = plan.read_only ? "ro" : "rw";
    return plan;
  }

  if (StartsWith(id, "nfs://")) {
    if (!efs) return invalid("FileSystemId '" + id + "' is an NFS address; FSxLustre is Lustre");
    std::string host, port;
    std::vector<std::string> export_parts;
    Status s = ParseNfsUri(id, &host, &port, &export_parts);
    if (!s.ok()) return s.WithContext(context);
    plan.kind = MountPlan::Kind::kNfs;
    plan.fstype = "nfs4";
    plan.source = host + ":" + JoinPath(Concat(export_parts, *dir));
    plan.options = NfsOptions(port, plan.read_only);
    return plan;
  }

  if (id.find('@') != std::string::npos) {
    if (efs) return invalid("FileSystemId '" + id + "' is a Lustre address; EFS is NFS");
    std::string nids;
    std::vector<std::string> fs_parts;
    Status s = ParseLustreAddress(id, &nids, &fs_parts);
    if (!s.ok()) return s.WithContext(context);
    // Without ":/fsname" the address is the MGS alone and DirectoryPath starts with the fsname,
    // exactly as an FSx DirectoryPath starts with its MountName.
    if (fs_parts.empty() && dir->empty()) {
      return invalid("FileSystemId '" + id + "' names no fsname, so DirectoryPath must begin " +
                     "with it, e.g. /fsname/dir");
    }
    plan.kind = MountPlan::Kind::kLustre;
    plan.fstype = "lustre";
    plan.source = nids + ":" + JoinPath(Concat(fs_parts, *dir));
    plan.options = LustreOptions(plan.read_only);
    return plan;
  }

  if (StartsWith(id, "fs-")) {
    if (!IsAwsFileSystemId(id)) {
      return invalid("FileSystemId '" + id + "' is not an AWS id (fs-[0-9a-f]{8,}, 11-21 chars)");
    }
    if (!IsRegion(region)) {
      return invalid("FileSystemId '" + id + "' is an AWS id, and its DNS name needs the AWS " +
                     "region, which is " +
                     (region.empty() ? "not set (AWS_REGION)" : "'" + region + "'"));
    }
    const std::string zone = region + "." + AwsDnsSuffix(region);
    if (efs) {
      plan.kind = MountPlan::Kind::kNfs;
      plan.fstype = "nfs4";
      plan.source = id + ".efs." + zone + ":" + JoinPath(*dir);
      plan.options = NfsOptions("", plan.read_only);
      return plan;
    }
    // Contract §5: an FSx DirectoryPath begins with the file system's MountName, which is the
    // Lustre fsname.
    if (dir->empty()) {
      return invalid("DirectoryPath '" + spec.directory_path + "' must begin with the FSx " +
                     "file system's MountName, e.g. /1234abcd/ns1");
    }
    plan.kind = MountPlan::Kind::kLustre;
    plan.fstype = "lustre";
    plan.source = id + ".fsx." + zone + "@tcp:" + JoinPath(*dir);
    plan.options = LustreOptions(plan.read_only);
    return plan;
  }

  return invalid("FileSystemId '" + id + "' is neither an AWS id (fs-0123abcd...) nor an " +
                 "address: nfs://server[:port]/export, mgs@tcp:/fsname or file:///path");
}

Status CheckMountSupport(const MountPlan& plan, const MountHostPaths& paths, bool check_privilege) {
  std::vector<std::string> missing;
  if (plan.kind != MountPlan::Kind::kBind) {
    bool helper = false;
    for (const std::string& d : paths.helper_dirs)
      helper |= IsExecutable(d + "/mount." + plan.fstype);
    if (!helper) missing.push_back(MissingHelperMessage(plan));
    if (!KernelSupports(plan.fstype, paths)) missing.push_back(NoKernelSupportMessage(plan));
  }
  std::string all;
  for (const std::string& m : missing) all += (all.empty() ? "" : "; ") + m;
  if (check_privilege && !HasCapSysAdmin()) {
    // Root is the first thing to fix, but name the rest so one round of fixing is enough.
    return PermissionDeniedError(PrivilegeMessage(plan) + (all.empty() ? "" : "; also " + all));
  }
  if (!all.empty()) {
    return NotFoundError(plan.Describe() + ": cannot mount " + plan.fstype + ": " + all);
  }
  return OkStatus();
}

Result<std::unique_ptr<FileSystemMount>> FileSystemMount::Mount(const MountPlan& plan,
                                                                const std::string& target,
                                                                const MountOptions& options) {
  TF_RETURN_IF_ERROR(CheckMountSupport(plan, options.host));
  if (plan.kind == MountPlan::Kind::kBind) {
    struct stat st;
    if (::stat(plan.source.c_str(), &st) != 0) {
      int err = errno;
      if (err == ENOENT) {
        return NotFoundError(plan.Describe() + ": source directory " + plan.source +
                             " does not exist");
      }
      return ErrnoToStatus(err, plan.Describe() + ": source directory " + plan.source);
    }
    if (!S_ISDIR(st.st_mode)) {
      return NotFoundError(plan.Describe() + ": source " + plan.source + " is not a directory");
    }
  }
  TF_ASSIGN_OR_RETURN(std::string real_target, PrepareTarget(plan, target));
  std::vector<int> foreign;
  for (const MountEntry& m : MountsUnder(real_target)) foreign.push_back(m.id);
  if (plan.kind == MountPlan::Kind::kBind) {
    TF_RETURN_IF_ERROR(BindMount(plan, real_target));
  } else {
    TF_RETURN_IF_ERROR(HelperMount(plan, real_target, foreign, options));
  }
  return std::unique_ptr<FileSystemMount>(
      new FileSystemMount(plan, std::move(real_target), std::move(foreign)));
}

FileSystemMount::~FileSystemMount() {
  if (!mounted_) return;
  Status s = Unmount();
  // Nobody is left to return this to; a leftover mount must not go unnoticed.
  if (!s.ok()) std::fprintf(stderr, "trainfeed: %s\n", s.ToString().c_str());
}

Status FileSystemMount::Unmount() {
  if (!mounted_) return OkStatus();
  detached_lazily_ = false;
  auto ours = [this] {
    std::vector<MountEntry> out;
    for (const MountEntry& m : MountsUnder(target_)) {
      if (std::find(foreign_mounts_.begin(), foreign_mounts_.end(), m.id) ==
          foreign_mounts_.end()) {
        out.push_back(m);
      }
    }
    return out;
  };
  std::vector<MountEntry> mounts = ours();
  // Deepest (latest) first: a parent with a submount is busy until the child goes.
  std::reverse(mounts.begin(), mounts.end());
  std::string errors;
  for (const MountEntry& m : mounts) {
    int err = 0;
    for (int attempt = 0; attempt < kBusyTries; ++attempt) {
      err = ::umount2(m.mount_point.c_str(), 0) == 0 ? 0 : errno;
      if (err != EBUSY) break;
      std::this_thread::sleep_for(kBusyPause);
    }
    if (err == EBUSY) {
      // A file still open inside (e.g. a leftover training process). Detaching frees the path
      // now and never blocks; the kernel finishes once the last file closes.
      if (::umount2(target_.c_str(), MNT_DETACH) == 0) {
        detached_lazily_ = true;
        break;
      }
      err = errno;
    }
    // EINVAL/ENOENT: already gone (someone else unmounted it).
    if (err != 0 && err != EINVAL && err != ENOENT) {
      errors += (errors.empty() ? "" : "; ") + m.mount_point + ": " + std::strerror(err);
    }
  }
  std::vector<MountEntry> left = ours();
  if (left.empty()) {
    mounted_ = false;
    return OkStatus();
  }
  std::string names;
  for (const MountEntry& m : left) names += (names.empty() ? "" : ", ") + m.mount_point;
  std::string message = plan_.Describe() + ": unmount " + target_ + " left " + names + " mounted";
  if (!errors.empty()) message += " (" + errors + ")";
  return InternalError(message);
}

std::vector<std::string> MountPointsUnder(const std::string& path) {
  std::vector<std::string> out;
  for (const MountEntry& m : MountsUnder(path)) out.push_back(m.mount_point);
  return out;
}

}  // namespace trainfeed
