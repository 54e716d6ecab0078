#!/usr/bin/env bash
# `trainfeed train` end to end against the real S3 server: the contract as seen from inside a
# real child process, ShardedByS3Key over 3 simulated hosts, manifests, a read-only file-system
# channel, outputs, checkpoint restore after a restart, the max-runtime rule, and bad specs.
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

bucket=$(new_bucket train)
make_small_files "$WORK/src/train" 30 2000
mkdir -p "$WORK/src/val" "$WORK/fsdata/sub"
for i in 1 2 3 4 5; do echo "v$i" >"$WORK/src/val/v$i.csv"; done
echo "on a file system" >"$WORK/fsdata/sub/readme.txt"
"$TF" -q upload "$WORK/src" "s3://$bucket/data/" || fail "upload"

note "contract from inside, 3 hosts, ShardedByS3Key, a read-only file-system channel"
expect=$("$PY" - <<PY
import json
print(json.dumps({
  "job_name": "contract-job",
  "hosts": ["algo-1", "algo-2", "algo-3"], "current_host": "CURRENT",
  "hyperparameters": {"epochs": "3", "lr": "0.1", "sagemaker_program": "\"x.py\""},
  "args": ["--epochs", "3", "--lr", "0.1"],
  "channels": {
    "train": {"TrainingInputMode": "File", "S3DistributionType": "ShardedByS3Key", "RecordWrapperType": "None"},
    "val": {"ContentType": "text/csv", "TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"},
    "ro-data": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}},
  "ro_channel": "ro-data"}))
PY
)
for host in algo-1 algo-2 algo-3; do
  "$PY" - "$WORK/contract-$host.json" "${expect/CURRENT/$host}" "$bucket" "$WORK" "$here" <<'PY'
import json, sys
path, expect, bucket, work, here = sys.argv[1:]
open(path + ".expect", "w").write(expect)
spec = {
  "TrainingJobName": "contract-job",
  "RoleArn": "arn:aws:iam::000000000000:role/x",
  "AlgorithmSpecification": {"TrainingInputMode": "File",
                             "ContainerEntrypoint": ["/usr/bin/python3", here + "/contract_check.py"]},
  "HyperParameters": {"epochs": "3", "lr": "0.1", "sagemaker_program": "\"x.py\""},
  "InputDataConfig": [
    {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
      "S3Uri": f"s3://{bucket}/data/train/", "S3DataDistributionType": "ShardedByS3Key"}}},
    {"ChannelName": "val", "ContentType": "text/csv", "DataSource": {"S3DataSource": {
      "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/data/val"}}},
    {"ChannelName": "ro-data", "DataSource": {"FileSystemDataSource": {
      "FileSystemId": f"file://{work}/fsdata", "FileSystemType": "EFS",
      "DirectoryPath": "/sub", "FileSystemAccessMode": "ro"}}}],
  "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/out"},
  "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 3, "VolumeSizeInGB": 5},
  "StoppingCondition": {"MaxRuntimeInSeconds": 600},
  "Environment": {"EXPECT_FILE": path + ".expect"}}
json.dump(spec, open(path, "w"))
PY
  "$TF" -q train "$WORK/contract-$host.json" --root "$WORK/$host" --hosts algo-1,algo-2,algo-3 \
    --current-host "$host" 2>"$WORK/$host.log" || { cat "$WORK/$host.log"; fail "contract job on $host"; }
done
cat "$WORK/algo-1.log"
cat "$WORK"/algo-*/opt/ml/output/data/received.txt | grep '^train/' | sort >"$WORK/train-all"
[[ $(wc -l <"$WORK/train-all") = 30 ]] || fail "3 hosts should receive 30 train objects in all"
[[ $(sort -u "$WORK/train-all" | wc -l) = 30 ]] || fail "train shards overlap"
for host in algo-1 algo-2 algo-3; do
  n=$(grep -c '^train/' "$WORK/$host/opt/ml/output/data/received.txt")
  [[ $n = 10 ]] || fail "$host received $n train objects, expected 10"
  [[ $(grep -c '^val/' "$WORK/$host/opt/ml/output/data/received.txt") = 5 ]] || fail "$host: val is fully replicated"
  [[ -z $(findmnt -rn -o TARGET | grep -F "$WORK/$host") ]] || fail "$host: a mount was left behind"
done
"$TF" ls -r "s3://$bucket/out/contract-job/" >"$WORK/outputs"
cat "$WORK/outputs"
grep -q "contract-job/output/model.tar.gz" "$WORK/outputs" || fail "model.tar.gz of the first host"
[[ $(grep -c 'model' "$WORK/outputs") = 3 ]] || fail "one model archive per host"
[[ -z $(find "$WORK/fsdata" -name written-by-training) ]] || fail "the ro channel was written"

note "File mode from manifests: ManifestFile and AugmentedManifestFile"
printf '[{"prefix": "s3://%s/data/"}, "train/obj-00000.bin", "val/v2.csv"]' "$bucket" >"$WORK/m.json"
printf '{"source-ref": "s3://%s/data/val/v3.csv", "label": 1}\n{"source-ref": "s3://%s/data/val/v4.csv", "label": 0}\n' "$bucket" "$bucket" >"$WORK/a.jsonl"
"$TF" -q upload "$WORK/m.json" "s3://$bucket/manifests/m.json" && "$TF" -q upload "$WORK/a.jsonl" "s3://$bucket/manifests/a.jsonl" || fail "manifest upload"
cat >"$WORK/manifest-job.json" <<JSON
{"TrainingJobName": "manifest-job",
 "AlgorithmSpecification": {"TrainingInputMode": "File", "ContainerEntrypoint": ["true"]},
 "InputDataConfig": [
   {"ChannelName": "m", "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://$bucket/manifests/m.json"}}},
   {"ChannelName": "a", "DataSource": {"S3DataSource": {"S3DataType": "AugmentedManifestFile",
     "S3Uri": "s3://$bucket/manifests/a.jsonl", "AttributeNames": ["source-ref", "label"]}}}],
 "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
 "StoppingCondition": {"MaxRuntimeInSeconds": 60}}
JSON
"$TF" -q train "$WORK/manifest-job.json" --root "$WORK/manifest" 2>"$WORK/manifest.log" || { cat "$WORK/manifest.log"; fail "manifest job"; }
data=$WORK/manifest/opt/ml/input/data
cmp -s "$data/m/data/train/obj-00000.bin" "$WORK/src/train/obj-00000.bin" && [[ $(cat "$data/m/data/val/v2.csv") = v2 ]] || { find "$data"; fail "ManifestFile: entries at their full keys"; }
[[ $(cat "$data/a/data/val/v3.csv") = v3 && $(cat "$data/a/data/val/v4.csv") = v4 ]] || { find "$data"; fail "AugmentedManifestFile: -ref objects"; }
[[ $(wc -l <"$data/a/a.jsonl") = 2 ]] || fail "AugmentedManifestFile: the lines beside the data"

note "checkpoints: restored after a restart"
cat >"$WORK/ckpt-job.json" <<JSON
{"TrainingJobName": "ckpt-job",
 "AlgorithmSpecification": {"TrainingInputMode": "File", "ContainerEntrypoint": ["/usr/bin/python3", "$repo/examples/train.py"]},
 "HyperParameters": {"epochs": "3"},
 "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "file://$repo/examples/data/train/"}}}],
 "OutputDataConfig": {"S3OutputPath": "s3://$bucket/ckpt-out/"},
 "CheckpointConfig": {"S3Uri": "s3://$bucket/checkpoints/ckpt-job/"},
 "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
 "StoppingCondition": {"MaxRuntimeInSeconds": 300}}
JSON
"$TF" -q train "$WORK/ckpt-job.json" --root "$WORK/ckpt1" >"$WORK/ckpt1.out" 2>&1 || { cat "$WORK/ckpt1.out"; fail "first run"; }
"$TF" ls -r "s3://$bucket/checkpoints/ckpt-job/" | grep -q checkpoint.json || fail "checkpoint not uploaded"
sed -i 's/"epochs": "3"/"epochs": "5"/' "$WORK/ckpt-job.json"
"$TF" -q train "$WORK/ckpt-job.json" --root "$WORK/ckpt2" >"$WORK/ckpt2.out" 2>&1 || { cat "$WORK/ckpt2.out"; fail "second run"; }
grep -q "resumed from checkpoint at epoch 3" "$WORK/ckpt2.out" || { cat "$WORK/ckpt2.out"; fail "the restart did not resume"; }
grep -q "epoch 5/5" "$WORK/ckpt2.out" || fail "the restart should run epochs 4 and 5"

note "max runtime: SIGTERM, then outputs are still uploaded"
sed -e 's/"epochs": "5"/"epochs": "1000", "sleep-per-epoch": "0.5"/' -e 's/"MaxRuntimeInSeconds": 300/"MaxRuntimeInSeconds": 2/' \
    -e 's/ckpt-job/slow-job/g' "$WORK/ckpt-job.json" >"$WORK/slow-job.json"
set +e
"$TF" -q train "$WORK/slow-job.json" --root "$WORK/slow" --stop-grace 5 >"$WORK/slow.out" 2>&1
rc=$?
set -e
cat "$WORK/slow.out"
[[ $rc = 124 ]] || fail "max runtime: expected exit 124, got $rc"
grep -q "MaxRuntimeExceeded" "$WORK/slow.out" || fail "max runtime: status line"
"$TF" ls -r "s3://$bucket/ckpt-out/slow-job/" | grep -q "output/model.tar.gz" || fail "outputs not uploaded after the timeout"

note "--container-paths: scripts that hard-code /opt/ml see the job tree"
cat >"$WORK/paths-job.json" <<JSON
{"TrainingJobName": "paths-job",
 "AlgorithmSpecification": {"TrainingInputMode": "File", "ContainerEntrypoint": ["sh", "-c",
   "grep -q algo-1 /opt/ml/input/config/resourceconfig.json && ls /opt/ml/input/data/train/part-0000.csv && echo saved > /opt/ml/model/m"]},
 "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "file://$repo/examples/data/train/"}}}]}
JSON
had_opt_ml=$([[ -e /opt/ml ]] && echo yes || echo no)
"$TF" -q train "$WORK/paths-job.json" --root "$WORK/paths" --container-paths 2>"$WORK/paths.log" || { cat "$WORK/paths.log"; fail "--container-paths job"; }
[[ $(cat "$WORK/paths/opt/ml/model/m") = saved ]] || fail "--container-paths: the write did not land in the job tree"
[[ $([[ -e /opt/ml ]] && echo yes || echo no) = "$had_opt_ml" ]] || fail "--container-paths changed the host's /opt/ml"

note "bad job specs: every problem, by field path, exit 2"
cat >"$WORK/bad.json" <<'JSON'
{"TrainingJobName": "bad_name!",
 "AlgorithmSpecification": {"TrainingInputMode": "File"},
 "InputDataConfig": [
   {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefx", "S3Uri": "s3://b/x"}}},
   {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/y"}}}],
 "Bogus": 1}
JSON
set +e
"$TF" train "$WORK/bad.json" 2>"$WORK/bad.log"
rc=$?
set -e
cat "$WORK/bad.log"
[[ $rc = 2 ]] || fail "bad spec: expected exit 2, got $rc"
grep -q "TrainingJobName" "$WORK/bad.log" || fail "bad spec: job name"
grep -q "InputDataConfig\[0\].DataSource.S3DataSource.S3DataType: 'S3Prefx' is not one of" "$WORK/bad.log" || fail "bad spec: S3DataType"
grep -q "Bogus" "$WORK/bad.log" || fail "bad spec: unknown field"
grep -q "already used by InputDataConfig\[0\]" "$WORK/bad.log" || fail "bad spec: duplicate channel"
echo '{"TrainingJobName": ' >"$WORK/broken.json"
expect_fail "malformed JSON" "$TF" train "$WORK/broken.json" 2>"$WORK/broken.log"
grep -q "malformed JSON" "$WORK/broken.log" || { cat "$WORK/broken.log"; fail "malformed JSON message"; }
echo "PASS"
