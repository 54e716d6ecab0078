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
