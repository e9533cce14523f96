#!/usr/bin/env bash
# Runs the README's "Three hosts on one machine" block as written (between the
# walkthrough markers), on a bed of its own name and in a temp directory, then
# checks what a user would: the study finished with every trial COMPLETED once,
# all three hosts ran trials, a2 was lost while its cable was out and rejoined,
# and exactly the trials the scheduler said it requeued ran a second attempt.
#
#   walkthrough_test.sh SOURCE_DIR HPO_BINARY_DIR
# Exit 77 (skipped, with the reason) without root, iproute2 or netns support.
set -euo pipefail

src=${1:?usage: walkthrough_test.sh SOURCE_DIR HPO_BINARY_DIR}
bin=${2:?usage: walkthrough_test.sh SOURCE_DIR HPO_BINARY_DIR}
skip() { echo "SKIPPED: $*"; exit 77; }

[[ $(id -u) == 0 ]] || skip "not root: network namespaces and veth pairs need root"
command -v ip >/dev/null || skip "iproute2's ip is not installed"
command -v unshare >/dev/null || skip "util-linux's unshare is not installed"
probe="hpowt-probe-$$"
ip netns add "$probe" 2>/dev/null || skip "cannot create a network namespace"
if ! ip -n "$probe" link add br0 type bridge 2>/dev/null; then
  ip netns del "$probe"; skip "no bridge support in this kernel"
fi
ip netns del "$probe"

tmp=$(mktemp -d /tmp/hpo-walkthrough.XXXXXX)
export HPO_BED="hpowt$$"
cleanup() {
  local rc=$?
  "$src/experiments/cluster/testbed.sh" down >/dev/null 2>&1 || true
  if ((rc != 0)); then
    for f in "$tmp"/walk/*.log "$tmp"/out.txt; do [[ -f $f ]] && { echo "--- $f"; tail -n 30 "$f"; }; done
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

# The block, with the temp directory for /tmp/hpo-walk.
sed -n '/<!-- walkthrough:begin -->/,/<!-- walkthrough:end -->/p' "$src/README.md" |
  sed -e '/^<!--/d' -e '/^```/d' -e "s|/tmp/hpo-walk|$tmp/walk|g" >"$tmp/walk.sh"
grep -q 'bed up 3' "$tmp/walk.sh" || { echo "FAILED: no walkthrough block in README.md"; exit 1; }
# `bed down` at the block's end kills everything; the checks below read the files it left.
cd "$src"
PATH="$bin:$PATH" timeout 150 bash -euo pipefail "$tmp/walk.sh" >"$tmp/out.txt" 2>&1 ||
  { echo "FAILED: the walkthrough block exited $?"; exit 1; }

db="$tmp/walk/hpo.db"
PATH="$bin:$PATH" python3 - "$db" "$tmp/walk/scheduler.log" <<'EOF'
import json, re, subprocess, sys
db, log = sys.argv[1], open(sys.argv[2]).read()
def hpo(*args):
    return json.loads(subprocess.run(["hpo", *args, "--db", db, "--format", "json"],
                                     check=True, capture_output=True, text=True).stdout)
failures = []
def check(ok, what):
    if not ok: failures.append(what)
studies = hpo("studies")
check(len(studies) == 1 and studies[0]["status"] == "finished", f"one finished study: {studies}")
trials = hpo("trials")
check(len(trials) == 36, f"36 trials, got {len(trials)}")
check(all(t["state"] == "COMPLETED" for t in trials), "every trial COMPLETED")
check(all(abs(t["value"] - t["x"]) < 1e-12 for t in trials), "each value is its own x")
hosts = {t["host"] for t in trials}
check(len(hosts) == 3 and all(h.endswith(("-a1", "-a2", "-a3")) for h in hosts), f"three hosts: {hosts}")
lost = re.findall(r"agent (\S+-a2-\d+) lost \(silent for [^)]*\); requeued (\d+) trial", log)
check(len(lost) == 1, f"a2 lost once while its cable was out: {lost}")
requeued = int(lost[0][1]) if lost else -1
second = [t for t in trials if t["attempt"] == 2]
check(len(second) == requeued and all(t["attempt"] <= 2 for t in trials),
      f"the {requeued} requeued trial(s) ran a second attempt, the rest one: {len(second)}")
agents = {a["agent"]: a for a in hpo("agents", "--all")}
check(lost and agents.get(lost[0][0], {}).get("state") in ("live", "left", "lost"),
      f"a2 is known to the scheduler: {list(agents)}")
check(lost and re.search(r"agent " + re.escape(lost[0][0]) + r" joined", log.split(" lost (")[-1]),
      "a2 rejoined after its cable was back")
# Re-sent HELLOs (queued through the outage) say nothing new: one "joined" line per join.
joins = re.findall(r"agent " + re.escape(lost[0][0]) + r" joined", log) if lost else []
check(len(joins) == 2, f"a2 joined twice (first and after its cable was back), logged {len(joins)}")
if failures:
    print("FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print(f"ok: 36 COMPLETED on {sorted(hosts)}, a2 lost once, {requeued} trial(s) requeued and rerun")
EOF
