#!/usr/bin/env bash
# The benchmark harness itself works: bench/run on tiny datasets, both server profiles, direct and
# through the shaping proxy, all three modes (File: downloads; FastFile: mounts; Pipe: FIFOs),
# every contender once. --slow-seconds 5 makes Pipe mode's per-object aws cli stop early and
# extrapolate, so that path is exercised too.
# Checks that every run succeeded with a verified result, that the tables, ratios and charts were
# written, and that nothing was left behind: no work folder, server, daemon or mount.
# (It measures nothing worth reading: the point is that the real benchmark cannot rot.)
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${TRAINFEED_WORK:?}
rm -rf "$work" && mkdir -p "$work"
# The harness's tmpfs folder goes under a private parent, so the leftover checks below see only
# this run's folders, processes and mounts (another benchmark may be running on the machine).
shm=$(mktemp -d /dev/shm/tf-smoke-XXXXXX)
chmod 755 "$shm"  # nginx workers run unprivileged and must reach the data
trap 'rmdir "$shm" 2>/dev/null || true' EXIT

"$repo/bench/run" --no-install --build-dir "${1:?build dir}" --scale 0.002 --runs 1 --datasets L,T \
  --modes file,fastfile,pipe --slow-seconds 5 --work "$shm" --out "$work/out" 2>&1 |
  tee "$work/run.log" ||
  fail "bench/run exited non-zero"

/usr/bin/python3 - "$work/out/results.json" <<'PY' || fail "results.json is incomplete"
import json, sys
r = json.load(open(sys.argv[1]))
combos = {(x["profile"], x["network"], x["dataset"]["name"]) for x in r["records"]}
assert len(combos) == 8, f"expected 2 profiles x 2 networks x 2 datasets, got {sorted(combos)}"
tools = {x["tool"] for x in r["records"]}
assert tools == {"trainfeed", "aws-cli", "rclone", "s3cmd"}, tools
bad = [(x["label"], x["profile"], x["network"], x["dataset"]["name"], s["error"])
       for x in r["records"] for s in x["samples"] if not s["ok"]]
assert not bad, f"failed runs: {bad}"
assert all(len(x["samples"]) == 1 for x in r["records"])
file_ceilings = [c for k, c in r["ceilings"].items() if k.split("/")[2] in ("L", "T")]
assert len(file_ceilings) == 8 and all(c["bytes_per_s"] > 0 for c in file_ceilings)
for x in r["records"]:
    s = x["samples"][0]
    assert s["max_rss_kib"] > 0 and s["cpu"] >= 0 and s["bytes_served"] >= x["dataset"]["total_bytes"], x
print("results.json: ok,", len(r["records"]), "records")

ff = r["fastfile"]
assert ff["fuse_ceiling"]["bytes_per_s"] > 0, ff["fuse_ceiling"]
recs = ff["records"]
combos = {(x["profile"], x["network"]) for x in recs}
assert len(combos) == 4, f"expected 2 profiles x 2 networks, got {sorted(combos)}"
labels = {x["label"] for x in recs}
want = {"trainfeed", "s3fs (default)", "s3fs (tuned)", "rclone mount (off)", "rclone mount (full)",
        "aws s3 ls", "raw GET"}
assert want <= labels, f"missing FastFile contenders: {want - labels}"
for combo in combos:
    got = {(x["workload"], x["label"]) for x in recs if (x["profile"], x["network"]) == combo}
    for w in ("seq", "small", "list", "ttfb"):
        for label in want - {"aws s3 ls", "raw GET"}:
            assert (w, label) in got, (combo, w, label)
    assert ("epoch2", "rclone mount (full)") in got and ("epoch2", "s3fs (default)") not in got
    assert ("list", "aws s3 ls") in got and ("ttfb", "raw GET") in got
    assert ("list", "trainfeed (snapshot)") in got and ("seq", "trainfeed (snapshot)") not in got
bad = [(x["label"], x["workload"], x["profile"], x["network"], s["error"])
       for x in recs for s in x["samples"] if not s["ok"]]
assert not bad, f"failed FastFile runs: {bad}"
assert all(len(x["samples"]) == 1 for x in recs)
for x in recs:
    s = x["samples"][0]
    assert s["value"] > 0, x
    if not x["reference"]:
        assert s["rss_kib"] > 0 and s["cpu"] >= 0, x
        if x["workload"] in ("seq", "small", "epoch2"):
            assert s["verified"] and s["bytes"] > 0, x
for key in [f"{p}/{n}/{d}" for p, n in combos for d in ("XL", "S")]:
    assert r["ceilings"][key]["bytes_per_s"] > 0, key
print("results.json: FastFile ok,", len(recs), "records")

p = r["pipe"]
assert p["pipe_ceiling"]["bytes_per_s"] > 0 and p["pipe_ceiling"]["into_reader"] > 0, p["pipe_ceiling"]
recs = p["records"]
combos = {(x["profile"], x["network"], x["dataset"]["name"]) for x in recs}
assert len(combos) == 8, f"expected 2 profiles x 2 networks x 2 datasets, got {sorted(combos)}"
labels = {x["label"] for x in recs}
want = {"trainfeed pipe", "aws s3 cp", "rclone cat (default)", "rclone cat (tuned)", "FastFile cat"}
assert labels == want, labels
bad = [(x["label"], x["profile"], x["network"], x["dataset"]["name"], s["error"])
       for x in recs for s in x["samples"] if not s["ok"]]
assert not bad, f"failed Pipe runs: {bad}"
assert all(len(x["samples"]) == 1 for x in recs) and len(recs) == 40
for x in recs:
    s = x["samples"][0]
    assert s["verified"] and s["value"] > 0 and s["seconds"] > 0, x
    if x["label"] == "trainfeed pipe":
        assert s["rss_kib"] > 0 and s["first_byte"] > 0 and s["gap"] is not None, x
for key in [f"{p_}/{n}/{d}" for p_, n, _ in combos for d in ("L", "S")]:
    assert r["ceilings"][key]["bytes_per_s"] > 0, key
print("results.json: Pipe ok,", len(recs), "records")
PY
grep -q "trainfeed speed / best peer config" "$work/out/results.txt" || fail "no ratio lines"
grep -qE "^(PASS|MISS) " "$work/out/results.txt" || fail "no goal check"
[[ -s $work/out/chart.png ]] || fail "no chart"
grep -q "^== FastFile" "$work/out/results.txt" || fail "no FastFile table"
grep -qE "^(PASS|MISS) \[[a-z]+/[a-z]+\] FastFile " "$work/out/results.txt" || fail "no FastFile goal check"
[[ -s $work/out/chart-fastfile.png ]] || fail "no FastFile chart"
grep -q "^== Pipe " "$work/out/results.txt" || fail "no Pipe table"
grep -qE "^(PASS|MISS) \[[a-z]+/[a-z]+\] Pipe " "$work/out/results.txt" || fail "no Pipe goal check"
[[ -s $work/out/chart-pipe.png ]] || fail "no Pipe chart"
grep -qF "$shm/" /proc/self/mountinfo && fail "the harness left a mount behind"
[[ -z $(ls -A "$shm") ]] || fail "the harness left its work folder behind"
pgrep -f "$shm/" >/dev/null && fail "a server, proxy or mount daemon of the harness is still running"
echo "harness smoke test: ok"
