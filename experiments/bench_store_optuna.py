#!/usr/bin/python3
"""Peer figures for experiments/bench_store: Optuna's RDB storage on SQLite.

Creates trials with 5 intermediate values each (ask, 4 suggestions, 5
reports, tell) for about --seconds, then times study.best_trial on that study
(in this process and from a freshly loaded study, as a second CLI would).
Prints one JSON line with the figures.

Run as its users would run it at its best, and like for like with hpo's store:
SQLite in WAL with synchronous=NORMAL (hpo's default; --synchronous FULL for
hpo's durable option), set on every connection of Optuna's SQLAlchemy engine
by a "connect" event listener and read back into the output; a RandomSampler,
so the time is the storage's and not TPE's; and a connection pool
(--pool queue, the default here): SQLAlchemy 1.4 gives a SQLite file NullPool,
a new connection per session, which a user who wants speed replaces through
RDBStorage(engine_kwargs={"poolclass": QueuePool}). --pool null measures the
out-of-the-box setting.
"""
import argparse
import json
import os
import statistics
import tempfile
import time

import optuna
import sqlalchemy
import sqlalchemy.event
import sqlalchemy.pool

# What the listener read back from the last connection it set up.
PRAGMAS = {}


def set_pragmas(synchronous):
    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        PRAGMAS["journal_mode"] = cursor.execute("PRAGMA journal_mode").fetchone()[0].upper()
        level = cursor.execute("PRAGMA synchronous").fetchone()[0]
        PRAGMAS["synchronous"] = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(level, level)
        cursor.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--db", default="")
    parser.add_argument("--synchronous", choices=["NORMAL", "FULL"], default="NORMAL")
    parser.add_argument("--pool", choices=["queue", "null"], default="queue")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_pragmas(args.synchronous)

    tmp = tempfile.mkdtemp(prefix="optuna-bench-")
    path = args.db or os.path.join(tmp, "optuna.db")
    url = "sqlite:///" + path
    pool = {"queue": sqlalchemy.pool.QueuePool, "null": sqlalchemy.pool.NullPool}[args.pool]
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"poolclass": pool})
    study = optuna.create_study(study_name="bench", storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=7))

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
    fresh_ms = timed(lambda: optuna.load_study(study_name="bench", storage=optuna.storages.RDBStorage(
                         url, engine_kwargs={"poolclass": pool}),
                                               sampler=optuna.samplers.RandomSampler()).best_trial,
                     3) * 1000.0
    print(json.dumps({
        "optuna": optuna.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "sampler": "RandomSampler",
        "pool": type(storage.engine.pool).__name__,
        "journal_mode": PRAGMAS.get("journal_mode", "?"),
        "synchronous": PRAGMAS.get("synchronous", "?"),
        "trials": n,
        "seconds": elapsed,
        "trials_per_s": n / elapsed,
        "intermediate_rows_per_s": 5 * n / elapsed,
        "best_trial_ms": best_ms,
        "load_and_best_trial_ms": fresh_ms,
    }))


if __name__ == "__main__":
    main()
