#!/usr/bin/env bash
# File-mode download speed, trainfeed against `aws s3 sync`, on the same local radosgw in one
# run: dataset A = COUNT small objects (1..64 KiB), dataset B = one object of BIG bytes.
# Data and download targets live on tmpfs (this machine evicts idle file pages). Prints median
# wall time of RUNS runs per tool and dataset, throughput and the ratio aws/trainfeed.
#
#   bench/download-vs-aws.sh [COUNT=3000] [BIG=1G] [RUNS=3]
#
# The fuller harness (peers, profiles, latency proxy, charts) is tracked separately; this script
# is the quick comparison quoted in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-3000} big=${2:-1G} runs=${3:-3}
tf=$PWD/build/trainfeed
aws=/usr/bin/aws
[[ -x $tf ]] || { echo "build first: scripts/build" >&2; exit 1; }
work=$(mktemp -d /dev/shm/tf-bench-XXXXXX)
rgw=$work/rgw
cleanup() { tests/tools/rgw-server stop "$rgw" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
eval "$(tests/tools/rgw-server start "$rgw")"
unset AWS_CA_BUNDLE AWS_PROFILE

/usr/bin/python3 - "$work/src/small" "$count" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2]); rng = random.Random(1)
for i in range(n):
    d = os.path.join(root, f"d{i % 10}"); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, f"o{i:06d}"), "wb").write(rng.randbytes(rng.randint(1024, 65536)))
PY
mkdir -p "$work/src/big" && head -c "$big" /dev/urandom >"$work/src/big/blob"
"$tf" -q mb s3://bench
"$tf" -q upload "$work/src" s3://bench/ >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() {  # measure TOOL PREFIX -> median seconds
  local tool=$1 prefix=$2 t
  for _ in $(seq "$runs"); do
    rm -rf "$work/dst"
    local start=$(date +%s.%N)
    if [[ $tool = trainfeed ]]; then
      "$tf" -q download "s3://bench/$prefix/" "$work/dst"
    else
      "$aws" --endpoint-url "$AWS_ENDPOINT_URL" s3 sync --only-show-errors "s3://bench/$prefix/" "$work/dst"
    fi
    echo "$(date +%s.%N) - $start" | bc
  done | median
}
bytes_small=$(du -sb "$work/src/small" | cut -f1)
bytes_big=$(du -sb "$work/src/big" | cut -f1)
printf '%-10s %-22s %10s %12s %10s\n' dataset tool seconds MiB/s objects/s
for ds in small big; do
  bytes=$([[ $ds = small ]] && echo "$bytes_small" || echo "$bytes_big")
  objs=$([[ $ds = small ]] && echo "$count" || echo 1)
  t_tf=$(measure trainfeed "$ds"); t_aws=$(measure aws "$ds")
  for pair in "trainfeed $t_tf" "aws-s3-sync $t_aws"; do
    set -- $pair
    printf '%-10s %-22s %10.2f %12.1f %10.0f\n' "$ds" "$1" "$2" \
      "$(echo "$bytes / 1048576 / $2" | bc -l)" "$(echo "$objs / $2" | bc -l)"
  done
  printf '%-10s %-22s %10.2fx\n' "$ds" "speed-up vs aws" "$(echo "$t_aws / $t_tf" | bc -l)"
done
echo "($count small objects of 1-64 KiB = $((bytes_small / 1048576)) MiB; big = $big; median of $runs runs; $(nproc) cores)"
