#!/usr/bin/python3
"""The sampler benchmark suite's one table (issue 16; experiments/suite/bench_suite.sh).

Reads JSONL run lines from hpo's side (bench_suite, "side": "hpo") and Optuna's
(bench_suite_optuna.py, "side": "optuna"):

  {"side":"optuna","sampler":"tpe","problem":"branin","half":"tune","seed":0,"trials":200,
   "best":{"50":v,"100":v,"200":v},"seconds":t}

and prints, for each budget, one row per problem (tuning half first, then validation) with the
median over seeds of each side+sampler's result (the true value of the trial with the best
observation among the first B trials; lower is better), hpo's default against Optuna's TPE and
against random search, then per half how often hpo's default is at least as good, and the mean
rank of every column.

    table.py [--default "hpo tpe"] [--budgets 50,100,200] FILE.jsonl...

A seed run twice (a file appended to) counts once: its last line wins.
"""
import argparse
import json
import statistics
import sys

OPTUNA_ORDER = ("tpe", "tpe-mv", "cmaes", "random")


def fmt(v):
    if v is None:
        return "-"
    return f"{v:.4g}"


def load(paths):
    runs = {}  # (column, problem, seed) -> line
    problems = {}  # name -> half, in order of first appearance
    columns = []
    for path in paths:
        with open(path) as f:
            for number, text in enumerate(f, 1):
                text = text.strip()
                if not text:
                    continue
                try:
                    line = json.loads(text)
                except json.JSONDecodeError as e:
                    sys.exit(f"table.py: {path}:{number}: not JSON ({e})")
                column = f"{line['side']} {line['sampler']}"
                if column not in columns:
                    columns.append(column)
                problems.setdefault(line["problem"], line.get("half", "?"))
                runs[(column, line["problem"], line["seed"])] = line
    return runs, problems, columns


def order_columns(columns, default):
    def rank(c, side):
        name = c[len(side) + 1:]
        base = name.split("-x")[0]
        known = OPTUNA_ORDER.index(base) if base in OPTUNA_ORDER else len(OPTUNA_ORDER)
        return (c != default, known, base, name != base, columns.index(c))

    hpo = sorted((c for c in columns if c.startswith("hpo ")), key=lambda c: rank(c, "hpo"))
    optuna = sorted((c for c in columns if c.startswith("optuna ")),
                    key=lambda c: rank(c, "optuna"))
    rest = [c for c in columns if c not in hpo and c not in optuna]
    return hpo + optuna + rest


def ranks(values):
    """Average ranks (1 = lowest) of the values that are not None."""
    present = sorted((v, i) for i, v in enumerate(values) if v is not None)
    out = [None] * len(values)
    k = 0
    while k < len(present):
        j = k
        while j + 1 < len(present) and present[j + 1][0] == present[k][0]:
            j += 1
        for m in range(k, j + 1):
            out[present[m][1]] = (k + j) / 2 + 1
        k = j + 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--default", default="hpo tpe", help="hpo's default column (hpo tpe)")
    ap.add_argument("--budgets", default="50,100,200")
    args = ap.parse_args()

    runs, problems, columns = load(args.files)
    if not runs:
        sys.exit("table.py: no runs")
    columns = order_columns(columns, args.default)
    budgets = [b.strip() for b in args.budgets.split(",") if b.strip()]
    order = [p for p in problems if problems[p] == "tune"]
    order += [p for p in problems if problems[p] == "validate"]
    order += [p for p in problems if problems[p] not in ("tune", "validate")]
    halves = []
    for p in order:
        if problems[p] not in halves:
            halves.append(problems[p])

    # The comparison with random search: hpo's own random if it ran, else Optuna's.
    random_col = "hpo random" if "hpo random" in columns else "optuna random"
    vs_optuna = f"{args.default} vs optuna tpe"
    vs_random = f"{args.default} vs random"

    def cell(column, problem, budget):
        values = [line["best"][budget] for (c, p, _), line in runs.items()
                  if c == column and p == problem and budget in line["best"]
                  and line["best"][budget] is not None]
        return (statistics.median(values) if values else None), len(values)

    name_width = max(len("problem"), *(len(p) for p in order)) + 2
    width = max(10, *(len(c) + 2 for c in columns))
    cmp_width = [len(vs_optuna) + 2, len(vs_random) + 2]
    print("Median over seeds of the true value of the best-observed trial (lower is better); "
          f"'{args.default} vs random' compares with {random_col}")
    for budget in budgets:
        if not any(budget in line["best"] for line in runs.values()):
            continue
        print()
        print(f"== {budget} trials ==")
        header = f"{'problem':<{name_width}}{'half':<10}" + "".join(f"{c:>{width}}" for c in columns)
        header += f"{vs_optuna:>{cmp_width[0]}}{vs_random:>{cmp_width[1]}}"
        print(header)
        medians = {}
        seeds_seen = set()
        for p in order:
            row = f"{p:<{name_width}}{problems[p]:<10}"
            for c in columns:
                m, n = cell(c, p, budget)
                medians[(c, p)] = m
                if n:
                    seeds_seen.add(n)
                row += f"{fmt(m):>{width}}"
            d, o, r = medians.get((args.default, p)), medians.get(("optuna tpe", p)), \
                medians.get((random_col, p))
            row += f"{('-' if d is None or o is None else '<=' if d <= o else '>'):>{cmp_width[0]}}"
            row += f"{('-' if d is None or r is None else '<=' if d <= r else '>'):>{cmp_width[1]}}"
            print(row)
        for half in halves:
            names = [p for p in order if problems[p] == half]
            parts = []
            for other, sign in (("optuna tpe", "<="), ("optuna tpe-mv", "<="),
                                ("hpo random", "<"), ("optuna random", "<")):
                pairs = [(medians.get((args.default, p)), medians.get((other, p))) for p in names]
                pairs = [(d, o) for d, o in pairs if d is not None and o is not None]
                if not pairs:
                    continue
                won = sum(1 for d, o in pairs if (d <= o if sign == "<=" else d < o))
                parts.append(f"{sign} {other} on {won}/{len(pairs)}")
            print(f"  {half}: {args.default} {'; '.join(parts) if parts else '(nothing to compare)'}")
            # Parallel asks against sequential ones, and each CMA-ES against the other.
            for mine, other in (("hpo tpe-x8", "hpo tpe"), ("hpo cmaes", "optuna cmaes")):
                pairs = [(medians.get((mine, p)), medians.get((other, p))) for p in names]
                pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
                if pairs:
                    won = sum(1 for a, b in pairs if a <= b)
                    print(f"  {half}: {mine} <= {other} on {won}/{len(pairs)}")
        for half in halves:
            names = [p for p in order if problems[p] == half]
            total = {c: [] for c in columns}
            for p in names:
                for c, r in zip(columns, ranks([medians.get((c, p)) for c in columns])):
                    if r is not None:
                        total[c].append(r)
            text = ", ".join(f"{c} {statistics.mean(v):.2f}" for c, v in total.items() if v)
            if text:
                print(f"  {half}: mean rank over problems (1 = best of {len(columns)}; a column "
                      f"ranked where it ran): {text}")
        if len(seeds_seen) > 1:
            print(f"  seeds per cell differ: {', '.join(str(n) for n in sorted(seeds_seen))}")
        elif seeds_seen:
            print(f"  {seeds_seen.pop()} seeds per cell")


if __name__ == "__main__":
    main()
