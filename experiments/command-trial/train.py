#!/usr/bin/env python3
"""A command trial for hpo, in plain Python (standard library only).

hpo runs it as the study's command, with placeholders filled from the sampled config:
    python3 train.py --lr {lr} --momentum {momentum} --epochs {epochs}
and reads the metric lines it prints: `HPO_METRIC {"epoch": 3, "val_loss": 0.01}`.
(The whole config is also in the JSON file named by $HPO_TRIAL_CONFIG, and lines may
instead be written to the file descriptor in $HPO_METRICS_FD.) Exit 0 = done;
anything else = failed, with the last lines of output as the error.

The model: y = 3x - 2 fitted by SGD with momentum on 150 noisy points.
"""
import argparse, json, math, random, sys

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--momentum", type=float, default=0.0)
p.add_argument("--epochs", type=int, default=20)
args = p.parse_args()

rng = random.Random(0)
data = [(x, 3 * x - 2 + rng.gauss(0, 0.1)) for x in (rng.uniform(-1, 1) for _ in range(200))]
train, val = data[:150], data[150:]
w = b = vw = vb = 0.0
for epoch in range(1, args.epochs + 1):
    for x, y in train:
        err = w * x + b - y
        vw, vb = args.momentum * vw - args.lr * err * x, args.momentum * vb - args.lr * err
        w, b = w + vw, b + vb
    val_loss = sum((w * x + b - y) ** 2 for x, y in val) / len(val)
    if not math.isfinite(val_loss) or val_loss > 1e6:
        sys.exit(f"diverged at epoch {epoch} (lr={args.lr}, momentum={args.momentum})")
    print("HPO_METRIC " + json.dumps({"epoch": epoch, "val_loss": val_loss}), flush=True)
