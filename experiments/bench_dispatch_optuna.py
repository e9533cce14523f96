#!/usr/bin/python3
"""Optuna 3.1's ask/tell loop on Branin, the peer figure of bench_dispatch.

Prints one JSON object per line: {"peer": ..., "trials": n, "trials_per_s": x}.
Usage: bench_dispatch_optuna.py DIR   (DIR holds the SQLite files)
"""
import json
import math
import os
import sys
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def branin(x1, x2):
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def run(name, storage, sampler, n):
    study = optuna.create_study(storage=storage, sampler=sampler, direction="minimize")
    start = time.perf_counter()
    for _ in range(n):
        trial = study.ask()
        x1 = trial.suggest_float("x1", -5, 10)
        x2 = trial.suggest_float("x2", 0, 15)
        study.tell(trial, branin(x1, x2))
    rate = n / (time.perf_counter() - start)
    print(json.dumps({"peer": name, "trials": n, "trials_per_s": rate}), flush=True)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    for f in ("random.db", "tpe.db"):
        path = os.path.join(out, f)
        if os.path.exists(path):
            os.remove(path)
    run("optuna ask/tell, random, in memory", None, optuna.samplers.RandomSampler(seed=1), 5000)
    run("optuna ask/tell, random, SQLite", "sqlite:///" + os.path.join(out, "random.db"),
        optuna.samplers.RandomSampler(seed=1), 200)
    run("optuna ask/tell, TPE, SQLite", "sqlite:///" + os.path.join(out, "tpe.db"),
        optuna.samplers.TPESampler(seed=1), 100)


if __name__ == "__main__":
    main()
