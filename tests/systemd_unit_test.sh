#!/usr/bin/env bash
# The shipped systemd unit passes `systemd-analyze verify` without a warning (issue 13).
# The unit is verified as a temp copy whose ExecStart runs the built hpo (systemd checks
# that the command exists and is executable); everything else is the shipped text. Any
# line systemd-analyze prints about the unit fails the test. So that the check can fail,
# a copy with a misspelled directive must draw a warning too.
# Exit 77 (reported skipped) when systemd-analyze is missing (Debian: the systemd package).
# usage: tests/systemd_unit_test.sh REPO_ROOT HPO_BINARY
set -euo pipefail
root=$1 hpo=$2
unit_src=$root/experiments/cluster/hpo-agent.service

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is missing (apt-get install systemd; scripts/setup.sh test does)"
  exit 77
fi
[[ -x $hpo ]] || { echo "FAIL: $hpo is not an executable hpo binary"; exit 1; }
grep -q '^ExecStart=/usr/local/bin/hpo ' "$unit_src" ||
  { echo "FAIL: $unit_src: no 'ExecStart=/usr/local/bin/hpo ' line to point at the build"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# verify UNIT_FILE: prints what systemd-analyze said about the unit; 1 if anything.
verify() {
  local unit=$1 out rc=0
  out=$(cd "$tmp" && systemd-analyze verify "$unit" 2>&1) || rc=$?
  local name
  name=$(basename "$unit")
  # Lines about other units (the machine's own) are not this unit's fault; show them.
  local about
  about=$(grep -F -e "$name" -e "$unit" <<<"$out" || true)
  [[ -n $out && $out != "$about" ]] && printf 'note: systemd-analyze also said:\n%s\n' "$out"
  if [[ -n $about || $rc -ne 0 ]]; then
    printf '%s\n' "${about:-systemd-analyze verify exited $rc}"
    return 1
  fi
  return 0
}

sed "s#^ExecStart=/usr/local/bin/hpo #ExecStart=$hpo #" "$unit_src" >"$tmp/hpo-agent.service"
if ! said=$(verify "$tmp/hpo-agent.service"); then
  printf 'FAIL: systemd-analyze verify warns about experiments/cluster/hpo-agent.service:\n%s\n' "$said"
  exit 1
fi

# The check can fail: a misspelled directive and a bad time value are reported.
failed=0
for broken in 's#^KillMode=#KilMode=#' 's#^RestartSec=5#RestartSec=five#'; do
  sed -e "s#^ExecStart=/usr/local/bin/hpo #ExecStart=$hpo #" -e "$broken" "$unit_src" \
    >"$tmp/hpo-broken.service"
  if verify "$tmp/hpo-broken.service" >/dev/null; then
    echo "FAIL: a unit broken by '$broken' passed the check"
    failed=1
  fi
done
((failed == 0)) || exit 1
echo "ok: systemd-analyze verify has nothing to say about hpo-agent.service; broken copies are refused"
