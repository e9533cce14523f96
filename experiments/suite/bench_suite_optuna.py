#!/usr/bin/python3
"""The Optuna side of the sampler benchmark suite (issue 16; experiments/suite/bench_suite.sh).

Loads libhpo_suite.so with ctypes (one implementation of every problem, shared with hpo's side,
experiments/suite/suite.h), turns each problem's space (hpo's search-space language) into Optuna
define-by-run suggestions that build the very config hpo's Space::sample would build, and runs
Optuna 3.1's samplers on it:

  tpe     TPESampler(seed=seed)                      (as it ships: independent)
  tpe-mv  TPESampler(seed=seed, multivariate=True)
  cmaes   CmaEsSampler(seed=seed)                    (its default independent sampler, random,
                                                      takes the categorical/conditional params)
  random  RandomSampler(seed=seed)

in-memory studies, direction minimize. Optuna's parameter names are hpo's decision keys
("lr", "optimizer", "optimizer.options[1].beta1", "net.conv", "net.conv[2].filters").

A run's result at budget B (50, 100, 200) is the TRUE (noise-free) value of the trial with the
best OBSERVED value among its first B trials (the first such trial on a tie). One JSON line per
run is appended to --out (flushed):

  {"side":"optuna","sampler":"tpe","problem":"branin","half":"tune","seed":0,"trials":200,
   "best":{"50":v,"100":v,"200":v},"seconds":t}

    bench_suite_optuna.py [--lib SO] [--data DIR] [--problems a,b] [--half tune|validate|all]
                          [--samplers tpe,tpe-mv,cmaes,random] [--seeds 0-9] [--trials 200]
                          [--jobs 2] [--out FILE]
    bench_suite_optuna.py --list          the problems (index, name, half, family)
    bench_suite_optuna.py --describe      the peer's configuration, for the table's header
    bench_suite_optuna.py --check N       sample N random configs of every selected problem
                                          and evaluate them (no study): the converter's test
"""
import argparse
import ctypes
import json
import math
import multiprocessing
import os
import random
import sys
import time
import warnings

BUDGETS = (50, 100, 200)
SAMPLERS = ("tpe", "tpe-mv", "cmaes", "random")
SAMPLER_TEXT = {
    "tpe": "optuna.samplers.TPESampler(seed=seed)",
    "tpe-mv": "optuna.samplers.TPESampler(seed=seed, multivariate=True)",
    "cmaes": "optuna.samplers.CmaEsSampler(seed=seed)",
    "random": "optuna.samplers.RandomSampler(seed=seed)",
}


# ---------------------------------------------------------------------------------------------
# The library.

class Suite:
    def __init__(self, lib, data):
        self.lib = ctypes.CDLL(os.path.abspath(lib))
        self.lib.hpo_suite_count.argtypes = [ctypes.c_char_p]
        self.lib.hpo_suite_count.restype = ctypes.c_int
        self.lib.hpo_suite_describe.argtypes = [ctypes.c_int]
        self.lib.hpo_suite_describe.restype = ctypes.c_char_p
        self.lib.hpo_suite_noise_seed.argtypes = [ctypes.c_ulonglong, ctypes.c_longlong]
        self.lib.hpo_suite_noise_seed.restype = ctypes.c_ulonglong
        self.lib.hpo_suite_eval.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_ulonglong,
                                            ctypes.POINTER(ctypes.c_double),
                                            ctypes.POINTER(ctypes.c_double)]
        self.lib.hpo_suite_eval.restype = ctypes.c_int
        count = self.lib.hpo_suite_count(data.encode())
        if count <= 0:
            raise SystemExit(f"bench_suite_optuna: {lib}: hpo_suite_count({data!r}) = {count}")
        self.problems = []
        for i in range(count):
            d = json.loads(self.lib.hpo_suite_describe(i).decode())
            d["index"] = i
            d["tree"] = parse_space(d["space"])
            self.problems.append(d)

    def noise_seed(self, seed, number):
        return self.lib.hpo_suite_noise_seed(seed, number)

    def eval(self, problem, config, noise_seed):
        text = json.dumps(config, sort_keys=True, allow_nan=False)
        observed, truth = ctypes.c_double(), ctypes.c_double()
        rc = self.lib.hpo_suite_eval(problem["index"], text.encode(), noise_seed,
                                     ctypes.byref(observed), ctypes.byref(truth))
        if rc != 0:
            raise RuntimeError(f"bench_suite_optuna: hpo_suite_eval refused a config of "
                               f"{problem['name']} (the converter is wrong): {text}")
        return observed.value, truth.value


# ---------------------------------------------------------------------------------------------
# hpo's search-space language, mirrored from search/space_parse.cpp and search/space_sample.cpp.
# A node is a dict: kind (group, float, int, values, options, const, blocks), name, parent,
# children, order (groups: walk order), low/high/step/log, values, value, when.

KINDS = ("float", "int", "choice", "const", "blocks")


def parse_space(space):
    root = parse_group(space, "", None)
    edges = {}
    collect_edges(root, root, edges)
    order_groups(root, edges)
    return root


def new_node(kind, name, parent):
    return {"kind": kind, "name": name, "parent": parent, "children": [], "order": [],
            "low": 0, "high": 0, "step": 0, "log": False, "values": [], "value": None,
            "when": []}


def parse_node(v, name, parent):
    if isinstance(v, dict) and isinstance(v.get("type"), str) and v["type"] in KINDS:
        n = new_node(None, name, parent)
        t = v["type"]
        if t in ("float", "int"):
            n["kind"] = t
            n["low"], n["high"] = float(v["low"]), float(v["high"])
            n["log"] = bool(v.get("log", False))
            n["step"] = 1.0 if t == "int" else 0.0
            if v.get("step") is not None:
                n["step"] = float(v["step"])
        elif t == "choice":
            if "values" in v:
                n["kind"] = "values"
                n["values"] = list(v["values"])
            else:
                n["kind"] = "options"
                n["children"] = [parse_group(o, "", n) for o in v["options"]]
        elif t == "const":
            n["kind"] = "const"
            n["value"] = v["value"]
        else:
            n["kind"] = "blocks"
            n["low"] = float(v.get("min", 1))
            n["high"] = float(v["max"])
            n["step"] = 1.0
            n["children"] = [parse_group(v["block"], "", n)]
        n["when"] = parse_when(v)
        return n
    if isinstance(v, dict):
        return parse_group(v, name, parent)
    n = new_node("const", name, parent)
    n["value"] = v
    return n


def parse_group(v, name, parent):
    if not isinstance(v, dict):
        raise ValueError(f"a sub-space must be an object: {v!r}")
    g = new_node("group", name, parent)
    # nlohmann::json objects are std::maps: children in byte order of their keys (for UTF-8
    # strings the same as Python's code-point order).
    for k in sorted(v):
        if k == "when":
            continue
        g["children"].append(parse_node(v[k], k, g))
    g["when"] = parse_when(v)
    return g


def parse_when(v):
    out = []
    for path, want in sorted((v.get("when") or {}).items()):
        relative = path.startswith(".")
        rest = path[1:] if relative else path
        out.append({"text": path, "relative": relative, "segments": rest.split("."),
                    "values": list(want) if isinstance(want, list) else [want]})
    return out


def resolve(cond, start):
    current = [start]
    for seg in cond["segments"]:
        nxt = []
        for n in current:
            groups = []
            if n["kind"] == "group":
                groups.append(n)
            if n["kind"] == "options":
                groups.extend(n["children"])
            for g in groups:
                nxt.extend(ch for ch in g["children"] if ch["name"] == seg)
        current = nxt
    return current


def is_ancestor(a, n):
    while n is not None:
        if n is a:
            return True
        n = n["parent"]
    return False


def collect_edges(n, root, edges):
    for c in n["when"]:
        start = root
        if c["relative"]:
            p = n["parent"]
            while p is not None and not (p["parent"] is not None
                                         and p["parent"]["kind"] == "blocks"):
                p = p["parent"]
            if p is None:
                raise ValueError(f"'{c['text']}' is relative but not inside a block")
            start = p
        targets = resolve(c, start)
        if not targets:
            raise ValueError(f"'{c['text']}' names a missing parameter")
        for t in targets:
            a = t
            while a["parent"] is not None and not is_ancestor(a["parent"], n):
                a = a["parent"]
            lca = a["parent"]
            if lca is None or lca["kind"] != "group":
                continue
            b = n
            while b["parent"] is not lca:
                b = b["parent"]
            ia = next(i for i, ch in enumerate(lca["children"]) if ch is a)
            ib = next(i for i, ch in enumerate(lca["children"]) if ch is b)
            edges.setdefault(id(lca), set()).add((ia, ib))
    for ch in n["children"]:
        collect_edges(ch, root, edges)


def order_groups(g, edges):
    if g["kind"] == "group":
        e = edges.get(id(g), set())
        count = len(g["children"])
        indegree = [0] * count
        for _, b in e:
            indegree[b] += 1
        done = [False] * count
        while len(g["order"]) < count:
            pick = next((i for i in range(count) if not done[i] and indegree[i] == 0), None)
            if pick is None:
                raise ValueError("conditions form a cycle")
            done[pick] = True
            g["order"].append(pick)
            for a, b in e:
                if a == pick:
                    indegree[b] -= 1
    for ch in g["children"]:
        order_groups(ch, edges)


def json_equal(a, b):
    """nlohmann::json's operator==: numbers compare by value across int/float, a bool is never
    a number, arrays and objects compare element by element."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is None and b is None
    return type(a) is type(b) and a == b


def lookup(at, segments):
    for s in segments:
        if not isinstance(at, dict) or s not in at:
            return None, False
        at = at[s]
    return at, True


def active(n, root, block):
    for c in n["when"]:
        v, found = lookup(block if c["relative"] and block is not None else root, c["segments"])
        if not found:
            return False
        if not any(json_equal(v, want) for want in c["values"]):
            return False
    return True


def cpp_round(x):
    """std::round: halves away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x) if abs(x) < 2**52 else x


def snap(n, v):
    if math.isnan(v):
        v = n["low"]
    v = min(max(v, n["low"]), n["high"])
    if n["step"] > 0:
        v = n["low"] + cpp_round((v - n["low"]) / n["step"]) * n["step"]
        if v > n["high"]:
            v -= n["step"]
        v = min(max(v, n["low"]), n["high"])
    return v


class Decider:
    """What Space::sample asks at each decision point; suggest() returns a number (kFloat/kInt)
    or a category index."""

    def float(self, key, n):
        raise NotImplementedError

    def int(self, key, n):
        raise NotImplementedError

    def category(self, key, count):
        raise NotImplementedError


class OptunaDecider(Decider):
    def __init__(self, trial):
        self.trial = trial

    def float(self, key, n):
        step = n["step"] if n["step"] > 0 else None
        return self.trial.suggest_float(key, n["low"], n["high"], log=n["log"], step=step)

    def int(self, key, n):
        return self.trial.suggest_int(key, int(n["low"]), int(n["high"]), log=n["log"],
                                      step=int(n["step"]) if n["step"] >= 1 else 1)

    def category(self, key, count):
        return self.trial.suggest_categorical(key, list(range(count)))


class RandomDecider(Decider):
    """Uniform decisions (for --check): covers every option, count and condition."""

    def __init__(self, rnd):
        self.rnd = rnd

    def float(self, key, n):
        if n["log"]:
            return math.exp(self.rnd.uniform(math.log(n["low"]), math.log(n["high"])))
        return self.rnd.uniform(n["low"], n["high"])

    def int(self, key, n):
        return self.rnd.randint(int(n["low"]), int(n["high"]))

    def category(self, key, count):
        return self.rnd.randrange(count)


def category(v, count):
    if not (v >= 0):
        return 0
    return min(int(cpp_round(min(v, 1e9))), count - 1)


def sample(tree, decider):
    """Space::sample: the config, built in the same walk order as hpo's, and in place (a group's
    or an option's object is in its parent before it is filled, as hpo's slot is, so a condition
    that names a parameter walked earlier in the same group finds it from the root)."""
    root = {}

    def group(g, out, prefix, block):
        for i in g["order"]:
            c = g["children"][i]
            if not active(c, root, block):
                continue
            value(c, out, c["name"], prefix + c["name"], block)

    def value(n, out, name, key, block):
        k = n["kind"]
        if k == "group":
            out[name] = {}
            group(n, out[name], key + ".", block)
        elif k == "const":
            out[name] = n["value"]
        elif k == "float":
            out[name] = float(snap(n, float(decider.float(key, n))))
        elif k == "int":
            out[name] = int(cpp_round(snap(n, float(decider.int(key, n)))))
        elif k == "values":
            count = len(n["values"])
            out[name] = n["values"][category(decider.category(key, count), count)]
        elif k == "options":
            count = len(n["children"])
            i = category(decider.category(key, count), count)
            out[name] = {}
            group(n["children"][i], out[name], f"{key}.options[{i}].", block)
        else:  # blocks: each element is built apart, then appended (as hpo does)
            count = int(cpp_round(snap(n, float(decider.int(key, n)))))
            out[name] = []
            for j in range(count):
                element = {}
                group(n["children"][0], element, f"{key}[{j}].", element)
                out[name].append(element)

    group(tree, root, "", None)
    return root


# ---------------------------------------------------------------------------------------------
# One run.

_suite = None
_args = None


def init_worker(lib, data):
    global _suite
    if _suite is None:
        _suite = Suite(lib, data)


def make_sampler(name, seed):
    import optuna
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "tpe-mv":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise SystemExit(f"bench_suite_optuna: unknown sampler {name!r} (have {', '.join(SAMPLERS)})")


def quiet():
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=UserWarning)  # CmaEsSampler: independent params


def run(task):
    index, sampler_name, seed, trials = task
    import optuna
    quiet()
    problem = _suite.problems[index]
    observed, truth = [], []

    def objective(trial):
        config = sample(problem["tree"], OptunaDecider(trial))
        o, t = _suite.eval(problem, config, _suite.noise_seed(seed, trial.number))
        observed.append(o)
        truth.append(t)
        return o

    start = time.perf_counter()
    study = optuna.create_study(direction="minimize", sampler=make_sampler(sampler_name, seed))
    study.optimize(objective, n_trials=trials)
    seconds = time.perf_counter() - start
    budgets = [b for b in BUDGETS if b <= trials]
    if trials not in budgets:
        budgets.append(trials)
    best = {}
    for b in budgets:
        i = min(range(b), key=lambda k: (observed[k], k))
        best[str(b)] = truth[i]
    return {"side": "optuna", "sampler": sampler_name, "problem": problem["name"],
            "half": problem["half"], "seed": seed, "trials": trials, "best": best,
            "seconds": round(seconds, 3)}


def parse_seeds(text):
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def select(suite, args):
    names = [p.strip() for p in args.problems.split(",") if p.strip()] if args.problems else None
    known = {p["name"] for p in suite.problems}
    for n in names or []:
        if n not in known:
            raise SystemExit(f"bench_suite_optuna: unknown problem {n!r} "
                             f"(have: {', '.join(p['name'] for p in suite.problems)})")
    return [p for p in suite.problems
            if (names is None or p["name"] in names)
            and (args.half == "all" or p["half"] == args.half)]


def describe():
    import optuna
    lines = [f"Optuna {optuna.__version__}, each run an in-memory study "
             "(optuna.create_study(direction='minimize', sampler=...), no storage), "
             "study.optimize(objective, n_trials=trials), runs spread over --jobs worker processes:"]
    for name in SAMPLERS:
        lines.append(f"  optuna {name}: {SAMPLER_TEXT[name]}")
    lines.append("  (all other arguments Optuna's defaults; CmaEsSampler's categorical and "
                 "conditional parameters go to its default independent sampler, RandomSampler)")
    return "\n".join(lines)


def check(suite, problems, count):
    """Random configs of every problem through hpo_suite_eval: a refusal is a converter bug."""
    for p in problems:
        rnd = random.Random(p["index"])
        for k in range(count):
            config = sample(p["tree"], RandomDecider(rnd))
            suite.eval(p, config, suite.noise_seed(0, k))
        print(f"check {p['name']}: {count} configs accepted", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", default="build/experiments/suite/libhpo_suite.so")
    ap.add_argument("--data", default="experiments/suite/data")
    ap.add_argument("--problems", default="")
    ap.add_argument("--half", default="all", choices=("tune", "validate", "all"))
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--seeds", default="0-9")
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--describe", action="store_true")
    ap.add_argument("--check", type=int, default=0, metavar="N")
    args = ap.parse_args()

    if args.describe:
        print(describe())
        return
    init_worker(args.lib, args.data)
    problems = select(_suite, args)
    if args.list:
        for p in problems:
            print(f"{p['index']:3d} {p['name']:<28} {p['half']:<9} {p['family']}")
        return
    if args.check:
        check(_suite, problems, args.check)
        return
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    for s in samplers:
        if s not in SAMPLERS:
            raise SystemExit(f"bench_suite_optuna: unknown sampler {s!r} "
                             f"(have {', '.join(SAMPLERS)})")
    seeds = parse_seeds(args.seeds)
    if args.trials < 1 or not seeds or not problems:
        raise SystemExit("bench_suite_optuna: nothing to run")
    tasks = [(p["index"], s, seed, args.trials) for p in problems for s in samplers
             for seed in seeds]
    out = open(args.out, "a") if args.out else sys.stdout
    start = time.perf_counter()

    def emit(line):
        out.write(json.dumps(line) + "\n")
        out.flush()

    if args.jobs <= 1:
        for t in tasks:
            emit(run(t))
    else:
        # fork: the workers inherit the loaded library and the parsed problems.
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(args.jobs) as pool:
            for line in pool.imap_unordered(run, tasks):
                emit(line)
    print(f"bench_suite_optuna: {len(tasks)} runs in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
