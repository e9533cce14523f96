#!/usr/bin/python3
"""Peer figures for experiments/bench_store: Optuna's RDB storage on SQLite.

Creates trials with 5 intermediate values each (ask, 4 suggestions, 5
reports, tell) for about --seconds, then times study.best_trial on that study
(in this process and from a freshly loaded study, as a second CLI would).
Prints one JSON line with the figures.
"""
import argparse
import json
import os
import statistics
import tempfile
import time

import optuna


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    tmp = tempfile.mkdtemp(prefix="optuna-bench-")
    path = args.db or os.path.join(tmp, "optuna.db")
    url = "sqlite:///" + path
    study = optuna.create_study(study_name="bench", storage=url, direction="maximize")

    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        trial = study.ask()
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        batch = trial.suggest_int("batch_size", 32, 512, log=True)
        opt = trial.suggest_categorical("optimizer", ["sgd", "adam", "rmsprop"])
        layers = trial.suggest_int("layers", 1, 4)
        value = 0.0
        for step in range(1, 6):
            value = 1.0 - 1.0 / (step + lr * 100 + layers) - batch * 1e-5 + (opt == "adam") * 0.01
            trial.report(value, step)
        study.tell(trial, value)
        n += 1
    elapsed = time.perf_counter() - start

    def timed(fn, repeat):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    best_ms = timed(lambda: study.best_trial, 5) * 1000.0
    fresh_ms = timed(lambda: optuna.load_study(study_name="bench", storage=url).best_trial, 3) * 1000.0
    print(json.dumps({
        "optuna": optuna.__version__,
        "trials": n,
        "seconds": elapsed,
        "trials_per_s": n / elapsed,
        "intermediate_rows_per_s": 5 * n / elapsed,
        "best_trial_ms": best_ms,
        "load_and_best_trial_ms": fresh_ms,
    }))


if __name__ == "__main__":
    main()
