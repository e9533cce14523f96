#!/usr/bin/python3
"""Multi-fidelity search on real Fashion-MNIST training (issue 14), run by hand:

    /usr/bin/python3 experiments/bench_fmnist.py demo|real|pbt [--build build] [--seeds 1,2]

Every run is `hpo run STUDY.json --agents 2 --cpu-slots 1` (2 CPU agents of 1 thread) with
the native trainer, the real scheduler, pauses, resumes and checkpoints; the figures come from
the run's own store (run.db). Phases:

  demo  The README's main job (experiments/fashion-mnist-cnn.json: TPE with the median
        pruner, 3 epochs) against the same space, seed, agents and 12-minute cap with ASHA and
        TPE (experiments/fashion-mnist-cnn-asha.json: up to 9 epochs, rungs at 1, 3, 9). One run
        each; both leaderboards go to experiments/results/fmnist-demo.txt.
  real  The demo's space on a 20,000-image subset (15,000 to train, 5,000 to validate), up to
        9 epochs, 20 minutes per run: random search (every trial 9 epochs) against ASHA with
        TPE (min 1, max 9, reduction factor 3), for each seed; the best validation accuracy
        after 5, 10 and 20 minutes. experiments/results/fmnist-real.txt.
  pbt   One fixed network (conv 32 3x3, max pooling, ELU; SGD, momentum 0.9, batch 128) on a
        10,000-image subset (8,000 train, 2,000 validation) for 8 epochs: PBT with a population
        of 4 (perturbation every 2 epochs) against the 4 fixed learning-rate schedules of a grid
        (lr 0.02 or 0.08, policy fixed or cosine), at equal compute (4 x 8 epochs each); the
        final test accuracy of each arm's best trial by validation accuracy.
        experiments/results/fmnist-pbt.txt.

Seeds go in the outer loop, so a change in the machine's load falls on both methods alike.
Nothing else should run meanwhile (the results print the load average); pbt compares at equal
compute, not time, so its figures do not depend on the load.
"""

import argparse
import copy
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "experiments/fashion-mnist-cnn.json")
DEMO_ASHA = os.path.join(ROOT, "experiments/fashion-mnist-cnn-asha.json")
RESULTS = os.path.join(ROOT, "experiments/results")


def load(path):
    with open(path) as f:
        return json.load(f)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def commit():
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--", "."]).returncode
    return head + ("+changes" if dirty else "")


QUICK = False  # --quick: a check of this script, not a measurement


def run(hpo, study, work, name, limit):
    """Runs `hpo run` on `study` in work/name; returns the store's path."""
    if QUICK:
        data = study["trial"]["base"]["data"]
        data.update(train_limit=3000, validation=1000, test_limit=1000)
        study["budget"]["max_seconds"] = min(study["budget"]["max_seconds"], 60)
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "study.json"), "w") as f:
        json.dump(study, f, indent=1)
    t0 = time.time()
    with open(os.path.join(d, "log.txt"), "w") as log:
        rc = subprocess.run([hpo, "run", "study.json", "--agents", "2", "--cpu-slots", "1",
                             "--db", "run.db"], cwd=d, stdout=log, stderr=subprocess.STDOUT,
                            timeout=limit).returncode
    if rc != 0:
        sys.stderr.write(open(os.path.join(d, "log.txt")).read()[-4000:])
        sys.exit(f"bench_fmnist: {name} failed with exit status {rc} ({d}/log.txt)")
    print(f"  {name}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return os.path.join(d, "run.db")


class Store:
    """What a run's store says about its study (one study per store)."""

    def __init__(self, path):
        self.db = sqlite3.connect(path)
        self.created, self.spec = self.db.execute("SELECT created, spec FROM studies").fetchone()
        rows = self.db.execute(
            "SELECT id, number, state, value, finished, config FROM trials ORDER BY number")
        self.trials = [dict(id=r[0], number=r[1], state=r[2], value=r[3],
                            finished=r[4], config=json.loads(r[5])) for r in rows]

    def states(self):
        out = {}
        for t in self.trials:
            out[t["state"]] = out.get(t["state"], 0) + 1
        return out

    def metric(self, trial_id, name):
        """The trial's last value of `name` (its newest attempt), or None."""
        r = self.db.execute("SELECT value FROM metrics WHERE trial = ? AND name = ? "
                            "ORDER BY attempt DESC, step DESC LIMIT 1", (trial_id, name)).fetchone()
        return r[0] if r else None

    def best_completed(self, within=None):
        """The COMPLETED trial with the best value finished within `within` s of creation."""
        done = [t for t in self.trials if t["state"] == "COMPLETED" and t["value"] is not None
                and (within is None or t["finished"] - self.created <= within)]
        return max(done, key=lambda t: (t["value"], -t["number"]), default=None)

    def best_reported(self, within, name="val_accuracy"):
        """The best `name` any trial reported at any epoch within `within` s of creation."""
        r = self.db.execute("SELECT max(value) FROM metrics WHERE name = ? AND time - ? <= ?",
                            (name, self.created, within)).fetchone()
        return r[0]

    def epochs_trained(self):
        """Epochs trained in all: each trial's furthest epoch, less the epoch a PBT child
        started from (its parent's metrics up to there are copies, as are a resumed attempt's
        carried ones)."""
        r = self.db.execute(
            "SELECT coalesce(sum(last - coalesce(t.parent_step, 0)), 0) FROM trials t JOIN "
            "(SELECT trial, max(step) AS last FROM metrics WHERE name = 'val_accuracy' "
            "AND step > 0 GROUP BY trial) m ON m.trial = t.id").fetchone()
        return r[0]


def fmt(v):
    return "-" if v is None else f"{v:.4f}"


def leaderboard(hpo, d):
    return subprocess.run([hpo, "leaderboard", "--db", "run.db", "--top", "10"], cwd=d,
                          capture_output=True, text=True).stdout


def header(out, title, args, extra):
    out.append(f"# {title} ({time.strftime('%Y-%m-%d', time.gmtime())}, hpo {commit()}, "
               f"{os.cpu_count()} CPUs)")
    out.append(f"# command: /usr/bin/python3 experiments/bench_fmnist.py {args}")
    out.extend("# " + line for line in extra)


def subset(study, epochs):
    """The demo's study on the 20,000-image subset, with `epochs` epochs per full trial."""
    s = copy.deepcopy(study)
    s["trial"]["base"]["data"]["train_limit"] = 20000
    s["trial"]["base"]["data"]["validation"] = 5000
    s["trial"]["base"]["solver"]["epochs"] = epochs
    return s


def phase_demo(hpo, work, args):
    load_before = loadavg()
    out, boards = [], []
    rows = []
    for name, path in (("tpe-median", DEMO), ("asha-tpe", DEMO_ASHA)):
        study = load(path)
        db = Store(run(hpo, study, work, name, study["budget"]["max_seconds"] + 600))
        best = db.best_completed()
        span = max(t["finished"] or 0 for t in db.trials) - db.created
        rows.append((name, os.path.relpath(path, ROOT), db.states(), span, best,
                     db.metric(best["id"], "test_accuracy") if best else None,
                     db.epochs_trained()))
        boards.append((name, leaderboard(hpo, os.path.join(work, name))))
    header(out, "The main job, TPE + median pruner against ASHA + TPE", "demo", [
        "each: hpo run STUDY.json --agents 2 --cpu-slots 1 (2 CPU agents of 1 thread), full",
        "Fashion-MNIST less 5,000 validation images, the demo's space, seed 7, 12-minute cap",
        f"load average (1/5/15 min) at start {load_before}, at end {loadavg()}"])
    out.append("")
    out.append("| study | file | trials by state | last finish | epochs trained | best trial | "
               "val_accuracy | test_accuracy |")
    out.append("|---|---|---|---|---|---|---|---|")
    for name, path, states, span, best, test, epochs in rows:
        st = ", ".join(f"{v} {k.lower()}" for k, v in sorted(states.items()))
        out.append(f"| {name} | {path} | {st} | {span:.0f} s | {epochs} | "
                   f"{best['number'] if best else '-'} | {fmt(best['value'] if best else None)} | "
                   f"{fmt(test)} |")
    for name, board in boards:
        out += ["", f"{name}: hpo leaderboard --top 10", board]
    return "fmnist-demo.txt", out


def phase_real(hpo, work, args):
    demo = load(DEMO)
    marks = (300, 600, 1200)
    load_before = loadavg()
    runs = {"random": [], "asha-tpe": []}
    for seed in args.seeds:
        for method in runs:
            s = subset(demo, 9)
            s["name"] = f"real-{method}-{seed}"
            s["seed"] = seed
            s["budget"].update(max_trials=10000, max_seconds=1200)
            s.pop("pruner", None)
            s.pop("scheduler", None)
            if method == "random":
                s["sampler"] = {"type": "random"}
            else:
                s["scheduler"] = {"type": "asha", "resource": "epoch", "min_resource": 1,
                                  "max_resource": 9, "reduction_factor": 3}
            db = Store(run(hpo, s, work, s["name"], 1200 + 600))
            runs[method].append((seed, db))
    out = []
    header(out, "Fashion-MNIST, random search against ASHA + TPE, 20 minutes each", "real " +
           f"--seeds {','.join(map(str, args.seeds))}", [
               "each: hpo run STUDY.json --agents 2 --cpu-slots 1 (2 CPU agents of 1 thread);",
               "the demo's space, 20,000 training images (15,000 train, 5,000 validation), the",
               "full 10,000-image test set, 9 epochs for a full trial; budget.max_seconds 1200;",
               "random: every trial 9 epochs, no pruner; ASHA: min 1, max 9, reduction factor 3",
               f"load average (1/5/15 min) at start {load_before}, at end {loadavg()}"])
    out.append("")
    out.append("Best validation accuracy of a COMPLETED (9-epoch) trial, by minutes since the "
               "study's creation; in brackets the best reported at any epoch by any trial:")
    out.append("")
    out.append("| method | seed | 5 min | 10 min | 20 min | test acc. of the best | trials by state |"
               " epochs trained |")
    out.append("|---|---|---|---|---|---|---|---|")
    for method, dbs in runs.items():
        for seed, db in dbs:
            cells = []
            for m in marks:
                b = db.best_completed(m)
                cells.append(f"{fmt(b['value'] if b else None)} ({fmt(db.best_reported(m))})")
            best = db.best_completed()
            test = db.metric(best["id"], "test_accuracy") if best else None
            st = ", ".join(f"{v} {k.lower()}" for k, v in sorted(db.states().items()))
            out.append(f"| {method} | {seed} | " + " | ".join(cells) +
                       f" | {fmt(test)} | {st} | {db.epochs_trained()} |")
    out.append("")
    for method, dbs in runs.items():
        for m in marks:
            vals = [b["value"] for _, db in dbs for b in [db.best_completed(m)] if b]
            mean = sum(vals) / len(vals) if vals else None
            out.append(f"{method}: mean best at {m // 60} min over {len(dbs)} seeds "
                       f"{fmt(mean)} ({len(vals)} of {len(dbs)} seeds had a completed trial)")
    return "fmnist-real.txt", out


def pbt_base(demo, seed):
    s = subset(demo, 8)
    s["trial"]["base"]["data"].update(train_limit=10000, validation=2000)
    s["seed"] = seed
    s["trial"]["base"]["net"] = {
        "conv": [{"filters": 32, "kernel": 3, "pool": "max", "batch_norm": False}],
        "dense": [], "activation": "elu"}
    s["trial"]["base"]["solver"].update(
        optimizer={"type": "sgd", "momentum": 0.9}, batch_size=128)
    s.pop("pruner", None)
    s.pop("scheduler", None)
    s["budget"].update(max_trials=1000, max_seconds=3600)
    return s


def phase_pbt(hpo, work, args):
    demo = load(DEMO)
    load_before = loadavg()
    rows = []
    for seed in args.seeds:
        grid = pbt_base(demo, seed)
        grid["name"] = f"fixed-{seed}"
        grid["sampler"] = {"type": "grid"}
        grid["space"] = {"solver": {"lr": {"type": "choice", "values": [0.02, 0.08]},
                                    "lr_policy": {"type": "choice",
                                                  "values": ["fixed", "cosine"]}}}
        grid["budget"]["max_trials"] = 4
        pbt = pbt_base(demo, seed)
        pbt["name"] = f"pbt-{seed}"
        pbt["sampler"] = {"type": "random"}
        pbt["trial"]["base"]["solver"]["lr_policy"] = "fixed"
        pbt["space"] = {"solver": {"lr": {"type": "float", "low": 0.02, "high": 0.08,
                                          "log": True}}}
        pbt["scheduler"] = {"type": "pbt", "resource": "epoch", "max_resource": 8,
                            "perturbation_interval": 2, "population": 4, "quantile": 0.25,
                            "resample_probability": 0.25}
        for study in (grid, pbt):
            db = Store(run(hpo, study, work, study["name"], 3600))
            best = db.best_completed()
            lrs = None
            if study is pbt and best:
                # The best member's learning rate per generation, along its lineage.
                chain, t = [], best
                by_id = {x["id"]: x for x in db.trials}
                while t:
                    chain.append(t["config"]["solver"]["lr"])
                    p = db.db.execute("SELECT parent FROM trials WHERE id = ?",
                                      (t["id"],)).fetchone()[0]
                    t = by_id.get(p)
                lrs = " <- ".join(f"{x:.4g}" for x in chain)
            rows.append((study["name"], seed, db.states(), db.epochs_trained(), best,
                         db.metric(best["id"], "test_accuracy") if best else None, lrs))
    out = []
    header(out, "PBT against the best fixed learning-rate schedule, equal compute", "pbt " +
           f"--seeds {','.join(map(str, args.seeds))}", [
               "each: hpo run STUDY.json --agents 2 --cpu-slots 1; one network (conv 32 3x3,",
               "max pooling, ELU, no dense block; SGD momentum 0.9, batch 128), 10,000 training",
               "images (8,000 train, 2,000 validation), the full test set, 8 epochs; fixed: grid",
               "of lr 0.02, 0.08 x policy fixed, cosine (4 trials); PBT: population 4, lr",
               "log-uniform in [0.02, 0.08] then explored (x0.8/x1.2, resample 0.25), every 2",
               "epochs, quantile 0.25 (1 of 4 replaced per generation), policy fixed",
               "compute: 4 x 8 epochs per arm (PBT's children continue their parents' epochs)",
               f"load average (1/5/15 min) at start {load_before}, at end {loadavg()}"])
    out.append("")
    out.append("| study | seed | trials by state | epochs trained | best trial | val_accuracy | "
               "test_accuracy | best's config |")
    out.append("|---|---|---|---|---|---|---|---|")
    for name, seed, states, epochs, best, test, lrs in rows:
        st = ", ".join(f"{v} {k.lower()}" for k, v in sorted(states.items()))
        what = lrs and f"lr along its lineage (newest first) {lrs}" or (
            best and json.dumps(best["config"]["solver"]))
        out.append(f"| {name} | {seed} | {st} | {epochs} | {best['number'] if best else '-'} | "
                   f"{fmt(best['value'] if best else None)} | {fmt(test)} | {what} |")
    return "fmnist-pbt.txt", out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("phase", choices=["demo", "real", "pbt"])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seeds", default="1,2", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--results", default=RESULTS, help="where the results file goes")
    ap.add_argument("--keep", action="store_true", help="keep the runs' directories")
    ap.add_argument("--quick", action="store_true",
                    help="check the script in minutes: 3,000 training images, 1-minute budgets "
                         "(its figures mean nothing; the results go to /tmp)")
    args = ap.parse_args()
    global QUICK
    QUICK = args.quick
    if QUICK and args.results == RESULTS:
        args.results = tempfile.mkdtemp(prefix="bench_fmnist_quick.")
    hpo = os.path.realpath(os.path.join(args.build, "hpo"))
    work = tempfile.mkdtemp(prefix=f"bench_fmnist_{args.phase}.")
    print(f"bench_fmnist: {args.phase}, runs in {work}", file=sys.stderr, flush=True)
    name, out = {"demo": phase_demo, "real": phase_real, "pbt": phase_pbt}[args.phase](
        hpo, work, args)
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, name), "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out))
    if not args.keep:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
