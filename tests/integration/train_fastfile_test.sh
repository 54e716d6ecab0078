#!/usr/bin/env bash
# `trainfeed train` with FastFile channels against the real S3 server: the example script trains
# to exactly the same model and metrics as in File mode while its channels are fuse.trainfeed
# mounts (checked from inside the command, also through --container-paths), the contract says
# FastFile, and no mount survives the job, whether the command succeeds, fails, or trainfeed is
# stopped with SIGTERM or killed with SIGKILL. The bundled example spec runs on file:// data.
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

BG_PIDS=()
ORPHAN_PGID=
# Never leave a job, a mount or a command behind, whatever failed.
cleanup() {
  local pid target
  for pid in "${BG_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [[ -n $ORPHAN_PGID ]]; then kill -KILL -- "-$ORPHAN_PGID" 2>/dev/null || true; fi
  for target in $(findmnt -rn -t fuse.trainfeed -o TARGET | grep -F "$WORK/" || true); do
    "$TF" unmount "$target" 2>/dev/null || true
  done
}
trap cleanup EXIT

# Trainfeed mounts under DIR, one mount point a line (none: empty output).
mounts_under() { findmnt -rn -t fuse.trainfeed -o TARGET | grep -F "$1/" || true; }
no_mounts_under() { [[ -z $(mounts_under "$1") ]]; }
some_mount_under() { [[ -n $(mounts_under "$1") ]]; }
# wait_for SECONDS cmd...: polls every 0.1 s until cmd succeeds.
wait_for() {
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
  return 1
}
# The pid the runner logged for a channel's mount process.
mount_pid() { sed -n "s/.*channel '$2': FastFile mount of .* (pid \([0-9]*\),.*/\1/p" "$1" | head -1; }
process_gone() { [[ ! -e /proc/$1 || $(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) == Z ]]; }

bucket=$(new_bucket fastfile)
"$TF" -q upload "$repo/examples/data" "s3://$bucket/data/" || fail "upload of the example data"

# The command: records what it sees of its channels, then runs the example script.
cat >"$WORK/wrapper.sh" <<'SH'
grep -F " $SM_CHANNEL_TRAIN " /proc/self/mountinfo >"$SM_OUTPUT_DATA_DIR/mounts.txt"
grep -F " $SM_CHANNEL_VALIDATION " /proc/self/mountinfo >>"$SM_OUTPUT_DATA_DIR/mounts.txt"
if touch "$SM_CHANNEL_TRAIN/written" 2>/dev/null; then echo writable >"$SM_OUTPUT_DATA_DIR/rw.txt"; fi
printf "%s" "$SM_INPUT_DATA_CONFIG" >"$SM_OUTPUT_DATA_DIR/sm-input-data-config.json"
echo $$ >"$SM_OUTPUT_DATA_DIR/started"
exec /usr/bin/python3 "$TRAIN_PY" "$@"
SH

# make_job FILE NAME MODE TRAIN_URI VALIDATION_URI [HYPERPARAMETERS_JSON [ENTRYPOINT_JSON]]
make_job() {
  WRAPPER=$WORK/wrapper.sh "$PY" - "$@" "$bucket" "$repo" <<'PY'
import json, os, sys
args = sys.argv[1:]
bucket, repo = args[-2:]
path, name, mode, train, val = args[:5]
hps = json.loads(args[5]) if len(args) > 7 else {"epochs": "20", "learning-rate": "0.05"}
entry = json.loads(args[6]) if len(args) > 8 else ["/bin/sh", os.environ["WRAPPER"]]
spec = {
  "TrainingJobName": name,
  "AlgorithmSpecification": {"TrainingInputMode": mode, "ContainerEntrypoint": entry},
  "HyperParameters": hps,
  "InputDataConfig": [
    {"ChannelName": "train", "ContentType": "text/csv",
     "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": train}}},
    {"ChannelName": "validation", "ContentType": "text/csv",
     "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": val}}}],
  "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/out/"},
  "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
  "StoppingCondition": {"MaxRuntimeInSeconds": 600},
  "Environment": {"TRAIN_PY": repo + "/examples/train.py"}}
json.dump(spec, open(path, "w"))
PY
}

note "File mode on S3: the reference result"
make_job "$WORK/file.json" file-job File "s3://$bucket/data/train/" "s3://$bucket/data/validation/"
"$TF" -q train "$WORK/file.json" --root "$WORK/file" >"$WORK/file.log" 2>&1 || { cat "$WORK/file.log"; fail "File-mode job"; }
ref=$WORK/file/opt/ml
[[ -s $ref/model/model.json && -s $ref/output/data/metrics.json ]] || fail "File mode wrote no model or metrics"
[[ ! -s $ref/output/data/mounts.txt ]] || fail "File mode: the channel check sees a mount where there is none"

note "FastFile mode on S3: same model and metrics, channels mounted read-only, then unmounted"
make_job "$WORK/ff.json" ff-job FastFile "s3://$bucket/data/train/" "s3://$bucket/data/validation/"
"$TF" -q train "$WORK/ff.json" --root "$WORK/ff" >"$WORK/ff.log" 2>&1 || { cat "$WORK/ff.log"; fail "FastFile job"; }
cat "$WORK/ff.log"
ml=$WORK/ff/opt/ml
cmp "$ref/model/model.json" "$ml/model/model.json" || fail "FastFile model differs from File mode's"
cmp "$ref/output/data/metrics.json" "$ml/output/data/metrics.json" || fail "FastFile metrics differ from File mode's"
for ch in train validation; do
  grep -q " $ml/input/data/$ch .* - fuse.trainfeed " "$ml/output/data/mounts.txt" ||
    { cat "$ml/output/data/mounts.txt"; fail "channel $ch was not a fuse.trainfeed mount during the job"; }
  grep -q "unmounted $ml/input/data/$ch: served [1-9]" "$WORK/ff.log" ||
    fail "no counters line (with bytes served) for channel $ch in the job log"
done
[[ ! -e $ml/output/data/rw.txt ]] || fail "the FastFile channel was writable"
no_mounts_under "$WORK/ff" || { mounts_under "$WORK/ff"; fail "a FastFile mount was left behind"; }
[[ -z $(ls -A "$ml/input/data/train") ]] || fail "the channel directory should be empty once unmounted"
"$PY" - "$ml" <<'PY' || fail "the contract should say FastFile"
import json, sys
ml = sys.argv[1]
idc = json.load(open(ml + "/input/config/inputdataconfig.json"))
env = json.load(open(ml + "/output/data/sm-input-data-config.json"))
want = {"ContentType": "text/csv", "TrainingInputMode": "FastFile",
        "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
assert idc == {"train": want, "validation": want}, idc
assert env == idc, env
PY
"$TF" ls -r "s3://$bucket/out/ff-job/" | grep -q "output/model.tar.gz" || fail "FastFile job outputs not uploaded"

note "--container-paths: the mount is visible at /opt/ml/input/data (recursive bind)"
make_job "$WORK/paths.json" paths-job FastFile "s3://$bucket/data/train/" "s3://$bucket/data/validation/" '{}' \
  '["/bin/sh", "-c", "grep -q \" /opt/ml/input/data/train .* - fuse.trainfeed \" /proc/self/mountinfo && cmp /opt/ml/input/data/train/part-0000.csv \"$REF\" && echo ok > /opt/ml/model/seen"]'
"$PY" - "$WORK/paths.json" "$repo/examples/data/train/part-0000.csv" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
spec["Environment"]["REF"] = sys.argv[2]
json.dump(spec, open(sys.argv[1], "w"))
PY
"$TF" -q train "$WORK/paths.json" --root "$WORK/paths" --container-paths >"$WORK/paths.log" 2>&1 ||
  { cat "$WORK/paths.log"; fail "--container-paths FastFile job"; }
[[ $(cat "$WORK/paths/opt/ml/model/seen") = ok ]] || fail "--container-paths: the command did not see the mount"
no_mounts_under "$WORK/paths" || fail "--container-paths: a mount was left behind"

note "a failing command: its exit status, and no mount left"
make_job "$WORK/fail.json" fail-job FastFile "s3://$bucket/data/train/" "s3://$bucket/data/validation/" '{}' \
  '["/bin/sh", "-c", "grep -q \" $SM_CHANNEL_TRAIN .* - fuse.trainfeed \" /proc/self/mountinfo && exit 3; exit 9"]'
set +e
"$TF" -q train "$WORK/fail.json" --root "$WORK/fail" >"$WORK/fail.log" 2>&1
rc=$?
set -e
[[ $rc = 3 ]] || { cat "$WORK/fail.log"; fail "failing command: expected exit 3 (with the channel mounted), got $rc"; }
grep -q "Failed (exited with 3)" "$WORK/fail.log" || { cat "$WORK/fail.log"; fail "failing command: status line"; }
no_mounts_under "$WORK/fail" || fail "failing command: a mount was left behind"

note "trainfeed stopped with SIGTERM mid-run: the command is stopped, then the mounts"
make_job "$WORK/term.json" term-job FastFile "s3://$bucket/data/train/" "s3://$bucket/data/validation/" \
  '{"epochs": "100000", "sleep-per-epoch": "0.2"}'
"$TF" -q train "$WORK/term.json" --root "$WORK/term" --stop-grace 10 >"$WORK/term.log" 2>&1 &
tf_pid=$!
BG_PIDS+=("$tf_pid")
wait_for 60 grep -q "epoch 2/" "$WORK/term.log" || { cat "$WORK/term.log"; fail "SIGTERM job: training did not start"; }
some_mount_under "$WORK/term" || fail "SIGTERM job: no mount while training"
child=$(mount_pid "$WORK/term.log" train)
[[ -n $child ]] || { cat "$WORK/term.log"; fail "SIGTERM job: the log names no mount process"; }
kill -TERM "$tf_pid"
set +e
wait "$tf_pid"
rc=$?
set -e
cat "$WORK/term.log"
[[ $rc != 0 ]] || fail "SIGTERM job: expected a non-zero exit"
grep -q "after trainfeed was asked to stop" "$WORK/term.log" || fail "SIGTERM job: status line"
no_mounts_under "$WORK/term" || fail "SIGTERM job: a mount was left behind"
wait_for 10 process_gone "$child" || fail "SIGTERM job: the mount process $child still runs"

note "trainfeed killed with SIGKILL: the mount process follows it (PR_SET_PDEATHSIG) and unmounts"
make_job "$WORK/crash.json" crash-job FastFile "s3://$bucket/data/train/" "s3://$bucket/data/validation/" \
  '{"epochs": "100000", "sleep-per-epoch": "0.2"}'
"$TF" -q train "$WORK/crash.json" --root "$WORK/crash" >"$WORK/crash.log" 2>&1 &
tf_pid=$!
BG_PIDS+=("$tf_pid")
wait_for 60 grep -q "epoch 2/" "$WORK/crash.log" || { cat "$WORK/crash.log"; fail "SIGKILL job: training did not start"; }
ORPHAN_PGID=$(cat "$WORK/crash/opt/ml/output/data/started")  # the command leads its own group
child=$(mount_pid "$WORK/crash.log" train)
[[ -n $child ]] || { cat "$WORK/crash.log"; fail "SIGKILL job: the log names no mount process"; }
kill -KILL "$tf_pid"
wait "$tf_pid" 2>/dev/null || true
wait_for 15 no_mounts_under "$WORK/crash" || { mounts_under "$WORK/crash"; fail "SIGKILL job: a mount outlived trainfeed"; }
wait_for 10 process_gone "$child" || fail "SIGKILL job: the mount process $child still runs"
# Nothing stops a command whose supervisor was SIGKILLed: SageMaker would stop the container.
kill -KILL -- "-$ORPHAN_PGID" 2>/dev/null || true
ORPHAN_PGID=

note "the bundled example spec: FastFile on file:// gives File mode's result"
for mode in file fastfile; do
  "$PY" - "$repo/examples/jobs/$mode-mode.json" "$WORK/example-$mode.json" "$WORK/example-$mode" <<'PY'
import json, sys
src, dst, out = sys.argv[1:]
spec = json.load(open(src))
spec["OutputDataConfig"]["S3OutputPath"] = f"file://{out}/output/"
spec["CheckpointConfig"]["S3Uri"] = f"file://{out}/checkpoints/"
json.dump(spec, open(dst, "w"))
PY
  (cd "$repo" && "$TF" -q train "$WORK/example-$mode.json" --root "$WORK/example-$mode/job") \
    >"$WORK/example-$mode.log" 2>&1 || { cat "$WORK/example-$mode.log"; fail "example $mode-mode job"; }
done
grep -q "channel 'train': FastFile mount of file://examples/data/train/" "$WORK/example-fastfile.log" ||
  { cat "$WORK/example-fastfile.log"; fail "the file:// example did not mount"; }
cmp "$WORK/example-file/job/opt/ml/model/model.json" "$WORK/example-fastfile/job/opt/ml/model/model.json" ||
  fail "file:// example: FastFile model differs from File mode's"
no_mounts_under "$WORK/example-fastfile" || fail "file:// example: a mount was left behind"

echo "PASS"
