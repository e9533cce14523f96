#!/usr/bin/env bash
# Checks that no source file includes from a layer above its own (README "Map"; DESIGN.md).
# The layers, lowest first, and what each may include:
#   base/           base
#   search/         base search
#   results/        base search results
#   scheduler/      base search results scheduler
#   trainer/nn/     base trainer/nn                     (the engine knows no agent, no scheduler)
#   trainer/agent/  base trainer/agent scheduler/protocol.h scheduler/keys.h scheduler/handshake.h
#                   (the agent speaks the protocol only: its messages, keys and handshakes)
#   dashboard/      base search results dashboard        (`hpo dashboard` and `hpo report` read the store)
#   cli/, main.cpp  anything (the command line on top)
# tests/ and experiments/ may include anything. Prints each offending line; exit 1 if any.
# usage: scripts/check_layers.sh [ROOT]     (ctest runs it as "no file includes from a layer above its own")
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

allowed() {  # allowed LAYER INCLUDE -> 0 if LAYER may include INCLUDE
  local layer=$1 inc=$2
  case $layer in
    base) [[ $inc == base/* ]] ;;
    search) [[ $inc == base/* || $inc == search/* ]] ;;
    results) [[ $inc == base/* || $inc == search/* || $inc == results/* ]] ;;
    scheduler) [[ $inc == base/* || $inc == search/* || $inc == results/* || $inc == scheduler/* ]] ;;
    trainer/nn) [[ $inc == base/* || $inc == trainer/nn/* ]] ;;
    dashboard) [[ $inc == base/* || $inc == search/* || $inc == results/* || $inc == dashboard/* ]] ;;
    trainer/agent) [[ $inc == base/* || $inc == trainer/agent/* || $inc == scheduler/protocol.h || $inc == scheduler/keys.h || $inc == scheduler/handshake.h ]] ;;
    *) return 1 ;;
  esac
}

include_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)"'
bad=0 checked=0
while IFS= read -r file; do
  case $file in
    base/*) layer=base ;;
    search/*) layer=search ;;
    results/*) layer=results ;;
    scheduler/*) layer=scheduler ;;
    trainer/nn/*) layer=trainer/nn ;;
    trainer/agent/*) layer=trainer/agent ;;
    dashboard/*) layer=dashboard ;;
    trainer/*) echo "$file: a file directly under trainer/ belongs in trainer/nn or trainer/agent"; bad=1; continue ;;
    *) continue ;;
  esac
  checked=$((checked + 1))
  # Bash's own regex, not a sed per line: one process per include made this check take 17 s.
  line=0
  while IFS= read -r text || [[ -n $text ]]; do
    line=$((line + 1))
    [[ $text =~ $include_re ]] || continue
    inc=${BASH_REMATCH[1]}
    # A bare "name.h" is a sibling of the file (same layer), e.g. a folder-private header.
    [[ $inc == */* ]] || continue
    if ! allowed "$layer" "$inc"; then
      echo "$file:$line: layer $layer includes \"$inc\""
      bad=1
    fi
  done <"$file"
done < <(find base search results scheduler trainer -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' \) | sort)

if ((checked == 0)); then echo "check_layers: no source files found under $root"; exit 1; fi
if ((bad)); then echo "check_layers: includes from a layer above (see above)"; exit 1; fi
echo "check_layers: $checked files, every include points down or sideways"
