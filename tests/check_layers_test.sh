#!/usr/bin/env bash
# The layer check fails on an upward include and passes on a clean tree: run on a scratch tree.
set -euo pipefail
script=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{base,search,results,scheduler,trainer/nn,trainer/agent}
echo '#include "base/error.h"' >"$tmp/search/ok.cpp"
echo '#include "scheduler/protocol.h"' >"$tmp/trainer/agent/ok.cpp"
"$script" "$tmp" >/dev/null || { echo "FAIL: a clean tree was refused"; exit 1; }
echo '#include "scheduler/daemon.h"' >"$tmp/trainer/agent/up.cpp"
echo '#include "trainer/agent/agent.h"' >"$tmp/trainer/nn/up.cpp"
out=$("$script" "$tmp" 2>&1) && { echo "FAIL: upward includes were accepted"; exit 1; }
grep -q 'trainer/agent/up.cpp:1: layer trainer/agent includes "scheduler/daemon.h"' <<<"$out" || { echo "FAIL: $out"; exit 1; }
grep -q 'trainer/nn/up.cpp:1: layer trainer/nn includes "trainer/agent/agent.h"' <<<"$out" || { echo "FAIL: $out"; exit 1; }
echo "ok: clean tree passes, upward includes are named"
