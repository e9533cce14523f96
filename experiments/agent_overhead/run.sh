#!/usr/bin/env bash
# Per-trial overhead of the agent (issue 6), measured by the agent itself (--verbose):
#   assign -> first output: ASSIGN handled -> trial dir + config.json written -> fork/exec
#                           -> bash -> the trial's first line read by the agent;
#   exit -> finish:         the child reaped (pidfd wake-up) -> output drained -> FINISH built.
# The trial prints one metric line and exits, so nearly all of it is the agent's (and bash's).
# Peer, same run: Python's subprocess.Popen of the same command (peer.py).
# Usage: experiments/agent_overhead/run.sh [BUILD_DIR] [TRIALS]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
n=${2:-100}
hpo=$build/hpo
tmp=${KEEP:-$(mktemp -d)}; mkdir -p "$tmp"
trap 'kill $(jobs -p) 2>/dev/null || true; [[ -n ${KEEP:-} ]] || rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$tmp/study.json" <<JSON
{"name": "overhead", "objective": {"metric": "loss", "direction": "minimize"},
 "sampler": {"type": "random"}, "seed": 1, "budget": {"max_trials": $n, "max_parallel": 1},
 "trial": {"kind": "command", "command": "echo 'HPO_METRIC {\"step\": 1, \"loss\": {x}}'"},
 "space": {"x": {"type": "float", "low": 0, "high": 1}}}
JSON
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$hpo" scheduler --db "$tmp/hpo.db" --bind "tcp://127.0.0.1:$port" --study "$tmp/study.json" \
  --exit-when-done 2>"$tmp/scheduler.log" &
sched=$!
"$hpo" agent --connect "tcp://127.0.0.1:$port" --gpus none --cpu-slots 1 --workdir "$tmp/work" \
  --verbose 2>"$tmp/agent.log" &
start=$(date +%s.%N)
wait $sched
end=$(date +%s.%N)
ours=$(python3 - "$tmp/agent.log" <<'PY'
import re, statistics, sys
first, done = [], []
for line in open(sys.argv[1]):
    m = re.search(r"assign->first output ([0-9.]+) ms, exit->finish ([0-9.]+) ms", line)
    if m:
        first.append(float(m.group(1))); done.append(float(m.group(2)))
q = lambda xs, f: sorted(xs)[min(len(xs) - 1, int(f * len(xs)))]
print(f"{len(first)} {statistics.median(first):.2f} {q(first, 0.95):.2f} {statistics.median(done):.3f} {q(done, 0.95):.3f}")
PY
)
peer=$(python3 experiments/agent_overhead/peer.py "$n")
read -r count f50 f95 d50 d95 <<<"$ours"
read -r pf50 pf95 pd50 pd95 <<<"$peer"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
wall=$(python3 -c "print(f'{($end - $start):.2f}')")
report="agent per-trial overhead ($count trials of \`echo 'HPO_METRIC {...}'\`, 1 CPU agent, $(nproc) cores, $(date -u +%F))
                                  median      p95
hpo agent: ASSIGN -> first line   ${f50} ms   ${f95} ms
Python Popen -> first line        ${pf50} ms   ${pf95} ms   (peer: bare subprocess, no config/log/metrics)
hpo agent: child exit -> FINISH   ${d50} ms   ${d95} ms
Python EOF -> wait() returns      ${pd50} ms   ${pd95} ms
whole search: $n trials in ${wall} s end to end (scheduler + agent + SQLite), max_parallel 1
load average (/proc/loadavg, 1/5/15 min) before $load_before, after $load_after
command: experiments/agent_overhead/run.sh $build $n"
echo "$report"
mkdir -p experiments/results
echo "$report" > experiments/results/agent_overhead.txt
