"""Pipe mode: one epoch streamed by `trainfeed pipe` against what a user would pick instead to
stream objects into a training process, on the same servers and networks as File mode.

Per dataset (L, S), every contender delivers all objects of the prefix, in listing order, into
the same reader: a separate Python process that reads 1 MiB at a time and discards, recording
when its first byte arrived and when EOF came, counting bytes and reading the 16-byte header each
object starts with (its index), so that the byte count and the order are checked on every run.

  trainfeed pipe     trainfeed pipe s3://bench/DS/ DIR --channel bench --epochs 2: the reader
                     opens DIR/bench_0, then DIR/bench_1. Also: the time from the start of the
                     process to the first byte of _0, from EOF of _0 to the first byte of _1, and
                     trainfeed's peak RSS (GNU time).
  aws s3 cp          `aws s3 cp s3://bench/KEY -` per object, one process after the other, into
                     one pipe. Once --slow-seconds have passed no new object is started, and the
                     rate of the objects done stands for the epoch ("extrapolated k/N").
  rclone cat         `rclone cat bench:bench/DS`, default and tuned (its docs: --checkers lists
                     folders in parallel, and cat opens each listed object as it comes;
                     --buffer-size is the read-ahead per open object). rclone's order across
                     folders is its own: only the multiset of objects is checked.
  FastFile cat       `trainfeed mount` of the prefix, then `cat` of every file in listing order.
Throughput is bytes / (start of the command -> EOF), so every contender pays its own start-up,
listing and first request.

References: the server ceiling (ceiling.py) and the pipe ceiling of this machine
(tools/pipe-ceiling: 1 MiB writes into a pipe raised to pipe-max-size, best of 3), measured both
with its own C++ reader and into the benchmark's Python reader; the lower is the one quoted,
since every contender's bytes go through that reader.

Run as a script, this file is that reader:
  pipe.py read --fifo PREFIX --epochs N --object-size B   reads PREFIX_0 .. PREFIX_(N-1)
  pipe.py read --stdin --object-size B                     reads its standard input
It prints "ready" once started, then one JSON object: per epoch {bytes, opened, first, eof,
headers} with CLOCK_MONOTONIC timestamps (comparable with the harness's time.monotonic()).
"""
import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

if __package__:  # imported by bench/run; run as a script, only the reader below is needed
    from . import ceiling, fastfile, servers, tools
    from .datasets import BUCKET, MiB, fmt_bytes, make_datasets

CHUNK = 1 << 20
HEADER = 16  # every benchmark object starts with its index: 15 decimal digits and "\n"
POLL_SECONDS = 0.0005  # how often the reader looks for the next FIFO, as PipeModeDataset polls
DATASETS = ["L", "S"]
CHANNEL = "bench"
PYTHON = "/usr/bin/python3"
TIME = "/usr/bin/time"
RCLONE_TUNED = ["--checkers", "32", "--buffer-size", "64M"]
PIPE_CEILING_RUNS = 3
DEFAULT_BUFFER = 256 << 20


# ---- The reader (stdlib only) ----

def _parse_header(raw):
    return int(raw[:15]) if len(raw) == HEADER and raw[15:16] == b"\n" and raw[:15].isdigit() \
        else -1


def read_stream(fd, object_size):
    """Reads fd to EOF in 1 MiB reads; returns bytes, first and eof times, object headers."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total, first, headers = 0, None, []
    next_boundary, partial = 0, None
    while True:
        try:
            n = os.readv(fd, [view])
        except InterruptedError:
            continue
        if not n:
            break
        if first is None:
            first = time.monotonic()
        got = view[:n]
        if partial is not None:  # a header cut by the previous read
            partial += got[:HEADER - len(partial)]
            if len(partial) == HEADER:
                headers.append(_parse_header(bytes(partial)))
                partial = None
        while next_boundary < total + n:
            piece = bytes(got[next_boundary - total:next_boundary - total + HEADER])
            if len(piece) == HEADER:
                headers.append(_parse_header(piece))
            else:
                partial = bytearray(piece)
            next_boundary += object_size
        total += n
    if partial is not None:
        headers.append(-1)
    return {"bytes": total, "first": first, "eof": time.monotonic(), "headers": headers}


def reader_main(argv):
    p = argparse.ArgumentParser(prog="pipe.py read")
    p.add_argument("cmd", choices=["read"])
    p.add_argument("--fifo", help="FIFO prefix: reads PREFIX_0, PREFIX_1, ...")
    p.add_argument("--stdin", action="store_true")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--object-size", type=int, required=True)
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for a FIFO")
    a = p.parse_args(argv)
    print("ready", flush=True)
    epochs = []
    if a.stdin:
        r = read_stream(0, a.object_size)
        r["opened"] = None
        epochs.append(r)
    else:
        for e in range(a.epochs):
            path = f"{a.fifo}_{e}"
            deadline = time.monotonic() + a.timeout
            while not os.path.exists(path):
                if time.monotonic() > deadline:
                    print(f"{path} did not appear within {a.timeout:.0f} s", file=sys.stderr)
                    return 1
                time.sleep(POLL_SECONDS)
            fd = os.open(path, os.O_RDONLY)
            opened = time.monotonic()
            try:
                r = read_stream(fd, a.object_size)
            finally:
                os.close(fd)
            r["opened"] = opened
            epochs.append(r)
    json.dump({"epochs": epochs}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(reader_main(sys.argv[1:]))


# ---- The harness side ----

class RunError(Exception):
    pass


def datasets_needed(scale):
    return make_datasets(scale, DATASETS)


def listing_order(ds):
    """Object indices in the order S3 lists their keys (ascending UTF-8 bytes)."""
    return [i for i, _ in sorted(enumerate(ds.keys()), key=lambda t: t[1].encode())]


def raise_pipe_size(fd):
    try:
        size = int(open("/proc/sys/fs/pipe-max-size").read())
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
    except (OSError, ValueError):
        pass  # a smaller pipe only makes the peers slower: trainfeed raises its own FIFOs


def buffer_bytes(help_text):
    m = re.search(r"--buffer-size\s+\S*?=(\S+)", help_text)
    try:
        return fastfile.parse_size(m.group(1)) if m else DEFAULT_BUFFER
    except ValueError:
        return DEFAULT_BUFFER


class Reader:
    """The reader process; started before the contender, so its start-up is not measured."""

    def __init__(self, args, object_size, timeout, stdin=None):
        self.process = subprocess.Popen(
            [PYTHON, os.path.abspath(__file__), "read", "--object-size", str(object_size),
             "--timeout", str(timeout)] + args, stdin=stdin if stdin is not None else
            subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        line = self.process.stdout.readline()
        if line.strip() != b"ready":
            self.kill()
            raise RunError(f"reader did not start: {line!r} {self.process.stderr.read()[-300:]!r}")

    def result(self, timeout):
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RunError(f"reader still reading {timeout:.0f} s after the writer ended")
        if self.process.returncode != 0:
            raise RunError(f"reader failed: {err.decode(errors='replace').strip()[-300:]}")
        return json.loads(out)["epochs"]

    def kill(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except OSError:
                pass
            self.process.wait()


def _usage(path):
    """(cpu seconds, peak RSS KiB) from GNU time's -f '%U %S %M' file."""
    try:
        user, system, rss = open(path).read().split("\n")[-2].split()
        return float(user) + float(system), int(rss)
    except (OSError, ValueError, IndexError):
        return 0.0, 0


def _log(log_path, text):
    with open(log_path, "ab") as f:
        f.write(text.encode() if isinstance(text, str) else text)


def _kill_group(process):
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        process.wait()


class Bench:
    """The Pipe-mode runs for one server profile and network."""

    def __init__(self, args, trainfeed, mounts, work, log_path):
        self.args = args
        self.trainfeed = trainfeed
        self.mounts = mounts
        self.dir = os.path.join(work, "pipe")
        os.makedirs(self.dir, exist_ok=True)
        self.log = log_path
        self.seq = 0
        with open(os.path.join(self.dir, "aws.ini"), "w") as f:
            f.write("[default]\n")
        with open(os.path.join(self.dir, "rclone.conf"), "w"):
            pass

    def _fresh(self, stem):
        self.seq += 1
        path = os.path.join(self.dir, f"{stem}-{self.seq}")
        os.makedirs(path)
        return path

    def check(self, ds, epoch, sample, ordered=True, objects=None):
        objects = ds.count if objects is None else objects
        want_bytes = objects * ds.size
        if epoch["bytes"] != want_bytes:
            raise RunError(f"read {epoch['bytes']} bytes, expected {want_bytes}")
        expected = listing_order(ds)[:objects]
        got = epoch["headers"]
        if (got != expected) if ordered else (sorted(got) != sorted(expected)):
            wrong = next((i for i, (g, w) in enumerate(zip(got, expected)) if g != w),
                         min(len(got), len(expected)))
            raise RunError(f"objects out of order or wrong from position {wrong} "
                           f"({len(got)} headers read)")
        sample["verified"] = True

    # -- contenders --

    def run_trainfeed(self, ds, env, sample):
        fifo_dir = self._fresh("fifos")
        usage = os.path.join(self.dir, f"usage-{self.seq}")
        argv = [self.trainfeed, "--endpoint-url", env["AWS_ENDPOINT_URL"], "pipe",
                f"s3://{BUCKET}/{ds.prefix}", fifo_dir, "--channel", CHANNEL, "--epochs", "2"]
        reader = Reader(["--fifo", os.path.join(fifo_dir, CHANNEL), "--epochs", "2"], ds.size,
                        self.args.timeout)
        err_path = os.path.join(self.dir, f"stderr-{self.seq}")
        try:
            _log(self.log, "\n$ " + " ".join(argv) + "\n")
            with open(err_path, "wb") as log:
                start = time.monotonic()
                process = subprocess.Popen([TIME, "-o", usage, "-f", "%U %S %M"] + argv,
                                           env=tools.base_env(env), stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=log, start_new_session=True)
                try:
                    process.wait(self.args.timeout)
                except subprocess.TimeoutExpired:
                    _kill_group(process)
                    raise RunError(f"timed out after {self.args.timeout:.0f} s")
            if process.returncode != 0:
                raise RunError(f"exit status {process.returncode} (see {self.log})")
            epochs = reader.result(60)
        finally:
            reader.kill()
            servers.remove_tree(fifo_dir)
            if os.path.exists(err_path):
                with open(err_path, "rb") as f:
                    text = f.read()
                _log(self.log, text)
                os.unlink(err_path)
                # trainfeed's own per-epoch report lines (waited for data vs. for the reader).
                sample["report"] = [l for l in text.decode(errors="replace").splitlines()
                                    if "epoch" in l][-2:]
        sample["cpu"], sample["rss_kib"] = _usage(usage)
        e0, e1 = epochs
        sample["cpu_bytes"] = e0["bytes"] + e1["bytes"]  # its CPU time covers both epochs
        self.check(ds, e0, sample)
        self.check(ds, e1, sample)
        sample["seconds"] = e0["eof"] - start
        sample["first_byte"] = e0["first"] - start
        sample["gap"] = e1["first"] - e0["eof"]
        sample["epoch2_bytes_per_s"] = e1["bytes"] / max(e1["eof"] - e1["opened"], 1e-9)

    def _into_pipe(self, ds, argvs, env, sample, budget=None, ordered=True):
        """Runs the commands one after the other with stdout into one pipe the reader drains.
        With a budget, no command starts once it has passed; returns how many ran."""
        r, w = os.pipe()
        raise_pipe_size(w)
        try:
            reader = Reader(["--stdin"], ds.size, self.args.timeout, stdin=r)
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        done = 0
        cpu = 0.0
        rss = 0
        try:
            start = time.monotonic()
            deadline = start + self.args.timeout
            for argv in argvs:
                if budget is not None and done and time.monotonic() - start > budget:
                    break
                usage = os.path.join(self.dir, f"usage-{self.seq}-{done}")
                with open(self.log, "ab") as log:
                    if done == 0 or budget is None:
                        log.write(("\n$ " + " ".join(argv) + " > PIPE\n").encode())
                    process = subprocess.Popen([TIME, "-o", usage, "-f", "%U %S %M"] + argv,
                                               env=env, stdin=subprocess.DEVNULL, stdout=w,
                                               stderr=log, start_new_session=True)
                    try:
                        process.wait(max(1.0, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        _kill_group(process)
                        raise RunError(f"timed out after {self.args.timeout:.0f} s")
                c, m = _usage(usage)
                cpu, rss = cpu + c, max(rss, m)
                if process.returncode != 0:
                    raise RunError(f"{os.path.basename(argv[0])}: exit status "
                                   f"{process.returncode} (see {self.log})")
                done += 1
            os.close(w)
            w = None
            epochs = reader.result(60)
        finally:
            if w is not None:
                os.close(w)
            reader.kill()
        e0 = epochs[0]
        objects = done if budget is not None else None
        self.check(ds, e0, sample, ordered=ordered, objects=objects)
        sample["seconds"] = e0["eof"] - start
        sample["first_byte"] = (e0["first"] - start) if e0["first"] else None
        sample["cpu"], sample["rss_kib"] = cpu, rss
        return done

    def run_aws(self, ds, env, sample):
        env_c = tools.base_env(env)
        env_c["AWS_CONFIG_FILE"] = os.path.join(self.dir, "aws.ini")
        env_c["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        keys = sorted(ds.keys(), key=str.encode)
        argvs = [[tools.AWS, "--endpoint-url", env["AWS_ENDPOINT_URL"], "s3", "cp",
                  f"s3://{BUCKET}/{k}", "-"] for k in keys]
        done = self._into_pipe(ds, argvs, env_c, sample, budget=self.args.slow_seconds)
        if done < ds.count:
            sample["extrapolated"] = f"{done}/{ds.count}"
            sample["bytes_done"] = done * ds.size

    def run_rclone(self, ds, env, sample, tuned):
        env_c = tools.base_env(env)
        env_c.update(tools.rclone_env(self.dir, env))
        argv = ["rclone", "cat", f"bench:{BUCKET}/{ds.name}"] + (RCLONE_TUNED if tuned else [])
        self._into_pipe(ds, [argv], env_c, sample, ordered=False)

    def run_fastfile(self, ds, env, sample):
        c = fastfile.MountContender("trainfeed", "default", "")
        start = time.monotonic()
        m = self.mounts.mount(c, ds, env)
        try:
            listed = os.path.join(self.dir, f"{ds.name}.files")
            keys = list(ds.keys())
            with open(listed, "w") as f:
                for i in listing_order(ds):
                    f.write(os.path.join(m.mountpoint, keys[i][len(ds.prefix):]) + "\n")
            # xargs keeps the order and runs as few cat processes as the argument limit allows.
            self._into_pipe(ds, [["xargs", "-d", "\n", "-a", listed, "cat"]], os.environ.copy(),
                            sample)
            mount_seconds = m.ready - start
            sample["seconds"] += mount_seconds  # the mount's start-up and listing count too
            if sample.get("first_byte") is not None:
                sample["first_byte"] += mount_seconds
            # The mount daemon does the work: its CPU and memory are what this contender costs.
            sample["cpu"] += fastfile.cpu_seconds(m.pid) or 0.0
            sample["rss_kib"] = fastfile.peak_rss_kib(m.pid)
        finally:
            with open(m.log_path, "rb") as src:
                _log(self.log, b"\n# FastFile cat\n" + src.read())
            self.mounts.unmount(m)

    def run(self, who, ds, env):
        sample = {"ok": False, "error": "", "value": None, "wall": 0.0, "seconds": None,
                  "first_byte": None, "gap": None, "cpu": 0.0, "rss_kib": 0, "verified": False,
                  "extrapolated": None}
        start = time.monotonic()
        try:
            if who == "trainfeed pipe":
                self.run_trainfeed(ds, env, sample)
            elif who == "aws s3 cp":
                self.run_aws(ds, env, sample)
            elif who.startswith("rclone cat"):
                self.run_rclone(ds, env, sample, tuned=who.endswith("(tuned)"))
            elif who == "FastFile cat":
                self.run_fastfile(ds, env, sample)
            else:
                raise ValueError(who)
            moved = sample.get("bytes_done", ds.total_bytes)
            sample["value"] = moved / sample["seconds"]
            sample["ok"] = True
        except (RunError, fastfile.MountError, OSError, ValueError, KeyError,
                subprocess.SubprocessError) as e:
            sample["error"] = str(e)
        sample["wall"] = time.monotonic() - start
        return sample


CONTENDERS = {
    "trainfeed pipe": ("trainfeed", "trainfeed pipe URI DIR --channel bench --epochs 2 "
                                    "(defaults)"),
    "aws s3 cp": ("aws-cli", "aws s3 cp s3://bench/KEY - per object, in listing order"),
    "rclone cat (default)": ("rclone", "rclone cat bench:bench/DS"),
    "rclone cat (tuned)": ("rclone", "rclone cat " + " ".join(RCLONE_TUNED)),
    "FastFile cat": ("fastfile", "trainfeed mount (defaults), then cat of each file in listing "
                                 "order"),
}


# ---- Pipe ceiling ----

def measure_pipe_ceiling(binary, work, size, timeout, runs=PIPE_CEILING_RUNS):
    """tf-pipe-ceiling with its own reader, and into the benchmark's reader: best of `runs` each."""
    own, into_reader = [], []
    d = os.path.join(work, "pipe-ceiling")
    os.makedirs(d, exist_ok=True)
    try:
        for _ in range(runs):
            r = subprocess.run([binary, "--bytes", str(size)], capture_output=True, text=True,
                               timeout=timeout)
            if r.returncode != 0:
                raise RuntimeError(f"tf-pipe-ceiling: {r.stderr.strip()[-200:]}")
            own.append(json.loads(r.stdout)["bytes_per_s"])
            fifo = os.path.join(d, "ceiling_0")
            os.mkfifo(fifo)
            reader = Reader(["--fifo", os.path.join(d, "ceiling"), "--epochs", "1"], size,
                            timeout)
            try:
                w = subprocess.run([binary, "--fifo", fifo, "--bytes", str(size)],
                                   capture_output=True, text=True, timeout=timeout)
                if w.returncode != 0:
                    raise RuntimeError(f"tf-pipe-ceiling --fifo: {w.stderr.strip()[-200:]}")
                e = reader.result(60)[0]
            finally:
                reader.kill()
                os.unlink(fifo)
            if e["bytes"] != size:
                raise RuntimeError(f"pipe ceiling: the reader got {e['bytes']} of {size} bytes")
            into_reader.append(size / (e["eof"] - e["first"]))
    finally:
        servers.remove_tree(d)
    return {"bytes_per_s": min(max(own), max(into_reader)), "own_reader": max(own),
            "into_reader": max(into_reader), "runs_own": own, "runs_into_reader": into_reader,
            "size": size, "pipe_max_size": int(open("/proc/sys/fs/pipe-max-size").read())}


def new_section(args, trainfeed, sets):
    help_text = subprocess.run([trainfeed, "pipe", "--help"], capture_output=True,
                               text=True).stdout
    return {"contenders": {label: describe for label, (_, describe) in CONTENDERS.items()},
            "records": [], "buffer_bytes": buffer_bytes(help_text),
            "datasets": {n: {"count": ds.count, "size": ds.size, "total_bytes": ds.total_bytes,
                             "describe": ds.describe()} for n, ds in sets.items()}}


def run_network(args, profile, network, server, env, sets, bench, results):
    """Every contender on every Pipe dataset, --runs rounds, on one server profile and network."""
    section = results["pipe"]
    for name in DATASETS:
        key = f"{profile}/{network}/{name}"
        if key not in results["ceilings"]:
            results["ceilings"][key] = ceiling.measure_ceiling(sets[name], env,
                                                               signed=profile == "real",
                                                               work_dir=bench.dir)
        c = results["ceilings"][key]
        print(f"# {key}: ceiling {c['bytes_per_s'] / 2**20:,.0f} MiB/s, "
              f"{c['objects_per_s']:,.0f} obj/s", flush=True)
    plan = []
    for name in DATASETS:
        ds = sets[name]
        for label, (tool, _) in CONTENDERS.items():
            rec = {"profile": profile, "network": network, "tool": tool, "label": label,
                   "samples": [], "dataset": {"name": ds.name, "count": ds.count, "size": ds.size,
                                              "total_bytes": ds.total_bytes,
                                              "describe": ds.describe()}}
            section["records"].append(rec)
            plan.append((label, ds, rec))
    for round_ in range(args.runs):
        for label, ds, rec in plan:
            samples = rec["samples"]
            if round_ and (not samples[-1]["ok"] or samples[-1]["wall"] > args.slow_seconds):
                continue  # slow or broken: one run says enough
            sample = bench.run(label, ds, env)
            samples.append(sample)
            if sample["ok"]:
                status = f"{sample['value'] / MiB:9.1f} MiB/s"
                if sample["first_byte"] is not None:
                    status += f", first byte {1000 * sample['first_byte']:.1f} ms"
                if sample["gap"] is not None:
                    status += f", epoch gap {1000 * sample['gap']:.1f} ms"
                if sample["extrapolated"]:
                    status += f" (extrapolated from {sample['extrapolated']} objects)"
            else:
                status = "failed: " + sample["error"]
            print(f"  {profile}/{network} pipe {ds.name:<2} {label:<21} run {round_ + 1}: "
                  f"{status}", flush=True)


# ---- Report ----

def summarize(record):
    good = [s for s in record["samples"] if s["ok"]]
    if not good:
        return None
    med = lambda xs: statistics.median(xs) if xs else None
    values = sorted(s["value"] for s in good)
    return {"value": med(values), "min": values[0], "max": values[-1], "runs": len(good),
            "first_byte": med([s["first_byte"] for s in good if s["first_byte"] is not None]),
            "gap": med([s["gap"] for s in good if s.get("gap") is not None]),
            "rss_mib": max(s["rss_kib"] for s in good) / 1024,
            "cpu_per_gib": med([s["cpu"] / (s.get("cpu_bytes", s.get("bytes_done", record["dataset"]["total_bytes"]))
                                            / 2**30) for s in good]),
            "extrapolated": next((s["extrapolated"] for s in good if s["extrapolated"]), None),
            "epoch2": med([s["epoch2_bytes_per_s"] for s in good if "epoch2_bytes_per_s" in s])}


def _groups(results):
    groups = {}
    for r in results.get("pipe", {}).get("records", []):
        groups.setdefault((r["profile"], r["network"], r["dataset"]["name"]), []).append(r)
    return groups


def _best(records, tool):
    best = None
    for r in records:
        s = summarize(r)
        if r["tool"] == tool and s and (best is None or s["value"] > best[1]["value"]):
            best = (r, s)
    return best


def limit_of(results, profile, network, name):
    server = results["ceilings"].get(f"{profile}/{network}/{name}")
    pipe = results.get("pipe", {}).get("pipe_ceiling")
    parts = [x["bytes_per_s"] for x in (server, pipe) if x]
    return (min(parts) if parts else None, server, pipe)


def format_table(results):
    section = results.get("pipe")
    if not section:
        return ""
    out = []
    pc = section.get("pipe_ceiling")
    if pc:
        out.append(f"# pipe ceiling: {pc['into_reader'] / 2**20:,.0f} MiB/s into the benchmark's "
                   f"reader, {pc['own_reader'] / 2**20:,.0f} MiB/s C++ to C++ (1 MiB writes, "
                   f"pipe {pc['pipe_max_size'] // 1024} KiB, best of {len(pc['runs_own'])})")
    for (profile, network, name), records in _groups(results).items():
        ds = records[0]["dataset"]
        limit, server, _ = limit_of(results, profile, network, name)
        head = (f"== Pipe {name}: {ds['describe']} ({fmt_bytes(ds['total_bytes'])}) | server "
                f"{profile} | network {network}")
        if server:
            head += f" | server ceiling {server['bytes_per_s'] / 2**20:,.0f} MiB/s"
        out.append(head)
        out.append(f"{'contender':<22} {'MiB/s':>16} {'%ceil':>6} {'1st byte ms':>12} "
                   f"{'gap ms':>7} {'epoch2 MiB/s':>13} {'RSS MiB':>8} {'CPU s/GiB':>10}")
        for r in records:
            s = summarize(r)
            if s is None:
                err = next((x["error"] for x in r["samples"] if not x["ok"]), "no run")
                out.append(f"{r['label']:<22} failed: {err}")
                continue
            f = lambda v: f"{v / 2**20:,.0f}" if v >= 10 * 2**20 else f"{v / 2**20:.2g}"
            rate = f(s["value"]) if s["runs"] == 1 or f(s["min"]) == f(s["max"]) else \
                f"{f(s['value'])} [{f(s['min'])}-{f(s['max'])}]"
            ms = lambda v, w: f"{1000 * v:>{w}.1f}" if v is not None else f"{'-':>{w}}"
            line = (f"{r['label']:<22} {rate:>16} "
                    f"{(100 * s['value'] / limit if limit else float('nan')):>5.0f}% "
                    f"{ms(s['first_byte'], 12)} {ms(s['gap'], 7)} "
                    f"{(f(s['epoch2']) if s['epoch2'] else '-'):>13} {s['rss_mib']:>8.0f} "
                    f"{s['cpu_per_gib']:>10.2f}")
            if s["runs"] < 3:
                line += f" n={s['runs']}"
            if s["extrapolated"]:
                line += f" (extrapolated from {s['extrapolated']} objects)"
            out.append(line)
        tf = _best(records, "trainfeed")
        if tf:
            parts = []
            for tool in ("aws-cli", "rclone", "fastfile"):
                peer = _best(records, tool)
                if peer:
                    parts.append(f"{tf[1]['value'] / peer[1]['value']:.2f}x {peer[0]['label']}")
            out.append("trainfeed pipe speed / best peer config: " + ", ".join(parts))
            report = next((x.get("report") for x in reversed(tf[0]["samples"]) if x.get("report")),
                          None)
            for line in report or []:
                out.append(f"  {line.strip()}")
        out.append("")
    return "\n".join(out)


def check_goals(results):
    section = results.get("pipe")
    if not section:
        return ""
    lines = []

    def verdict(ok, text):
        lines.append(("PASS " if ok else "MISS ") + text)

    budget_mib = section["buffer_bytes"] / 2**20
    for (profile, network, name), records in _groups(results).items():
        where = f"[{profile}/{network}] Pipe {name}:"
        tf = _best(records, "trainfeed")
        if not tf:
            continue
        s = tf[1]
        limit, server, pipe = limit_of(results, profile, network, name)
        if limit:
            f = s["value"] / limit
            verdict(f >= 0.85, f"{where} {s['value'] / 2**20:,.0f} MiB/s = {f:.2f} of min(server "
                               f"{server['bytes_per_s'] / 2**20 if server else float('nan'):,.0f},"
                               f" pipe {pipe['bytes_per_s'] / 2**20 if pipe else float('nan'):,.0f}"
                               " MiB/s) (goal >= 0.85)")
        for tool, goal in (("aws-cli", 3), ("rclone", 1.5), ("fastfile", 1.2)):
            peer = _best(records, tool)
            if peer:
                x = s["value"] / peer[1]["value"]
                note = f", extrapolated from {peer[1]['extrapolated']} objects" \
                    if peer[1]["extrapolated"] else ""
                verdict(x >= goal, f"{where} {x:.2f}x {peer[0]['label']}{note} (goal >= {goal:g}x)")
        if s["first_byte"] is not None:
            verdict(s["first_byte"] <= 0.05, f"{where} first byte {1000 * s['first_byte']:.1f} ms "
                                             "after the start (goal <= 50 ms)")
        if s["gap"] is not None:
            verdict(s["gap"] <= 0.05, f"{where} EOF of _0 to first byte of _1 "
                                      f"{1000 * s['gap']:.1f} ms (goal <= 50 ms)")
        verdict(s["rss_mib"] <= budget_mib + 64, f"{where} peak RSS {s['rss_mib']:,.0f} MiB "
                                                 f"(goal <= buffer {budget_mib:,.0f} + 64 MiB)")
    return "\n".join(lines)


def write_chart(results, png_path):
    """Each contender's throughput as a fraction of min(server, pipe ceiling), one panel per
    server/network. Needs gnuplot; returns False when it is missing or nothing was measured."""
    groups = _groups(results)
    if not shutil.which("gnuplot") or not groups:
        return False
    base = os.path.splitext(png_path)[0]
    panels, labels = {}, list(CONTENDERS)
    for (profile, network, name), records in groups.items():
        limit = limit_of(results, profile, network, name)[0]
        for r in records:
            s = summarize(r)
            frac = s["value"] / limit if s and limit else 0
            panels.setdefault((profile, network), {}).setdefault(name, {})[r["label"]] = frac
    script = [f"set terminal pngcairo size 1400,{380 * len(panels)} font 'sans,10'",
              f"set output '{png_path}'", f"set multiplot layout {len(panels)},1",
              "set style data histograms", "set style histogram clustered gap 1",
              "set style fill solid 0.9 border -1", "set boxwidth 0.9", "set yrange [0:*]",
              "set ylabel 'fraction of min(server, pipe) ceiling'", "set grid ytics",
              "set key outside right"]
    for i, ((profile, network), by_dataset) in enumerate(panels.items()):
        data = f"{base}-{i}.dat"
        with open(data, "w") as f:
            f.write("dataset " + " ".join(f'"{l}"' for l in labels) + "\n")
            for name, by_label in by_dataset.items():
                f.write(name + " " + " ".join(f"{by_label.get(l, 0):.3f}" for l in labels) + "\n")
        script.append(f"set title 'Pipe mode: server {profile}, network {network}'")
        script.append("plot " + ", ".join(
            f"'{data}' using {j + 2}:xtic(1) title columnhead({j + 2})" if j == 0
            else f"'' using {j + 2} title columnhead({j + 2})" for j in range(len(labels))))
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)
    return True
