#!/usr/bin/python3
"""A suite problem as a command trial, so a study can run it through `hpo run` (what the held-out
problems are judged with): reads $HPO_TRIAL_CONFIG, scores it with libhpo_suite.so and reports
HPO_METRIC {"value": observed, "truth": noise-free}. The noise stream is the suite's
(seed, trial number), the same as bench_suite's in-process runs.

    suite_trial.py --lib build/experiments/suite/libhpo_suite.so --data experiments/suite/data \\
                   --problem branin-2 --seed 0
"""
import argparse
import ctypes
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--problem", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    lib = ctypes.CDLL(a.lib)
    lib.hpo_suite_describe.restype = ctypes.c_char_p
    lib.hpo_suite_noise_seed.restype = ctypes.c_ulonglong
    lib.hpo_suite_noise_seed.argtypes = [ctypes.c_ulonglong, ctypes.c_longlong]
    lib.hpo_suite_eval.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_ulonglong,
                                   ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double)]
    count = lib.hpo_suite_count(a.data.encode())
    index = next((i for i in range(count)
                  if json.loads(lib.hpo_suite_describe(i))["name"] == a.problem), None)
    if index is None:
        sys.exit(f"suite_trial.py: no problem {a.problem!r}")
    with open(os.environ["HPO_TRIAL_CONFIG"]) as f:
        config = f.read()
    number = int(os.environ["HPO_TRIAL_NUMBER"])
    observed, truth = ctypes.c_double(), ctypes.c_double()
    if lib.hpo_suite_eval(index, config.encode(), lib.hpo_suite_noise_seed(a.seed, number),
                          ctypes.byref(observed), ctypes.byref(truth)) != 0:
        sys.exit(f"suite_trial.py: {a.problem}: the config does not fit")
    print("HPO_METRIC " + json.dumps({"value": observed.value, "truth": truth.value}), flush=True)


if __name__ == "__main__":
    main()
