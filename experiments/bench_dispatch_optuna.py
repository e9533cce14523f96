#!/usr/bin/python3
"""Optuna's ask/tell loop on Branin, the peer figure of bench_dispatch.

Its SQLite runs as hpo's store does, WAL with synchronous=NORMAL, set on every
connection by a SQLAlchemy "connect" listener and read back into the output,
with a QueuePool of connections.
Prints one JSON object per line: {"peer": ..., "trials": n, "trials_per_s": x,
"pragmas": ...}.
Usage: bench_dispatch_optuna.py DIR   (DIR holds the SQLite files)
"""
import json
import math
import os
import sys
import time

import optuna
import sqlalchemy
import sqlalchemy.event
import sqlalchemy.pool

optuna.logging.set_verbosity(optuna.logging.WARNING)
PRAGMAS = {}


@sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
def _wal_normal(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    mode = cursor.execute("PRAGMA journal_mode").fetchone()[0].upper()
    level = cursor.execute("PRAGMA synchronous").fetchone()[0]
    level = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(level, level)
    PRAGMAS["text"] = f"journal_mode={mode} synchronous={level} QueuePool"
    cursor.close()


def branin(x1, x2):
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def run(name, storage, sampler, n):
    if storage:
        # A pool, as a user who wants speed sets it (SQLAlchemy 1.4's default
        # for a SQLite file is NullPool, a new connection per session).
        storage = optuna.storages.RDBStorage(
            storage, engine_kwargs={"poolclass": sqlalchemy.pool.QueuePool})
    study = optuna.create_study(storage=storage, sampler=sampler, direction="minimize")
    start = time.perf_counter()
    for _ in range(n):
        trial = study.ask()
        x1 = trial.suggest_float("x1", -5, 10)
        x2 = trial.suggest_float("x2", 0, 15)
        study.tell(trial, branin(x1, x2))
    rate = n / (time.perf_counter() - start)
    out = {"peer": name, "trials": n, "trials_per_s": rate}
    if storage:
        out["pragmas"] = PRAGMAS.get("text", "?")
    print(json.dumps(out), flush=True)


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
