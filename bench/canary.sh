#!/usr/bin/env bash
# Canary measurements for BENCHMARKS.md: push → 100% with canary (steps
# 10,50,100 every 2s) and with blue-green for the same app, the router
# switch of each step, and the time from a bad canary's first error to all
# traffic back on stable. Rounds: PLAT_CANARY_BENCH_ROUNDS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
PLAT_CANARY_BENCH=1 go test -count=1 -timeout 30m -run '^TestCanaryMeasure$' -v ./daemon/ 2>&1 |
  grep -E 'BENCH|^(--- |ok|FAIL|PASS)'
