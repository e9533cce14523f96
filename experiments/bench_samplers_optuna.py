#!/usr/bin/python3
"""The peer side of experiments/bench_samplers.sh: Optuna's random sampler and
TPE, both as it ships (independent) and with multivariate=True (the variant its
users pick for correlated parameters), on Branin and Hartmann6 (100 trials, 10
seeds, median best), and the cost of one TPE ask of either kind with 8
parameters and 1,000 and 10,000 finished trials. Prints the same line format as
bench_samplers.cpp."""
import math
import statistics
import sys
import time
import warnings

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
# multivariate=True is "experimental" in Optuna 3.x and says so on every study.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

TPE = {"optuna-tpe": {}, "optuna-tpe-mv": {"multivariate": True}}

TRIALS, SEEDS = 100, 10


def branin(t):
    x1 = t.suggest_float("x1", -5, 10)
    x2 = t.suggest_float("x2", 0, 15)
    b, c, s = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - s) * math.cos(x1) + 10


ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
     [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
     [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
     [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
     [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]


def hartmann6(t):
    x = [t.suggest_float(f"x{j + 1}", 0, 1) for j in range(6)]
    return -sum(ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j]) ** 2 for j in range(6)))
                for i in range(4))


def quality():
    for name, f in (("branin", branin), ("hartmann6", hartmann6)):
        makers = [("optuna-random", lambda s: optuna.samplers.RandomSampler(seed=s))]
        makers += [(label, lambda s, kw=kw: optuna.samplers.TPESampler(seed=s, **kw))
                   for label, kw in TPE.items()]
        for label, make in makers:
            bests = []
            for seed in range(SEEDS):
                study = optuna.create_study(sampler=make(seed))
                study.optimize(f, n_trials=TRIALS)
                bests.append(study.best_value)
            print(f"quality {name} {label} {statistics.median(bests):.4f}", flush=True)


def ask_cost(label, size, asks):
    """Mean cost of `asks` asks on a study pre-filled with `size` COMPLETE trials."""
    import random
    rnd = random.Random(1)
    dists = {
        "lr": optuna.distributions.FloatDistribution(1e-5, 1, log=True),
        "momentum": optuna.distributions.FloatDistribution(0, 0.99),
        "dropout": optuna.distributions.FloatDistribution(0, 0.5, step=0.05),
        "wd": optuna.distributions.FloatDistribution(1e-6, 1e-2, log=True),
        "units": optuna.distributions.IntDistribution(16, 1024, log=True),
        "layers": optuna.distributions.IntDistribution(1, 8),
        "batch": optuna.distributions.CategoricalDistribution([32, 64, 128, 256]),
        "act": optuna.distributions.CategoricalDistribution(["relu", "tanh", "elu"]),
    }
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=7, **TPE[label]))
    trials = []
    for _ in range(size):
        params = {
            "lr": 10 ** rnd.uniform(-5, 0), "momentum": rnd.uniform(0, 0.99),
            "dropout": rnd.randrange(11) * 0.05, "wd": 10 ** rnd.uniform(-6, -2),
            "units": rnd.randint(16, 1024), "layers": rnd.randint(1, 8),
            "batch": rnd.choice([32, 64, 128, 256]), "act": rnd.choice(["relu", "tanh", "elu"]),
        }
        trials.append(optuna.trial.create_trial(params=params, distributions=dists,
                                                value=rnd.randrange(100000) / 1000))
    study.add_trials(trials)
    cpu, wall = time.thread_time(), time.perf_counter()
    for _ in range(asks):
        t = study.ask(dists)
        study.tell(t, state=optuna.trial.TrialState.FAIL)  # keep the history at `size` complete
    cpu, wall = (time.thread_time() - cpu) / asks, (time.perf_counter() - wall) / asks
    print(f"ask_us {label} {size} {cpu * 1e6:.1f}", flush=True)
    print(f"ask_wall_us {label} {size} {wall * 1e6:.1f}", flush=True)
    print(f"asks {label} {size} {asks}", flush=True)


if __name__ == "__main__":
    print(f"# optuna {optuna.__version__}", flush=True)
    if "--cost-only" not in sys.argv:
        quality()
    if "--quick" not in sys.argv:
        # A handful of asks at 10,000: each takes on the order of a second.
        for label in TPE:
            ask_cost(label, 1000, 20)
            ask_cost(label, 10000, 5)
