#!/usr/bin/env bash
# fuzz.sh: run every Go fuzz target in the module for a bounded time each.
#   bench/fuzz.sh              10 minutes per target (the long run; results in BENCHMARKS.md)
#   FUZZTIME=10s bench/fuzz.sh  what ./test.sh runs
# Targets are found by name (func FuzzX in *_test.go); their seed corpora live
# in each package's testdata/fuzz/ and run as ordinary tests too. A failure
# leaves its input under testdata/fuzz/FuzzX/ for `go test -run FuzzX/NAME`.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10m}"
found=0
while IFS=: read -r file fn; do
  pkg="./$(dirname "${file#./}")"
  found=$((found + 1))
  printf -- '-----> %s %s (%s)\n' "$pkg" "$fn" "$fuzztime"
  if ! out="$(go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" -fuzzminimizetime "${FUZZMINTIME:-3s}" -parallel 2 "$pkg" 2>&1)"; then
    printf '%s\n' "$out"
    echo "fuzz target $fn in $pkg failed"
    exit 1
  fi
  printf '%s\n' "$out" | grep -E '^fuzz: elapsed' | tail -n 1 || true
done < <(grep -rHoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' . | sed 's/func //' | sort)
echo "fuzz targets run: $found"
