#!/usr/bin/env bash
# The full zero-downtime run: 5 pushes, 2 config changes, 2 rollbacks and 1
# push whose health check fails, while 32 keep-alive clients and 32 clients
# opening a new connection per request hit the app through the router.
# Prints every step and the load generator's counts; fails on any failed
# request. (CI runs the shorter scenario of the same test on every run.)
set -euo pipefail
cd "$(dirname "$0")/.."
PLAT_ZDT_FULL=1 go test -count=1 -timeout 20m -run '^TestZeroDowntime$' -v ./daemon/ 2>&1 |
  grep -E 'zerodowntime_test|^(--- |ok|FAIL|PASS)'
