"""Running one command and measuring it: wall time, CPU of its process tree, peak RSS."""
import os
import signal
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Sample:
    wall: float
    cpu: float  # user + system seconds of the process and the children it waited for
    max_rss_kib: int  # the largest resident set among them
    ok: bool
    error: str = ""
    bytes_served: int = 0


@dataclass
class Series:
    samples: list = field(default_factory=list)

    @property
    def good(self):
        return [s for s in self.samples if s.ok]

    def median(self, attr):
        values = [getattr(s, attr) for s in self.good]
        return statistics.median(values) if values else None

    def spread(self, attr):
        values = [getattr(s, attr) for s in self.good]
        return (min(values), max(values)) if values else (None, None)


TIME = "/usr/bin/time"  # GNU time


def run_measured(argv, env, timeout, log_path, cwd=None):
    """Runs argv to completion under GNU time, which forks it from a tiny process: a child forked
    from this Python process would count the harness's own memory in its peak RSS. CPU covers
    the tool and the children it waited for."""
    usage_path = log_path + ".usage"
    with open(log_path, "ab") as log:
        log.write(("\n$ " + " ".join(argv) + "\n").encode())
        log.flush()
        start = time.monotonic()
        process = subprocess.Popen([TIME, "-o", usage_path, "-f", "%U %S %M"] + argv, env=env,
                                   cwd=cwd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        timed_out = threading.Event()

        def kill_on_timeout():
            timed_out.set()
            os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill_on_timeout)
        timer.start()
        process.wait()
        wall = time.monotonic() - start
        timer.cancel()
    ok = process.returncode == 0 and not timed_out.is_set()
    error = ("timed out after %d s" % timeout if timed_out.is_set()
             else "" if ok else f"exit status {process.returncode} (see {log_path})")
    user = system = rss = 0
    try:
        # The last line: GNU time prefixes a line of its own when the command failed.
        user, system, rss = open(usage_path).read().split("\n")[-2].split()
    except (OSError, ValueError, IndexError):
        ok, error = False, error or "no resource usage recorded"
    return Sample(wall=wall, cpu=float(user) + float(system), max_rss_kib=int(rss), ok=ok,
                  error=error)
