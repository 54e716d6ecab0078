#!/usr/bin/env bash
# `trainfeed train` with Pipe channels against the real S3 server: a Python training script reads
# two epochs of one channel and, at the same time, a shuffled RecordIO channel; it sees the
# contract (inputdataconfig.json says Pipe, <channel>_0 exists when it starts, the FIFOs are
# siblings of the channel directory), gets exactly the expected bytes, and the job log carries a
# report per epoch. No FIFO survives the job. A command that never opens its FIFO is stopped by
# MaxRuntimeInSeconds, and the streaming stops with it.
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)

bucket=$(new_bucket trainpipe)
data=$WORK/data
"$PY" - "$data" <<'PY'
import os, random, sys
rng = random.Random(11)
os.makedirs(sys.argv[1])
for i in range(15):
    with open(os.path.join(sys.argv[1], f"part-{i:02d}.csv"), "w") as f:
        for j in range(rng.randint(1, 3000)):
            f.write(f"{i},{j},{rng.random():.6f}\n")
with open(os.path.join(sys.argv[1], "part-99.bin"), "wb") as f:
    f.write(rng.randbytes(12 << 20))
PY
"$TF" -q upload "$data" "s3://$bucket/train/" || fail "upload"

cat >"$WORK/train.py" <<'PY'
import hashlib, json, os, sys, threading, time
sys.path.insert(0, os.environ["READER_DIR"])
from recordio_reader import read_records
base = os.environ["SM_INPUT_DIR"] + "/data"
out = os.environ["SM_OUTPUT_DATA_DIR"]
config = json.load(open(os.environ["SM_INPUT_DIR"] + "/config/inputdataconfig.json"))
assert config["train"]["TrainingInputMode"] == "Pipe", config
assert config["rec"]["RecordWrapperType"] == "RecordIO", config
# _0 exists before the command starts; the FIFOs sit beside the channel directory.
assert os.path.exists(base + "/train_0") and os.path.exists(base + "/rec_0"), os.listdir(base)
assert os.environ["SM_CHANNEL_TRAIN"] == base + "/train"
def wait_for(path):
    while not os.path.exists(path):
        time.sleep(0.001)
def read_train():
    with open(out + "/train.txt", "w") as log:
        for epoch in range(2):
            wait_for(f"{base}/train_{epoch}")
            h, n = hashlib.sha256(), 0
            with open(f"{base}/train_{epoch}", "rb") as f:
                while b := f.read(1 << 20):
                    h.update(b); n += len(b)
            log.write(f"epoch {epoch} bytes {n} sha256 {h.hexdigest()}\n")
def read_rec():
    wait_for(base + "/rec_0")
    with open(base + "/rec_0", "rb") as f, open(out + "/rec.txt", "w") as log:
        for payload in read_records(f):
            log.write(hashlib.sha256(payload).hexdigest() + "\n")
threads = [threading.Thread(target=read_train), threading.Thread(target=read_rec)]
for t in threads: t.start()
for t in threads: t.join()
open(os.environ["SM_MODEL_DIR"] + "/model.txt", "w").write("ok\n")
PY

# make_job FILE NAME MAX_RUNTIME ENTRYPOINT_JSON
make_job() {
  "$PY" - "$@" "$bucket" "$here" <<'PY'
import json, sys
path, name, runtime, entry, bucket, here = sys.argv[1:]
spec = {
  "TrainingJobName": name,
  "AlgorithmSpecification": {"TrainingInputMode": "Pipe", "ContainerEntrypoint": json.loads(entry)},
  "InputDataConfig": [
    {"ChannelName": "train", "ContentType": "text/csv",
     "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/",
                                     "S3DataDistributionType": "FullyReplicated"}}},
    {"ChannelName": "rec", "RecordWrapperType": "RecordIO", "CompressionType": "None",
     "ShuffleConfig": {"Seed": 17}, "InputMode": "Pipe",
     "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/part-0"}}}],
  "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/out/"},
  "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
  "StoppingCondition": {"MaxRuntimeInSeconds": int(runtime)},
  "Environment": {"READER_DIR": here}}
json.dump(spec, open(path, "w"))
PY
}

note "a Python script reads 2 epochs of 'train' and, concurrently, the shuffled RecordIO 'rec'"
make_job "$WORK/job.json" pipe-job 600 "[\"$PY\", \"$WORK/train.py\"]"
"$TF" train "$WORK/job.json" --root "$WORK/job" >"$WORK/job.log" 2>&1 || { cat "$WORK/job.log"; fail "Pipe job"; }
ml=$WORK/job/opt/ml
"$PY" - "$data" >"$WORK/train.want" <<'PY'
import hashlib, os, sys
files = sorted(os.listdir(sys.argv[1]))
blob = b"".join(open(os.path.join(sys.argv[1], f), "rb").read() for f in files)
for e in range(2):
    print(f"epoch {e} bytes {len(blob)} sha256 {hashlib.sha256(blob).hexdigest()}")
PY
diff "$WORK/train.want" "$ml/output/data/train.txt" || fail "the script read other bytes from train_N"
# rec: the objects under part-0 (part-00..part-09), in the seed-17 permutation of epoch 0.
"$PY" - "$data" >"$WORK/rec.want" <<'PY'
import hashlib, os, sys
M = (1 << 64) - 1
def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)
files = sorted(f for f in os.listdir(sys.argv[1]) if f.startswith("part-0"))
order = list(range(len(files)))
state = mix64(mix64(17) ^ 0)
def nxt():
    global state
    state = (state + 0x9E3779B97F4A7C15) & M
    return mix64(state)
for i in range(len(order) - 1, 0, -1):
    r = i + 1
    m = nxt() * r
    if (m & M) < r:
        t = ((1 << 64) - r) % r
        while (m & M) < t:
            m = nxt() * r
    j = m >> 64
    order[i], order[j] = order[j], order[i]
for i in order:
    print(hashlib.sha256(open(os.path.join(sys.argv[1], files[i]), "rb").read()).hexdigest())
PY
diff "$WORK/rec.want" "$ml/output/data/rec.txt" || fail "the RecordIO channel's records differ"
grep -q "channel 'train': epoch 1: 16 objects" "$WORK/job.log" || { cat "$WORK/job.log"; fail "no per-epoch report in the job log"; }
grep -q "channel 'rec': epoch 0: 10 objects" "$WORK/job.log" || { cat "$WORK/job.log"; fail "no report for rec"; }
grep -q "Completed" "$WORK/job.log" || fail "job not Completed"
[[ -z $(find "$ml/input/data" -type p) ]] || fail "FIFOs left after the job: $(ls "$ml/input/data")"

note "a command that never opens its FIFO: stopped at MaxRuntimeInSeconds, streaming with it"
make_job "$WORK/idle.json" pipe-idle 3 '["/bin/sleep", "120"]'
start=$(date +%s)
set +e
"$TF" train "$WORK/idle.json" --root "$WORK/idle" --stop-grace 1 >"$WORK/idle.log" 2>&1
rc=$?
set -e
elapsed=$(($(date +%s) - start))
[[ $rc -eq 124 ]] || { cat "$WORK/idle.log"; fail "want exit 124 (max runtime), got $rc"; }
((elapsed < 20)) || fail "the job took ${elapsed}s to stop"
[[ -z $(find "$WORK/idle/opt/ml/input/data" -type p) ]] || fail "FIFOs left after the stopped job"
grep -q "MaxRuntimeExceeded" "$WORK/idle.log" || fail "no MaxRuntimeExceeded in the log"
echo "train_pipe_test: OK"
