"""FastFile mode: trainfeed's mount against the FUSE mounts a user would pick instead (s3fs,
rclone mount), on the same servers and networks as File mode.

Workloads, each on a fresh mount (the kernel's page cache of a mount dies with it):
  seq     sequential 1 MiB buffered reads of the one XL object                    bytes/s
  small   every file of S in a seeded shuffled order, 8 reader threads            files/s
  list    start of the mount to the end of `find MNT | wc -l` over T              seconds
          (also "trainfeed (snapshot)": the mount reuses a listing snapshot saved by an
          unmeasured mount just before)
  ttfb    open + read of one byte of the XL object, cold                          seconds
  epoch2  (contenders with a cache) XL read twice, its pages evicted in between;
          the second read                                                         bytes/s
References, measured in the same run: the server ceiling (ceiling.py) and the read ceiling of a
null FUSE file system (tools/null-fuse: reads return zeros, no I/O, max_read 1 MiB like
trainfeed's mount) for seq and epoch2; `aws s3 ls --recursive` of T for list; one raw GET's time
to first byte (curl) for ttfb.

Every mount daemon is started by the harness (trainfeed daemonizes and prints its pid; s3fs and
rclone run in the foreground as children), so its peak RSS (VmHWM) and CPU time can be read from
/proc just before it is unmounted. The first run of each contender checks contents against the
bytes the datasets were generated from. Mounts, daemons and cache folders are removed whatever
happens.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

from . import ceiling, servers, tools
from .datasets import BUCKET, MiB, make_datasets

GiB = 1 << 30
PYTHON = "/usr/bin/python3"
READER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ffread.py")
WORKLOADS = ["seq", "small", "list", "ttfb", "epoch2"]
DATASET_OF = {"seq": "XL", "small": "S", "list": "T", "ttfb": "XL", "epoch2": "XL"}
DATASETS = ["XL", "S", "T"]
UNITS = {"seq": "bytes/s", "small": "files/s", "list": "s", "ttfb": "s", "epoch2": "bytes/s"}
SMALL_THREADS = 8
SEED = 1
FUSE_CEILING_MIN_BYTES = 64 * MiB  # a shorter read through the null file system is too noisy
FUSE_CEILING_RUNS = 3
RAW_GETS = 3  # per run; their median is the run's raw time to first byte
S3FS_TUNED = ["parallel_count=32", "multipart_size=64", "max_stat_cache_size=200000",
              "multireq_max=32", "enable_noobj_cache"]


@dataclass(frozen=True)
class MountContender:
    tool: str  # "trainfeed", "s3fs", "rclone mount"
    variant: str  # "default", "cache", "tuned", "off", "full"
    describe: str
    cache: bool = False  # keeps what it read: runs epoch2
    list_only: bool = False  # only the list workload (the listing snapshot)

    @property
    def label(self):
        if self.tool == "trainfeed" and self.variant == "default":
            return "trainfeed"
        return f"{self.tool} ({self.variant})"


class MountError(Exception):
    pass


def parse_size(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?", text.strip(), re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    power = "KMGT".find(m.group(2).upper()) + 1 if m.group(2) else 0
    return int(float(m.group(1)) * (1024 if m.group(3) or not m.group(2) else 1000) ** power)


def trainfeed_mount_help(trainfeed):
    return subprocess.run([trainfeed, "mount", "--help"], capture_output=True, text=True).stdout


def memory_limit_bytes(help_text):
    m = re.search(r"--memory-limit\s+\S*?=(\S+)", help_text)
    try:
        return parse_size(m.group(1)) if m else 512 * MiB
    except ValueError:
        return 512 * MiB


def has_cache_flags(help_text):
    return re.search(r"--cache\b(?!-)", help_text) is not None and "--cache-size" in help_text


def contenders(tool_names, help_text):
    out = []
    if "trainfeed" in tool_names:
        out.append(MountContender("trainfeed", "default", "trainfeed mount (defaults: "
                                  f"--memory-limit {memory_limit_bytes(help_text) // MiB}MiB)"))
        if "--listing-snapshot" in help_text:
            out.append(MountContender("trainfeed", "snapshot", "trainfeed mount --listing-snapshot"
                                      " FILE (saved by an unmeasured mount just before)",
                                      list_only=True))
        if has_cache_flags(help_text):
            out.append(MountContender("trainfeed", "cache", "trainfeed mount --cache DIR "
                                      "--cache-size N (a fresh folder per mount; N = 2 x the data"
                                      " read, at least 1 GiB)", cache=True))
    if "s3fs" in tool_names:
        out.append(MountContender("s3fs", "default", "s3fs -f -o ro,use_path_request_style,"
                                  "url=ENDPOINT,endpoint=REGION,passwd_file=FILE (only these)"))
        out.append(MountContender("s3fs", "tuned", "the same plus -o " + ",".join(S3FS_TUNED)))
    if "rclone" in tool_names:
        common = "--read-only --use-server-modtime"
        out.append(MountContender("rclone mount", "off",
                                  f"rclone mount --vfs-cache-mode off {common}"))
        out.append(MountContender("rclone mount", "full",
                                  f"rclone mount --vfs-cache-mode full {common}", cache=True))
    return out


# ---- /proc ----

def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounted_at(path):
    """Whether anything is mounted at `path` (read from /proc/self/mountinfo, never touching it)."""
    with open("/proc/self/mountinfo") as f:
        return any(_unescape(line.split(" ", 5)[4]) == path for line in f)


def mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        paths = [_unescape(line.split(" ", 5)[4]) for line in f]
    return [p for p in paths if p.startswith(prefix)]


def cpu_seconds(pid):
    """User + system seconds of all the process's threads so far (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


# ---- Mounts ----

class Mount:
    """One mounted file system and the daemon serving it."""

    def __init__(self, contender, mountpoint, log_path, extra_dirs):
        self.contender = contender
        self.mountpoint = mountpoint
        self.log_path = log_path
        self.extra_dirs = extra_dirs  # cache folders, removed after the unmount
        self.pid = None
        self.process = None  # when the daemon is our child
        self.started = self.ready = None
        self.cpu_at_ready = 0.0

    def log_tail(self, lines=3):
        try:
            with open(self.log_path, errors="replace") as f:
                return " | ".join(l.strip() for l in f.read().splitlines()[-lines:] if l.strip())
        except OSError:
            return ""


class MountTools:
    """Mounts and unmounts each contender; remembers every live mount so cleanup() can always
    remove them."""

    def __init__(self, trainfeed, null_fuse, work_dir, datasets_by_name, timeout):
        self.dir = os.path.join(work_dir, "fastfile")
        os.makedirs(self.dir, exist_ok=True)
        # Daemons run from copies: a rebuild of the build folder during the run neither changes
        # what is measured nor fails to link over a running binary.
        self.trainfeed = os.path.join(self.dir, "trainfeed")
        self.null_fuse = os.path.join(self.dir, "tf-null-fuse")
        shutil.copy2(trainfeed, self.trainfeed)
        shutil.copy2(null_fuse, self.null_fuse)
        self.timeout = timeout
        self.sets = datasets_by_name
        self.active = []
        self.seq = 0
        self.expected = {}  # (dataset, index, size) -> SHA-256 of the generated bytes
        self.help = trainfeed_mount_help(trainfeed)
        self.memory_limit = memory_limit_bytes(self.help)
        with open(os.path.join(self.dir, "rclone.conf"), "w"):
            pass
        with open(os.path.join(self.dir, "aws.ini"), "w") as f:
            f.write("[default]\n")

    def _fresh(self, stem):
        self.seq += 1
        path = os.path.join(self.dir, f"{stem}-{self.seq}")
        os.makedirs(path)
        return path

    def snapshot_path(self, endpoint):
        # One per endpoint: a snapshot only serves the endpoint it was listed from.
        name = re.sub(r"[^A-Za-z0-9]+", "-", endpoint).strip("-")
        return os.path.join(self.dir, f"listing-{name}.snapshot")

    def cache_bytes(self):
        read = sum(ds.total_bytes for name, ds in self.sets.items() if name in ("XL", "S"))
        return max(GiB, 2 * read)

    def command(self, c, ds, endpoint_env, mnt, cache_dir):
        env = tools.base_env(endpoint_env)
        endpoint = endpoint_env["AWS_ENDPOINT_URL"]
        if c.tool == "trainfeed":
            argv = [self.trainfeed, "mount", f"s3://{BUCKET}/{ds.prefix}", mnt]
            if c.cache:
                argv += ["--cache", cache_dir, "--cache-size", f"{self.cache_bytes() // MiB}MiB"]
            if c.list_only:
                argv += ["--listing-snapshot", self.snapshot_path(endpoint)]
            return argv, env
        if c.tool == "s3fs":
            passwd = os.path.join(self.dir, "passwd-s3fs")
            with open(os.open(passwd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(f"{endpoint_env['AWS_ACCESS_KEY_ID']}:"
                        f"{endpoint_env['AWS_SECRET_ACCESS_KEY']}\n")
            os.chmod(passwd, 0o600)
            env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
            options = ["ro", "use_path_request_style", f"url={endpoint}", f"passwd_file={passwd}",
                       f"endpoint={endpoint_env['AWS_DEFAULT_REGION']}", "dbglevel=err"]
            if c.variant == "tuned":
                options += S3FS_TUNED
            return ["s3fs", f"{BUCKET}:/{ds.name}", mnt, "-f", "-o", ",".join(options)], env
        if c.tool == "rclone mount":
            env.update(tools.rclone_env(self.dir, endpoint_env))
            argv = ["rclone", "mount", f"bench:{BUCKET}/{ds.name}", mnt, "--read-only",
                    "--use-server-modtime", "--vfs-cache-mode", c.variant]
            if c.cache:
                argv += ["--cache-dir", cache_dir]
            return argv, env
        raise ValueError(c.tool)

    def mount(self, c, ds, endpoint_env):
        mnt = self._fresh("mnt")
        cache_dir = self._fresh("cache") if c.cache else None
        m = Mount(c, mnt, os.path.join(self.dir, f"mount-{self.seq}.log"),
                  [cache_dir] if cache_dir else [])
        self.active.append(m)
        argv, env = self.command(c, ds, endpoint_env, mnt, cache_dir)
        with open(m.log_path, "ab") as log:
            log.write(("$ " + " ".join(argv) + "\n").encode())
            log.flush()
            m.started = time.monotonic()
            if c.tool == "trainfeed":
                # Returns once the mount answers, leaving the daemon, which logs its pid.
                r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=log, timeout=self.timeout)
                m.ready = time.monotonic()
                found = re.search(r"\(pid (\d+)\)", open(m.log_path, errors="replace").read())
                if found:
                    m.pid = int(found.group(1))
                if r.returncode != 0:
                    raise MountError(f"trainfeed mount: exit status {r.returncode}: "
                                     f"{m.log_tail()}")
                if not m.pid:
                    raise MountError("trainfeed mount did not log its daemon's pid")
            else:
                m.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log, start_new_session=True)
                m.pid = m.process.pid
                self._wait_until_mounted(m)
                m.ready = time.monotonic()
        m.cpu_at_ready = cpu_seconds(m.pid) or 0.0
        return m

    def mount_null(self, size):
        mnt = self._fresh("mnt")
        c = MountContender("null-fuse", "", "")
        m = Mount(c, mnt, os.path.join(self.dir, f"mount-{self.seq}.log"), [])
        self.active.append(m)
        with open(m.log_path, "ab") as log:
            m.started = time.monotonic()
            m.process = subprocess.Popen([self.null_fuse, mnt, "--size", str(size), "--count",
                                          "1", "--foreground"], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        m.pid = m.process.pid
        self._wait_until_mounted(m)
        m.ready = time.monotonic()
        return m

    def _wait_until_mounted(self, m):
        """Until the mount answers a stat() of its root (polled every 2 ms: the list workload's
        time includes the mount's)."""
        deadline = time.monotonic() + min(self.timeout, 120)
        parent_dev = os.stat(os.path.dirname(m.mountpoint)).st_dev
        while time.monotonic() < deadline:
            if m.process.poll() is not None:
                raise MountError(f"{m.contender.label}: exited with status "
                                 f"{m.process.returncode} before mounting: {m.log_tail()}")
            if mounted_at(m.mountpoint):
                try:
                    if os.stat(m.mountpoint).st_dev != parent_dev:
                        return
                except OSError:
                    pass
            time.sleep(0.002)
        raise MountError(f"{m.contender.label}: not mounted after {deadline - m.started:.0f} s: "
                         f"{m.log_tail()}")

    def unmount(self, m):
        """Detaches the mount, waits for its daemon to end (killing it if it does not), removes
        the mount point and cache folders."""
        try:
            for attempt in range(3):
                if not mounted_at(m.mountpoint):
                    break
                if m.contender.tool == "trainfeed" and attempt == 0:
                    argv = [self.trainfeed, "unmount", m.mountpoint]
                elif attempt <= 1:
                    argv = ["fusermount3", "-u", "-z", m.mountpoint]
                else:
                    argv = ["umount", "-l", m.mountpoint]
                try:
                    subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                   timeout=60)
                except (OSError, subprocess.SubprocessError):
                    pass  # the next attempt, or the kill below, takes over
            self._stop_daemon(m)
        finally:
            if mounted_at(m.mountpoint):  # the daemon is gone: nothing holds the mount up now
                subprocess.run(["umount", "-l", m.mountpoint], capture_output=True)
            try:
                os.rmdir(m.mountpoint)
            except OSError:
                pass
            for d in m.extra_dirs:
                servers.remove_tree(d)
            if m in self.active:
                self.active.remove(m)

    def _stop_daemon(self, m, grace=20):
        if m.pid is None:
            return
        deadline = time.monotonic() + grace
        sent = None
        while alive(m.pid):
            if m.process is not None and m.process.poll() is not None:
                break
            now = time.monotonic()
            if now > deadline:
                if sent == signal.SIGKILL:
                    break
                sent = signal.SIGTERM if sent is None else signal.SIGKILL
                try:
                    os.kill(m.pid, sent)
                except OSError:
                    break
                deadline = now + (5 if sent == signal.SIGTERM else 10)
            time.sleep(0.01)
        if m.process is not None:
            try:
                m.process.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def cleanup(self):
        for m in list(self.active):
            try:
                if m.pid and alive(m.pid):
                    os.kill(m.pid, signal.SIGTERM)
            except OSError:
                pass
            self.unmount(m)
        for path in mounts_under(self.dir + "/"):
            subprocess.run(["umount", "-l", path], capture_output=True)


# ---- Workloads ----

class ReaderError(Exception):
    pass


def reader(args, timeout):
    r = subprocess.run([PYTHON, READER] + args, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise ReaderError(f"reader {args[0]} failed: {last}")
    return json.loads(r.stdout)


_drop_caches_works = None


def drop_page_cache():
    """Drops the kernel's page cache where allowed (root), before every mount and before the
    listing reference, so that all start equally cold (binaries included). Where it is not
    allowed, fresh mounts and evicting the file's pages still make every read through a mount
    cold."""
    global _drop_caches_works
    if _drop_caches_works is False:
        return False
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        _drop_caches_works = True
    except OSError:
        _drop_caches_works = False
    return _drop_caches_works


class Bench:
    """The FastFile benchmark for one server profile and network."""

    def __init__(self, args, mounts, sets, pool, results, log):
        self.args = args
        self.mounts = mounts
        self.sets = sets
        self.pool = pool
        self.results = results
        self.log = log
        self.lists = {}

    def expected_sha256(self, ds, index):
        key = (ds.name, index, ds.size)
        if key not in self.mounts.expected:  # hashing 2 GiB takes seconds: once per run
            self.mounts.expected[key] = self.pool.sha256(index, ds.size)
        return self.mounts.expected[key]

    def small_list(self, ds):
        if ds.name not in self.lists:
            path = os.path.join(self.mounts.dir, f"{ds.name}.list")
            with open(path, "w") as f:
                for key in ds.keys():
                    f.write(key[len(ds.prefix):] + "\n")
            self.lists[ds.name] = path
        return self.lists[ds.name]

    def verify_files(self, mnt, ds, indices):
        keys = list(ds.keys())
        paths = [os.path.join(mnt, keys[i][len(ds.prefix):]) for i in indices]
        got = reader(["sha256"] + paths, self.args.timeout)
        for i, path in zip(indices, paths):
            if got[path] != self.expected_sha256(ds, i):
                raise ReaderError(f"wrong content in {keys[i]}: sha256 {got[path][:16]}... "
                                  f"expected {self.expected_sha256(ds, i)[:16]}...")

    def run_contender(self, c, workload, endpoint_env, server, verify):
        ds = self.sets[DATASET_OF[workload]]
        timeout = self.args.timeout
        sample = {"ok": False, "error": "", "value": None, "wall": 0.0, "cpu": 0.0,
                  "cpu_total": 0.0, "rss_kib": 0, "bytes": 0, "bytes_served": 0,
                  "verified": False}
        start = time.monotonic()
        metered = workload in ("seq", "small", "epoch2")  # radosgw's meter costs a CLI call
        before = server.bytes_served() if metered else 0
        m = None
        try:
            if c.list_only and not os.path.exists(
                    self.mounts.snapshot_path(endpoint_env["AWS_ENDPOINT_URL"])):
                self.mounts.unmount(self.mounts.mount(c, ds, endpoint_env))  # saves the snapshot
            drop_page_cache()
            m = self.mounts.mount(c, ds, endpoint_env)
            first_key = next(ds.keys())[len(ds.prefix):]
            big = os.path.join(m.mountpoint, first_key)
            if workload == "seq":
                r = reader(["seq", big], timeout)
                if r["bytes"] != ds.size:
                    raise ReaderError(f"read {r['bytes']} bytes of {ds.size}")
                sample["value"], sample["bytes"] = r["bytes"] / r["seconds"], r["bytes"]
            elif workload == "small":
                r = reader(["small", m.mountpoint, self.small_list(ds), "--threads",
                            str(SMALL_THREADS), "--seed", str(SEED)], timeout)
                if (r["files"], r["bytes"]) != (ds.count, ds.total_bytes):
                    raise ReaderError(f"read {r['files']} files, {r['bytes']} bytes; expected "
                                      f"{ds.count}, {ds.total_bytes}")
                sample["value"], sample["bytes"] = r["files"] / r["seconds"], r["bytes"]
            elif workload == "list":
                out = subprocess.run(["sh", "-c", 'find "$1" | wc -l', "find", m.mountpoint],
                                     capture_output=True, text=True, timeout=timeout)
                seconds = time.monotonic() - m.started
                folders = len({os.path.dirname(k) for k in ds.keys()} - {ds.name})
                want = ds.count + folders + 1
                if out.returncode != 0 or int(out.stdout.strip() or 0) != want:
                    raise ReaderError(f"find listed {out.stdout.strip()} paths, expected {want}"
                                      f" {out.stderr.strip()[:200]}")
                sample["value"] = seconds
                sample["verified"] = True
            elif workload == "ttfb":
                r = reader(["ttfb", big], timeout)
                if r["byte"] != ord("0"):  # every object starts with its index in decimal
                    raise ReaderError(f"first byte {r['byte']}, expected {ord('0')}")
                sample["value"] = r["seconds"]
                sample["verified"] = True
            elif workload == "epoch2":
                first = reader(["seq", big], timeout)
                reader(["evict", big], timeout)
                drop_page_cache()
                r = reader(["seq", big], timeout)
                if (first["bytes"], r["bytes"]) != (ds.size, ds.size):
                    raise ReaderError(f"read {first['bytes']} then {r['bytes']} bytes of "
                                      f"{ds.size}")
                sample["value"], sample["bytes"] = r["bytes"] / r["seconds"], r["bytes"]
                sample["epoch1"] = first["bytes"] / first["seconds"]
            cpu = cpu_seconds(m.pid)
            if cpu is None:
                raise MountError(f"{c.label}: the daemon (pid {m.pid}) is gone: {m.log_tail()}")
            sample["cpu"], sample["cpu_total"] = cpu - m.cpu_at_ready, cpu
            sample["rss_kib"] = peak_rss_kib(m.pid)
            if metered:  # before the checks below, which read again
                sample["bytes_served"] = server.bytes_served() - before
            if verify and workload in ("seq", "epoch2"):
                if workload == "epoch2":
                    reader(["evict", big], timeout)  # the third read comes from the cache too
                self.verify_files(m.mountpoint, ds, [0])
                sample["verified"] = True
            elif verify and workload == "small":
                self.verify_files(m.mountpoint, ds, sorted({0, ds.count // 2, ds.count - 1}))
                sample["verified"] = True
            sample["rss_kib"] = max(sample["rss_kib"], peak_rss_kib(m.pid))
            sample["ok"] = True
        except (MountError, ReaderError, OSError, ValueError, KeyError, RuntimeError,
                subprocess.SubprocessError) as e:
            sample["error"] = str(e) if not isinstance(e, subprocess.TimeoutExpired) else \
                f"timed out after {timeout:.0f} s"
        finally:
            if m is not None:
                if sample["ok"] is False and m.pid and not sample["rss_kib"]:
                    sample["rss_kib"] = peak_rss_kib(m.pid)
                self.mounts.unmount(m)
                if m.log_path:
                    with open(m.log_path, "rb") as src, open(self.log, "ab") as dst:
                        dst.write(f"\n# {c.label} {workload}\n".encode() + src.read())
                    os.unlink(m.log_path)
        sample["wall"] = time.monotonic() - start
        return sample

    def aws_ls(self, endpoint_env):
        ds = self.sets["T"]
        env = tools.base_env(endpoint_env)
        env["AWS_CONFIG_FILE"] = os.path.join(self.mounts.dir, "aws.ini")
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        argv = [tools.AWS, "--endpoint-url", endpoint_env["AWS_ENDPOINT_URL"], "s3", "ls",
                "--recursive", f"s3://{BUCKET}/{ds.prefix}"]
        drop_page_cache()  # as cold as the mounts it is compared with
        start = time.monotonic()
        r = subprocess.run(argv, env=env, capture_output=True, text=True,
                           timeout=self.args.timeout)
        seconds = time.monotonic() - start
        lines = len(r.stdout.splitlines())
        ok = r.returncode == 0 and lines == ds.count
        error = "" if ok else f"exit status {r.returncode}, {lines} keys of {ds.count}: " \
                              f"{r.stderr.strip()[-200:]}"
        return {"ok": ok, "error": error, "value": seconds, "wall": seconds}

    def raw_get(self, endpoint_env, signed):
        """One GET of the first MiB of the XL object (a fresh connection, like a cold mount's):
        curl's time to the first body byte. The median of RAW_GETS."""
        ds = self.sets["XL"]
        url = f"{endpoint_env['AWS_ENDPOINT_URL']}/{BUCKET}/{next(ds.keys())}"
        conf = os.path.join(self.mounts.dir, "curl-ttfb.conf")
        with open(conf, "w") as f:
            f.write(ceiling._curl_config(endpoint_env, [(url, f"0-{MiB - 1}")], signed))
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        times = []
        for _ in range(RAW_GETS):
            r = subprocess.run(["curl", "--no-progress-meter", "-w", "%{time_starttransfer}",
                                "-K", conf], env=env, capture_output=True, text=True,
                               timeout=self.args.timeout)
            if r.returncode != 0:
                return {"ok": False, "error": f"curl: {r.stderr.strip()[-200:]}", "value": None,
                        "wall": 0.0}
            times.append(float(r.stdout.strip().replace(",", ".")))
        times.sort()
        return {"ok": True, "error": "", "value": times[len(times) // 2], "wall": sum(times),
                "all": times}


def measure_fuse_ceiling(mounts, size, timeout, runs=FUSE_CEILING_RUNS):
    """Sequential 1 MiB reads of one file of the null FUSE file system, each on a fresh mount:
    the best of `runs`."""
    size = max(size, FUSE_CEILING_MIN_BYTES)
    rates = []
    for _ in range(runs):
        drop_page_cache()
        m = mounts.mount_null(size)
        try:
            r = reader(["seq", os.path.join(m.mountpoint, "file000000")], timeout)
            if r["bytes"] != size:
                raise ReaderError(f"null FUSE read {r['bytes']} bytes of {size}")
            rates.append(r["bytes"] / r["seconds"])
        finally:
            mounts.unmount(m)
    return {"bytes_per_s": max(rates), "runs": rates, "size": size}


def new_section(args, mounts, contender_list, sets):
    return {"contenders": {c.label: c.describe for c in contender_list},
            "tools": {c.label: c.tool for c in contender_list},
            "workloads": args.workloads, "records": [],
            "memory_limit_bytes": mounts.memory_limit,
            "cache_flags": has_cache_flags(mounts.help),
            "datasets": {n: {"count": ds.count, "size": ds.size, "total_bytes": ds.total_bytes,
                             "describe": ds.describe()} for n, ds in sets.items()},
            "small_threads": SMALL_THREADS}


def run_network(args, profile, network, server, env, sets, contender_list, mounts, pool,
                results, log_path):
    """Every workload for every contender, --runs rounds, on one server profile and network."""
    ff = results["fastfile"]
    signed = profile == "real"
    for name in ("XL", "S"):
        key = f"{profile}/{network}/{name}"
        if key not in results["ceilings"]:
            results["ceilings"][key] = ceiling.measure_ceiling(sets[name], env, signed=signed,
                                                               work_dir=mounts.dir)
        c = results["ceilings"][key]
        print(f"# {key}: ceiling {c['bytes_per_s'] / 2**20:,.0f} MiB/s, "
              f"{c['objects_per_s']:,.0f} obj/s", flush=True)
    bench = Bench(args, mounts, sets, pool, results, log_path)
    # A snapshot left by another server on the same endpoint would list that server's objects.
    snapshot = mounts.snapshot_path(env["AWS_ENDPOINT_URL"])
    if os.path.exists(snapshot):
        os.unlink(snapshot)

    def record(workload, tool, variant, label, reference=False):
        ds = sets[DATASET_OF[workload]]
        r = {"profile": profile, "network": network, "workload": workload, "tool": tool,
             "variant": variant, "label": label, "reference": reference,
             "unit": UNITS[workload], "samples": [],
             "dataset": {"name": ds.name, "count": ds.count, "size": ds.size,
                         "total_bytes": ds.total_bytes, "describe": ds.describe()}}
        ff["records"].append(r)
        return r

    plan = []  # (workload, contender or reference name, record)
    for workload in args.workloads:
        if workload == "list":
            plan.append((workload, "aws s3 ls", record(workload, "aws s3 ls", "", "aws s3 ls",
                                                       True)))
        if workload == "ttfb":
            plan.append((workload, "raw GET", record(workload, "raw GET", "", "raw GET", True)))
        for c in contender_list:
            if (workload == "epoch2" and not c.cache) or (c.list_only and workload != "list"):
                continue
            plan.append((workload, c, record(workload, c.tool, c.variant, c.label)))
    for round_ in range(args.runs):
        for workload, who, rec in plan:
            samples = rec["samples"]
            if round_ and (not samples[-1]["ok"] or samples[-1]["wall"] > args.slow_seconds):
                continue  # slow or broken: one run says enough
            if who in ("aws s3 ls", "raw GET"):
                try:
                    sample = bench.aws_ls(env) if who == "aws s3 ls" else \
                        bench.raw_get(env, signed)
                except (OSError, ValueError, subprocess.SubprocessError) as e:
                    sample = {"ok": False, "error": f"{who}: {e}", "value": None, "wall": 0.0}
            else:
                sample = bench.run_contender(who, workload, env, server, verify=round_ == 0)
            samples.append(sample)
            if not sample["ok"]:
                status = "failed: " + sample["error"]
            elif UNITS[workload] == "bytes/s":
                status = f"{sample['value'] / MiB:9.1f} MiB/s"
            elif UNITS[workload] == "files/s":
                status = f"{sample['value']:9.1f} files/s"
            else:
                status = f"{sample['value'] * (1000 if workload == 'ttfb' else 1):9.3f} " + \
                         ("ms" if workload == "ttfb" else "s")
            print(f"  {profile}/{network} {workload:<6} {rec['label']:<20} run {round_ + 1}: "
                  f"{status}", flush=True)


def datasets_needed(scale):
    return make_datasets(scale, DATASETS)
