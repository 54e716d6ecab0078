#!/usr/bin/env python3
"""Runs as the training command and checks, from inside, what the job runner promised.

Expectations come as a JSON file named by the EXPECT_FILE environment variable (set by the test
through the job's Environment map, whose values AWS limits to 512 characters): {"channels": {...}, "hosts": [...], "current_host": ..., "hyperparameters":
{...}, "args": [...], "ro_channel": "name" | null}. Prints one line per problem and exits 1 if
there is any.
"""
import errno
import json
import os
import sys

problems = []


def check(cond, what):
    if not cond:
        problems.append(what)


with open(os.environ["EXPECT_FILE"]) as f:
    expect = json.load(f)
base = os.environ.get("SAGEMAKER_BASE_DIR", "")
check(base.endswith("/opt/ml") and os.path.isdir(base), f"SAGEMAKER_BASE_DIR={base!r}")
paths = {
    "SM_MODEL_DIR": "model", "SM_INPUT_DIR": "input", "SM_INPUT_CONFIG_DIR": "input/config",
    "SM_OUTPUT_DIR": "output", "SM_OUTPUT_DATA_DIR": "output/data",
    "SM_OUTPUT_INTERMEDIATE_DIR": "output/intermediate",
}
for var, rel in paths.items():
    check(os.environ.get(var) == os.path.join(base, rel), f"{var}={os.environ.get(var)!r}")
    check(os.path.isdir(os.path.join(base, rel)), f"{rel} missing")
check(os.environ.get("TRAINING_JOB_NAME") == expect["job_name"], "TRAINING_JOB_NAME")
check(os.environ.get("TRAINING_JOB_ARN", "").endswith(":training-job/" + expect["job_name"]), "TRAINING_JOB_ARN")

config = os.path.join(base, "input/config")
with open(os.path.join(config, "hyperparameters.json")) as f:
    check(json.load(f) == expect["hyperparameters"], "hyperparameters.json")
with open(os.path.join(config, "inputdataconfig.json")) as f:
    idc = json.load(f)
check(idc == expect["channels"], f"inputdataconfig.json = {idc}")
with open(os.path.join(config, "resourceconfig.json")) as f:
    rc = json.load(f)
check(rc.get("hosts") == expect["hosts"] and rc.get("current_host") == expect["current_host"],
      f"resourceconfig.json = {rc}")
check(json.loads(os.environ["SM_HOSTS"]) == expect["hosts"], "SM_HOSTS")
check(os.environ.get("SM_CURRENT_HOST") == expect["current_host"], "SM_CURRENT_HOST")
check(json.loads(os.environ["SM_CHANNELS"]) == sorted(expect["channels"]), "SM_CHANNELS")
check(json.loads(os.environ["SM_INPUT_DATA_CONFIG"]) == idc, "SM_INPUT_DATA_CONFIG")
check(json.loads(os.environ["SM_RESOURCE_CONFIG"]) == rc, "SM_RESOURCE_CONFIG")
for name in expect["channels"]:
    var = "SM_CHANNEL_" + name.upper()
    check(os.environ.get(var) == os.path.join(base, "input/data", name), f"{var}={os.environ.get(var)!r}")
user_hps = {k: v for k, v in expect["hyperparameters"].items() if not k.startswith("sagemaker_")}
hps = json.loads(os.environ["SM_HPS"])
check(sorted(hps) == sorted(user_hps), f"SM_HPS keys {sorted(hps)}")
for k in user_hps:
    check(("SM_HP_" + k.upper()) in os.environ, f"SM_HP_{k.upper()} missing")
check(sys.argv[1:] == expect["args"], f"argv {sys.argv[1:]} != {expect['args']}")

ro = expect.get("ro_channel")
if ro:
    target = os.path.join(base, "input/data", ro, "written-by-training")
    try:
        open(target, "w").close()
        problems.append(f"writing into read-only channel {ro} succeeded")
    except OSError as e:
        check(e.errno == errno.EROFS, f"writing into {ro}: {e} (expected EROFS)")

# Report what this host received, for the sharding checks of the test.
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "received.txt"), "w") as out:
    for name in sorted(expect["channels"]):
        root = os.path.join(base, "input/data", name)
        for dirpath, _, files in os.walk(root):
            for fn in files:
                out.write(f"{name}/{os.path.relpath(os.path.join(dirpath, fn), root)}\n")
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as f:
    f.write("model of " + os.environ["SM_CURRENT_HOST"] + "\n")

for p in problems:
    print("contract: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
