#!/usr/bin/python3
"""The PyTorch command trial keeps hpo's pause/resume contract (issue 14):
experiments/command-trial/torch_fashion_mnist.py on 600 images, 3 epochs, 1 thread.
(a) An uninterrupted run prints one metric line per epoch and leaves the epoch-3
    checkpoint in $HPO_CHECKPOINT_DIR.
(b) SIGTERM with $HPO_PAUSE=1 in epoch 2: it saves a checkpoint (epoch 2 under way, or
    epoch 3 if epoch 2 had just ended) and exits 0.
(c) Resumed from that with $HPO_RESUME_FROM, it prints the remaining epochs with exactly
    the val_accuracy and val_loss of (a).
(d) SIGTERM without $HPO_PAUSE ends it at once with a non-zero status.
Skipped (HPO-TEST-SKIPPED) without python3-torch (which scripts/setup.sh does not install:
it is large) or without Debian's dataset-fashion-mnist.

Usage: command_trial_torch_test.py REPO_ROOT"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path("/usr/share/datasets/fashion-mnist")


def skip(reason):
    print(f"HPO-TEST-SKIPPED: {reason}")
    sys.exit(0)


def fail(message):
    sys.exit(f"FAIL: {message}")


try:
    import torch
except ImportError:
    skip("python3-torch is not installed (apt-get install python3-torch)")
if not (DATA / "train-images-idx3-ubyte.gz").exists():
    skip(f"{DATA} is missing (apt-get install dataset-fashion-mnist)")

SCRIPT = Path(sys.argv[1]) / "experiments/command-trial/torch_fashion_mnist.py"
ARGS = [sys.executable, str(SCRIPT), "--train-images", "600", "--epochs", "3",
        "--threads", "1", "--batch-size", "16", "--lr", "0.05", "--width", "8",
        "--hidden", "32"]


def env_with(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
    env.update(extra)
    return env


def metrics(stdout):
    return [json.loads(line[len("HPO_METRIC "):]) for line in stdout.splitlines()
            if line.startswith("HPO_METRIC ")]


def saved(directory):
    state = torch.load(Path(directory) / "checkpoint.pt")
    return state["epoch"], state["samples_done"]


def start(env):
    return subprocess.Popen(ARGS, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_epoch_1(proc):
    """Reads up to the epoch-1 metric line and the time line after it on stderr; returns
    the stdout lines read and epoch 1's seconds."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("HPO_METRIC ") and json.loads(line[11:])["epoch"] == 1:
            for note in proc.stderr:
                if note.startswith("epoch 1: "):
                    return lines, float(note.split()[2])
    fail("no epoch-1 metric and time lines: " + "".join(lines) + proc.stderr.read())


def check(tmp):
    # (a) uninterrupted
    full_dir = tmp / "full"
    run = subprocess.run(ARGS, env=env_with(HPO_CHECKPOINT_DIR=str(full_dir)),
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        fail(f"uninterrupted run exited {run.returncode}: {run.stderr}")
    full = metrics(run.stdout)
    if [m["epoch"] for m in full] != [1, 2, 3]:
        fail(f"uninterrupted run's epochs: {full}")
    for m in full:
        if set(m) != {"epoch", "val_accuracy", "val_loss"} or not 0 <= m["val_accuracy"] <= 1:
            fail(f"bad metric line: {m}")
    if full[-1]["val_accuracy"] < 0.4:  # chance is 0.1
        fail(f"it does not learn: {full}")
    if saved(full_dir) != (4, 0):
        fail(f"after 3 epochs the checkpoint is at {saved(full_dir)}, not (4, 0)")

    # (b) paused part-way through epoch 2: a tenth of epoch 1's time after its line (epoch
    # 1 is the slowest: it warms up); early in epoch 2 whatever the machine's load
    paused_dir = tmp / "paused"
    proc = start(env_with(HPO_CHECKPOINT_DIR=str(paused_dir), HPO_PAUSE="1"))
    lines, seconds = wait_for_epoch_1(proc)
    time.sleep(seconds / 10)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    if proc.returncode != 0:
        fail(f"paused run exited {proc.returncode}, not 0: {err}")
    before = metrics("".join(lines) + out)
    epoch, done = saved(paused_dir)
    print(f"paused in epoch {epoch} after {done} of 450 samples")
    if len(before) == 3:
        fail("the run ended before SIGTERM came: nothing was paused")
    if epoch not in (2, 3) or len(before) != epoch - 1:
        fail(f"paused at ({epoch}, {done}) having printed {before}")
    if before != full[:len(before)]:
        fail(f"paused run's metrics {before} differ from {full}")

    # (c) resumed on "another agent": a fresh checkpoint directory
    resumed_dir = tmp / "resumed"
    run = subprocess.run(ARGS, env=env_with(HPO_CHECKPOINT_DIR=str(resumed_dir),
                                            HPO_RESUME_FROM=str(paused_dir)),
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        fail(f"resumed run exited {run.returncode}: {run.stderr}")
    after = metrics(run.stdout)
    if after != full[len(before):]:
        fail(f"resumed run printed {after}, the uninterrupted one {full[len(before):]}")
    if saved(resumed_dir) != (4, 0):
        fail(f"resumed run's checkpoint is at {saved(resumed_dir)}")

    # (d) SIGTERM without HPO_PAUSE: no pause, it just ends
    proc = start(env_with(HPO_CHECKPOINT_DIR=str(tmp / "killed")))
    wait_for_epoch_1(proc)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("SIGTERM without HPO_PAUSE did not end the trial")
    if proc.returncode == 0:
        fail("SIGTERM without HPO_PAUSE exited 0, as if paused or done")
    print(f"ok: {full}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="hpo-torch-trial-") as tmp:
        check(Path(tmp))
