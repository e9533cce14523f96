#!/usr/bin/env python3
"""The peer for bench_agent_overhead.sh: the least a Python launcher can do for one trial.

subprocess.Popen of the same command through bash with a pipe on stdout, timed from
Popen to the first line, and from the child's exit (seen as EOF) to wait() returning.
Prints "first_line_ms exit_ms" medians and p95 over N runs.
"""
import statistics, subprocess, sys, time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
cmd = sys.argv[2] if len(sys.argv) > 2 else "echo 'HPO_METRIC {\"step\": 1, \"loss\": 1.0}'"
first, done = [], []
for _ in range(n):
    t0 = time.perf_counter()
    p = subprocess.Popen(["/bin/bash", "-c", cmd], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    p.stdout.readline()
    first.append((time.perf_counter() - t0) * 1000)
    p.stdout.read()  # EOF: the child has exited (or closed stdout)
    t1 = time.perf_counter()
    p.wait()
    done.append((time.perf_counter() - t1) * 1000)
q = lambda xs, f: sorted(xs)[min(len(xs) - 1, int(f * len(xs)))]
print(f"{statistics.median(first):.2f} {q(first, 0.95):.2f} {statistics.median(done):.3f} {q(done, 0.95):.3f}")
