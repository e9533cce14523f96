#!/usr/bin/env bash
# No source file is over 450 lines unless its first comment says why (it mentions "450 lines").
# A file that long usually does two jobs: split it along its seam, or give the reason.
# usage: scripts/check_file_sizes.sh [ROOT]    (ctest runs it)
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
limit=450 bad=0 checked=0
while IFS= read -r file; do
  checked=$((checked + 1))
  # Bash's mapfile, not wc and head per file: process start-ups made this check take 8 s.
  mapfile -t text <"$file"
  lines=${#text[@]}
  ((lines > limit)) || continue
  printf -v first '%s\n' "${text[@]:0:15}"
  [[ $first == *"$limit lines"* ]] && continue
  echo "$file: $lines lines, and its first comment gives no reason for more than $limit"
  bad=1
done < <(find base search results scheduler trainer cli tests experiments main.cpp \
           -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' \) 2>/dev/null | sort)
if ((checked == 0)); then echo "check_file_sizes: no source files found under $root"; exit 1; fi
((bad == 0)) || exit 1
echo "check_file_sizes: $checked files, none over $limit lines without a reason"
