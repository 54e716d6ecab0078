#!/usr/bin/env bash
# The benchmark harness itself works: bench/run on tiny datasets, both server profiles, direct and
# through the shaping proxy, every contender once. Checks that every run succeeded with a verified
# result tree, that the table, ratios and chart were written, and that nothing was left behind.
# (It measures nothing worth reading: the point is that the real benchmark cannot rot.)
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${TRAINFEED_WORK:?}
rm -rf "$work" && mkdir -p "$work"
before=$(ls /dev/shm | grep -c '^tf-bench-' || true)

"$repo/bench/run" --no-install --build-dir "${1:?build dir}" --scale 0.002 --runs 1 --datasets L,T \
  --out "$work/out" 2>&1 | tee "$work/run.log" || fail "bench/run exited non-zero"

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
assert len(r["ceilings"]) == 8 and all(c["bytes_per_s"] > 0 for c in r["ceilings"].values())
for x in r["records"]:
    s = x["samples"][0]
    assert s["max_rss_kib"] > 0 and s["cpu"] >= 0 and s["bytes_served"] >= x["dataset"]["total_bytes"], x
print("results.json: ok,", len(r["records"]), "records")
PY
grep -q "trainfeed speed / best peer config" "$work/out/results.txt" || fail "no ratio lines"
grep -qE "^(PASS|MISS) " "$work/out/results.txt" || fail "no goal check"
[[ -s $work/out/chart.png ]] || fail "no chart"
after=$(ls /dev/shm | grep -c '^tf-bench-' || true)
[[ $after = "$before" ]] || fail "the harness left its work folder behind"
pgrep -f "tf-bench-" >/dev/null && fail "a server or proxy of the harness is still running"
echo "harness smoke test: ok"
