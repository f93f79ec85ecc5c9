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
  run() { go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" -fuzzminimizetime "${FUZZMINTIME:-3s}" -parallel 2 "$pkg" 2>&1; }
  ok=1
  out="$(run)" || ok=0
  # Go's fuzzer sometimes ends a short run with a bare "context deadline
  # exceeded" and no failing input (its time ran out mid-work): run it
  # again once; a real finding writes testdata/fuzz/ and says so.
  if [ "$ok" = 0 ] && ! grep -q 'Failing input written' <<<"$out" && grep -q 'context deadline exceeded' <<<"$out"; then
    echo "(the fuzzer's time ran out mid-work, with no failing input: running $fn again)"
    ok=1
    out="$(run)" || ok=0
  fi
  if [ "$ok" = 0 ]; then
    printf '%s\n' "$out"
    echo "fuzz target $fn in $pkg failed"
    exit 1
  fi
  printf '%s\n' "$out" | grep -E '^fuzz: elapsed' | tail -n 1 || true
done < <(grep -rHoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' . | sed 's/func //' | sort)
echo "fuzz targets run: $found"
