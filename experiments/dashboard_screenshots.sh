#!/usr/bin/env bash
# The README's dashboard screenshots: serves DB with `hpo dashboard` and has headless Chromium
# take each view of STUDY (docs/screenshots/).
#   experiments/dashboard_screenshots.sh DB STUDY [OUTDIR] [HPO]
set -euo pipefail
db=$1 study=$2 out=${3:-docs/screenshots} hpo=${4:-build/hpo}
mkdir -p "$out"
log=$(mktemp)
"$hpo" dashboard --db "$db" --bind 127.0.0.1:0 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 50); do grep -q 'http://' "$log" && break; sleep 0.1; done
base=$(grep -o 'http://127.0.0.1:[0-9]*/' "$log")
name=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$study")
shot() {  # shot FILE ROUTE WIDTH HEIGHT
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$3,$4" \
    --virtual-time-budget=15000 --screenshot="$out/$1" "$base$2" 2>/dev/null
  echo "$out/$1"
}
shot history.png "#/study/$name?focus=history" 1200 760
shot parallel.png "#/study/$name?focus=parallel" 1200 760
shot curves.png "#/study/$name?focus=curves" 1200 760
shot timeline.png "#/study/$name?focus=timeline" 1200 760
shot agents.png "#/agents" 1200 420
shot study.png "#/study/$name" 1400 2600
