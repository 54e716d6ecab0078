#!/usr/bin/env python3
"""A small but real SageMaker-style training script: logistic regression, standard library only.

It reads its data the way SageMaker scripts do (SM_CHANNEL_TRAIN / SM_CHANNEL_VALIDATION and
inputdataconfig.json), takes hyperparameters as --key value arguments, resumes from a checkpoint
in the checkpoint directory if one is there, writes a checkpoint every epoch, and saves the model
to SM_MODEL_DIR and metrics to SM_OUTPUT_DATA_DIR. It runs unchanged on SageMaker.
"""
import argparse
import csv
import glob
import json
import math
import os
import random
import sys


def read_rows(channel_dir):
    rows = []
    for path in sorted(glob.glob(os.path.join(channel_dir, "**", "*.csv"), recursive=True)):
        with open(path, newline="") as f:
            for rec in csv.reader(f):
                if rec:
                    rows.append((int(rec[0]), [float(x) for x in rec[1:]]))
    return rows


def predict(w, b, x):
    z = b + sum(wi * xi for wi, xi in zip(w, x))
    return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))


def evaluate(w, b, rows):
    if not rows:
        return float("nan"), float("nan")
    loss = correct = 0.0
    for y, x in rows:
        p = predict(w, b, x)
        loss -= y * math.log(p + 1e-12) + (1 - y) * math.log(1 - p + 1e-12)
        correct += (p >= 0.5) == (y == 1)
    return loss / len(rows), correct / len(rows)


def checkpoint_dir():
    config = os.path.join(os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"),
                          "checkpointconfig.json")
    if os.path.exists(config):
        with open(config) as f:
            return json.load(f).get("LocalPath", "/opt/ml/checkpoints")
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sleep-per-epoch", type=float, default=0.0)  # to test max runtime
    args, unknown = parser.parse_known_args()

    with open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "inputdataconfig.json")) as f:
        channels = json.load(f)
    if channels.get("train", {}).get("TrainingInputMode") not in ("File", "FastFile"):
        sys.exit("this example reads the 'train' channel as files (File or FastFile mode)")
    train = read_rows(os.environ["SM_CHANNEL_TRAIN"])
    validation = read_rows(os.environ["SM_CHANNEL_VALIDATION"]) if "SM_CHANNEL_VALIDATION" in os.environ else []
    if not train:
        sys.exit("no training rows found under " + os.environ["SM_CHANNEL_TRAIN"])
    print(f"host {os.environ.get('SM_CURRENT_HOST')}: {len(train)} training rows, "
          f"{len(validation)} validation rows", flush=True)

    features = len(train[0][1])
    w, b, start_epoch = [0.0] * features, 0.0, 0
    ckpt_dir = checkpoint_dir()
    ckpt_path = os.path.join(ckpt_dir, "checkpoint.json") if ckpt_dir else None
    if ckpt_path and os.path.exists(ckpt_path):
        with open(ckpt_path) as f:
            state = json.load(f)
        w, b, start_epoch = state["w"], state["b"], state["epoch"]
        print(f"resumed from checkpoint at epoch {start_epoch}", flush=True)

    rng = random.Random(args.seed)
    import time
    for epoch in range(start_epoch, args.epochs):
        rng.shuffle(train)
        for y, x in train:
            g = predict(w, b, x) - y
            w = [wi - args.learning_rate * g * xi for wi, xi in zip(w, x)]
            b -= args.learning_rate * g
        loss, acc = evaluate(w, b, validation or train)
        print(f"epoch {epoch + 1}/{args.epochs}: loss={loss:.4f} accuracy={acc:.4f}", flush=True)
        if ckpt_path:
            os.makedirs(ckpt_dir, exist_ok=True)
            tmp = ckpt_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"w": w, "b": b, "epoch": epoch + 1}, f)
            os.replace(tmp, ckpt_path)  # a checkpoint is never seen half-written
        time.sleep(args.sleep_per_epoch)

    loss, acc = evaluate(w, b, validation or train)
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as f:
        json.dump({"weights": w, "bias": b, "features": features}, f)
    os.makedirs(os.environ["SM_OUTPUT_DATA_DIR"], exist_ok=True)
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json"), "w") as f:
        json.dump({"validation_loss": loss, "validation_accuracy": acc}, f)
    print(f"final: loss={loss:.4f} accuracy={acc:.4f}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # SageMaker reports output/failure as the job's FailureReason
        with open(os.path.join(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"), "failure"), "w") as f:
            f.write(f"{type(e).__name__}: {e}")
        raise
