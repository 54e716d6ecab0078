# Shared helpers for the end-to-end scripts. Sourced, not run.
# Environment (set by CTest): TRAINFEED_S3_ENV (server env file), TRAINFEED_BIN (the binary),
# TRAINFEED_TOOLS (tests/tools), TRAINFEED_WORK (this test's scratch directory).
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*" >&2; }

[[ -r ${TRAINFEED_S3_ENV:-} ]] || fail "S3 server env file '${TRAINFEED_S3_ENV:-}' is missing: the server fixture did not start"
[[ -x ${TRAINFEED_BIN:-} ]] || fail "trainfeed binary '${TRAINFEED_BIN:-}' is missing"
set -a
# shellcheck disable=SC1090
source "$TRAINFEED_S3_ENV"
set +a
# A machine-wide CA bundle or a pyenv aws earlier in PATH must not change what we test.
unset AWS_CA_BUNDLE AWS_PROFILE
AWS=/usr/bin/aws
PY=/usr/bin/python3
TF=$TRAINFEED_BIN
WORK=$TRAINFEED_WORK
rm -rf "$WORK"
mkdir -p "$WORK"

aws_s3() { "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }

# A bucket only this test uses.
new_bucket() {
  local b="tf-$1-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
  "$TF" -q mb "s3://$b" >&2 || fail "cannot create bucket $b"
  echo "$b"
}

# "sha256  relative/path" for every file under DIR, sorted: equal output = identical trees.
tree_sums() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum); }

# Writes COUNT files of pseudo-random sizes (0..MAX bytes) under DIR, with some nesting.
make_small_files() {
  "$PY" - "$1" "$2" "${3:-65536}" <<'PY'
import os, random, sys
root, count, max_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
for i in range(count):
    d = os.path.join(root, f"shard-{i % 7}", f"sub{i % 3}") if i % 5 else root
    os.makedirs(d, exist_ok=True)
    size = 0 if i % 997 == 0 else rng.randint(1, max_size)
    with open(os.path.join(d, f"obj-{i:05d}.bin"), "wb") as f:
        f.write(rng.randbytes(size))
PY
}

expect_fail() {  # expect_fail "what" cmd...: the command must exit non-zero
  local what=$1; shift
  if "$@"; then fail "$what: expected a non-zero exit"; fi
}

# Starts the fault-injecting proxy in front of the server; sets PROXY_URL. Extra args are passed
# on (e.g. --bandwidth). Stopped when the test exits.
start_proxy() {
  local port_file=$WORK/proxy.port
  rm -f "$port_file"
  "$PY" "$TRAINFEED_TOOLS/fault_proxy.py" --upstream "$AWS_ENDPOINT_URL" --port-file "$port_file" \
    "$@" >"$WORK/proxy.log" 2>&1 &
  PROXY_PID=$!
  trap 'kill $PROXY_PID 2>/dev/null || true' EXIT
  for _ in $(seq 100); do [[ -s $port_file ]] && break; sleep 0.1; done
  [[ -s $port_file ]] || { cat "$WORK/proxy.log"; fail "fault proxy did not start"; }
  PROXY_URL=http://127.0.0.1:$(cat "$port_file")
}

# set_plan JSON: replaces the proxy's fault plan.
set_plan() {
  curl -sf -X POST --data-binary "$1" "$PROXY_URL/__fault/plan" >/dev/null || fail "cannot set fault plan"
}
