#!/usr/bin/env python3
"""The logistic regression of train.py, reading its data the Pipe-mode way: one FIFO per epoch.

For a Pipe channel 'train' SageMaker offers /opt/ml/input/data/train_0, train_1, ... (beside, not
inside, SM_CHANNEL_TRAIN). Each epoch opens the next FIFO, polling until it appears, and reads it
to EOF: the channel's objects back to back (here CSV text, one example per line), shuffled per epoch
when the channel has a ShuffleConfig. Nothing is stored locally. The validation channel is read
once, from validation_0. Runs unchanged on SageMaker.
"""
import argparse
import json
import math
import os
import sys
import time


def fifo_rows(channel, epoch):
    """Yields (label, features) from <channel>_<epoch> as the bytes stream in."""
    path = os.path.join(os.environ["SM_INPUT_DIR"], "data", f"{channel}_{epoch}")
    deadline = time.time() + 600
    while not os.path.exists(path):  # the next FIFO may appear a moment later
        if time.time() > deadline:
            sys.exit(f"{path} never appeared")
        time.sleep(0.01)
    with open(path, "r", newline="") as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) > 1:
                yield int(fields[0]), [float(x) for x in fields[1:]]


def predict(w, b, x):
    z = b + sum(wi * xi for wi, xi in zip(w, x))
    return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    args, _ = parser.parse_known_args()

    with open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "inputdataconfig.json")) as f:
        channels = json.load(f)
    if channels.get("train", {}).get("TrainingInputMode") != "Pipe":
        sys.exit("this example reads the 'train' channel in Pipe mode")

    w, b = None, 0.0
    for epoch in range(args.epochs):
        rows = 0
        for y, x in fifo_rows("train", epoch):
            if w is None:
                w = [0.0] * len(x)
            g = predict(w, b, x) - y
            w = [wi - args.learning_rate * g * xi for wi, xi in zip(w, x)]
            b -= args.learning_rate * g
            rows += 1
        print(f"epoch {epoch + 1}/{args.epochs}: {rows} rows from train_{epoch}", flush=True)
    if w is None:
        sys.exit("the train channel streamed no rows")

    loss = correct = n = 0
    if channels.get("validation", {}).get("TrainingInputMode") == "Pipe":
        for y, x in fifo_rows("validation", 0):
            p = predict(w, b, x)
            loss -= y * math.log(p + 1e-12) + (1 - y) * math.log(1 - p + 1e-12)
            correct += (p >= 0.5) == (y == 1)
            n += 1
    metrics = {"validation_loss": loss / n, "validation_accuracy": correct / n} if n else {}
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as f:
        json.dump({"weights": w, "bias": b}, f)
    os.makedirs(os.environ["SM_OUTPUT_DATA_DIR"], exist_ok=True)
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json"), "w") as f:
        json.dump(metrics, f)
    print(f"final: {metrics}", flush=True)


if __name__ == "__main__":
    main()
