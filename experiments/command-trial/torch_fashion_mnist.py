#!/usr/bin/python3
"""A PyTorch command trial for hpo that can be paused and resumed (issue 14).

A small CNN on Fashion-MNIST, on the CPU, deterministic: a resumed run prints the same
per-epoch metrics as one that was never stopped. hpo runs it as the study's command:
    /usr/bin/python3 torch_fashion_mnist.py --lr {lr} --width {width} ... --epochs 9
Hyperparameters come from the command line or, for those not given there, from the JSON
file named by $HPO_TRIAL_CONFIG (the sampled config). After each epoch it prints
    HPO_METRIC {"epoch": e, "val_accuracy": a, "val_loss": l}

The pause/resume contract, as hpo's agent drives it:
- $HPO_CHECKPOINT_DIR: after each epoch (before its metric line) the whole state is saved
  there as checkpoint.pt, atomically (temp file, fsync, rename).
- $HPO_PAUSE=1: SIGTERM means "pause": the state is saved at the next safe point (the end
  of the current batch, part-way through the epoch) and the trial exits 0. Without it,
  SIGTERM ends the trial at once (the default action, exit status 143 / -15).
- $HPO_RESUME_FROM: a directory holding a previous attempt's checkpoint.pt; training goes
  on from there (mid-epoch if it was paused mid-epoch) with the same results.
Without these variables (run by hand) it just trains.

The data: Debian's dataset-fashion-mnist (gzip IDX files). The first --train-images of
the training file are used; the last --val-fraction of them are held out for validation.
"""
import argparse
import gzip
import json
import math
import os
import signal
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = 1
# Hyperparameters: (type, default). The command line wins, then $HPO_TRIAL_CONFIG, then these.
HYPER = {
    "lr": (float, 0.05),
    "momentum": (float, 0.9),
    "weight_decay": (float, 0.0),
    "width": (int, 16),        # channels of the first convolution (the second has twice)
    "hidden": (int, 128),      # units of the dense layer
    "dropout": (float, 0.25),
    "batch_size": (int, 64),
    "epochs": (int, 9),
    "seed": (int, 1),
}
# A checkpoint made with other values of these cannot be continued.
SHAPE_KEYS = ("width", "hidden", "seed", "train_images", "val_fraction")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, (kind, default) in HYPER.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None,
                       help=f"default {default}, or the config's {name!r}")
    p.add_argument("--train-images", type=int, default=20000,
                   help="first N images of the training file (default 20000)")
    p.add_argument("--val-fraction", type=float, default=0.25,
                   help="share of them held out for validation (default 0.25)")
    # hpo's agent sets OMP_NUM_THREADS to the study's trial.threads.
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS") or 1),
                   help="torch threads (default $OMP_NUM_THREADS, else 1); a resumed run "
                        "matches only with the same count")
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist",
                   help="the gzip IDX files (Debian's dataset-fashion-mnist)")
    args = p.parse_args()
    config = {}
    if os.environ.get("HPO_TRIAL_CONFIG"):
        with open(os.environ["HPO_TRIAL_CONFIG"]) as f:
            config = json.load(f)
    for name, (kind, default) in HYPER.items():
        if getattr(args, name) is None:
            setattr(args, name, kind(config.get(name, default)))
    if not 0 < args.val_fraction < 1 or args.train_images < 10:
        p.error("--train-images must be >= 10 and --val-fraction in (0, 1)")
    return args


def read_idx(path, count, item_shape):
    """The first `count` items of a gzip IDX file, as a uint8 tensor."""
    with gzip.open(path, "rb") as f:
        magic, total = struct.unpack(">II", f.read(8))
        f.read(4 * len(item_shape))  # the item dimensions
        if count > total:
            sys.exit(f"{path}: asked for {count} items, it has {total}")
        size = count * math.prod(item_shape)
        data = f.read(size)
    if len(data) != size:
        sys.exit(f"{path}: truncated ({len(data)} of {size} bytes)")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(count, *item_shape)


def load_data(args):
    n = args.train_images
    images = read_idx(os.path.join(args.data_dir, "train-images-idx3-ubyte.gz"), n, (28, 28))
    labels = read_idx(os.path.join(args.data_dir, "train-labels-idx1-ubyte.gz"), n, ())
    x = ((images.float() / 255.0 - 0.2860) / 0.3530).unsqueeze(1)
    y = labels.long()
    n_val = max(1, int(n * args.val_fraction))
    return (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:])


class Net(nn.Module):
    def __init__(self, width, hidden, dropout):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc1 = nn.Linear(2 * width * 7 * 7, hidden)
        self.fc2 = nn.Linear(hidden, 10)
        self.dropout = dropout

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.dropout(x.flatten(1), self.dropout, self.training)
        x = F.dropout(F.relu(self.fc1(x)), self.dropout, self.training)
        return self.fc2(x)


def epoch_order(seed, epoch, n):
    """The training order of one epoch: a function of (seed, epoch) only, so a resumed
    run visits the samples in the same order."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def save_checkpoint(directory, state):
    """Writes <directory>/checkpoint.pt so that a crash leaves the old one or the new one,
    never a torn file."""
    os.makedirs(directory, exist_ok=True)
    final = os.path.join(directory, CHECKPOINT)
    tmp = f"{final}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(directory, args):
    path = os.path.join(directory, CHECKPOINT)
    if not os.path.exists(path):
        # The previous attempt was stopped before it saved anything: start afresh.
        print(f"resume: {path} does not exist; starting from epoch 1", file=sys.stderr)
        return None
    # torch's default unpickler: 1.13's weights_only one cannot read the optimizer's floats
    # (newer torch loads weights only by default, and reads this file). The file comes from
    # this trial's own previous attempt, moved by hpo with its SHA-256 checked.
    state = torch.load(path, map_location="cpu")
    if state.get("format") != CHECKPOINT_FORMAT:
        sys.exit(f"{path}: checkpoint format {state.get('format')}, expected {CHECKPOINT_FORMAT}")
    for key in SHAPE_KEYS:
        if state["args"][key] != getattr(args, key):
            sys.exit(f"{path}: made with {key}={state['args'][key]}, "
                     f"this run has {key}={getattr(args, key)}")
    return state


def evaluate(model, x, y, batch=1000):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(x[i:i + batch])
            loss += F.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / len(x), loss / len(x)


def main():
    args = parse_args()
    # Deterministic on the CPU for a fixed thread count: a resumed run must match.
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)

    checkpoint_dir = os.environ.get("HPO_CHECKPOINT_DIR")
    pause_requested = False
    if checkpoint_dir and os.environ.get("HPO_PAUSE") == "1":
        def on_sigterm(signum, frame):
            nonlocal pause_requested
            pause_requested = True
        signal.signal(signal.SIGTERM, on_sigterm)

    (x_train, y_train), (x_val, y_val) = load_data(args)
    model = Net(args.width, args.hidden, args.dropout)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay)
    epoch, done = 1, 0  # the epoch under way, and how many of its samples are trained
    if os.environ.get("HPO_RESUME_FROM"):
        state = load_checkpoint(os.environ["HPO_RESUME_FROM"], args)
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            # The config's values win over the saved ones (PBT may change them on resume).
            for group in opt.param_groups:
                group.update(lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
            torch.set_rng_state(state["rng"])
            epoch, done = state["epoch"], state["samples_done"]

    def snapshot():
        return {"format": CHECKPOINT_FORMAT, "epoch": epoch, "samples_done": done,
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "rng": torch.get_rng_state(),
                "args": {key: getattr(args, key) for key in SHAPE_KEYS}}

    def pause():
        save_checkpoint(checkpoint_dir, snapshot())
        print(f"paused in epoch {epoch} after {done} samples; checkpoint saved",
              file=sys.stderr, flush=True)
        sys.exit(0)

    model.train()
    while epoch <= args.epochs:
        started, cpu_started = time.monotonic(), time.process_time()
        order = epoch_order(args.seed, epoch, len(x_train))
        while done < len(order):
            if pause_requested:
                pause()
            idx = order[done:done + args.batch_size]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            if not math.isfinite(loss.item()):
                sys.exit(f"diverged in epoch {epoch} (lr={args.lr})")
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += len(idx)
        accuracy, val_loss = evaluate(model, x_val, y_val)
        epoch, done = epoch + 1, 0
        # Saved before the metric line: when the scheduler reads epoch e, e is on disk.
        if checkpoint_dir:
            save_checkpoint(checkpoint_dir, snapshot())
        print("HPO_METRIC " + json.dumps({"epoch": epoch - 1, "val_accuracy": accuracy,
                                          "val_loss": val_loss}), flush=True)
        print(f"epoch {epoch - 1}: {time.monotonic() - started:.2f} s "
              f"({time.process_time() - cpu_started:.2f} s CPU)", file=sys.stderr, flush=True)
    if pause_requested:  # SIGTERM during the last epoch's evaluation: all is saved
        sys.exit(0)


if __name__ == "__main__":
    main()
