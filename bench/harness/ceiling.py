"""The server's ceiling, measured before the tools in the same run: raw parallel GETs with curl
(one process, its multi interface), best over several stream counts. Large objects are fetched
as 8 MiB ranged GETs, small ones whole. Every tool's result is also shown as a fraction of it."""
import os
import subprocess
import time

from .datasets import BUCKET, MiB

RANGE = 8 * MiB
SMALL_OBJECT_SAMPLE = 4000  # enough requests for a steady rate, few enough to stay quick


def _quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _curl_config(endpoint_env, urls_and_ranges, signed):
    lines = []
    for i, (url, byte_range) in enumerate(urls_and_ranges):
        if i:
            lines.append("next")
        if signed:
            region = endpoint_env["AWS_DEFAULT_REGION"]
            lines.append(f"aws-sigv4 = {_quote('aws:amz:' + region + ':s3')}")
            lines.append("user = " + _quote(endpoint_env["AWS_ACCESS_KEY_ID"] + ":" +
                                            endpoint_env["AWS_SECRET_ACCESS_KEY"]))
            # curl 7.88 signs without the payload hash header, which S3 (and radosgw) require.
            lines.append('header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"')
        if byte_range:
            lines.append(f"range = {byte_range}")
        lines += ["fail", f"url = {_quote(url)}", "output = /dev/null"]
    return "\n".join(lines) + "\n"


def measure_ceiling(dataset, endpoint_env, signed, work_dir, streams=(1, 4, 8, 16, 32, 64)):
    """Returns {"bytes_per_s", "objects_per_s", "streams"} of the best stream count."""
    endpoint = endpoint_env["AWS_ENDPOINT_URL"]
    keys = list(dataset.keys())
    requests = []
    if dataset.size > RANGE:
        for key in keys:
            for off in range(0, dataset.size, RANGE):
                end = min(off + RANGE, dataset.size) - 1
                requests.append((f"{endpoint}/{BUCKET}/{key}", f"{off}-{end}"))
    else:
        step = max(1, len(keys) // SMALL_OBJECT_SAMPLE)
        requests = [(f"{endpoint}/{BUCKET}/{k}", None) for k in keys[::step]]
    total = len(requests) * dataset.size if dataset.size <= RANGE else dataset.total_bytes
    objects = len(requests) if dataset.size <= RANGE else dataset.count
    conf = os.path.join(work_dir, f"curl-{dataset.name}.conf")
    with open(conf, "w") as f:
        f.write(_curl_config(endpoint_env, requests, signed))
    best = None
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    for n in streams:
        start = time.monotonic()
        result = subprocess.run(["curl", "--no-progress-meter", "--parallel", "--parallel-immediate",
                                 "--parallel-max", str(n), "-K", conf],
                                env=env, capture_output=True, text=True)
        wall = time.monotonic() - start
        if result.returncode != 0:
            errors = [l for l in result.stderr.splitlines() if l.startswith("curl:")]
            raise RuntimeError(f"ceiling GETs failed for {dataset.name} with {n} streams: "
                               f"{errors[:3]} ({len(errors)} failed requests)")
        rate = {"bytes_per_s": total / wall, "objects_per_s": objects / wall, "streams": n}
        if best is None or rate["bytes_per_s"] > best["bytes_per_s"]:
            best = rate
    return best


def measure_local_write(directory, total_bytes, files=16):
    """The other half of a download's cost: writing the bytes into new files on the target file
    system (reserved with fallocate, then written in 1 MiB pieces, the cheapest way we know on
    tmpfs). Returns {"bytes_per_s", "cpu_per_gib"} for one writer; a download pays this CPU on
    top of receiving the bytes, on the same cores as the server."""
    os.makedirs(directory, exist_ok=True)
    block = b"\x5a" * MiB
    per_file = max(MiB, total_bytes // files)
    cpu0, start = os.times(), time.monotonic()
    for i in range(files):
        path = os.path.join(directory, f"w{i}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.posix_fallocate(fd, 0, per_file)
            left = per_file
            while left > 0:
                left -= os.write(fd, block[:min(left, MiB)])
        finally:
            os.close(fd)
    wall, cpu1 = time.monotonic() - start, os.times()
    for i in range(files):
        os.unlink(os.path.join(directory, f"w{i}"))
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    written = per_file * files
    return {"bytes_per_s": written / wall, "cpu_per_gib": cpu / (written / 2**30)}
