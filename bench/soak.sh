#!/usr/bin/env bash
# Soak run: many deploys (pushes, config changes, rollbacks, failing pushes)
# of one or two apps on a real `plat daemon` (own ports, data dir and
# instance name; the real Docker Engine and git) while requests flow through
# plat's router. Samples the daemon's RSS, goroutines, live heap, threads and
# open fds before, during and after; prints whether anything grows and
# whether any container, image, network or temp file was left behind.
# Exits non-zero when the verdict is FAIL. Not part of CI.
#
#   bench/soak.sh                                  # 300 deploys, 2 apps (~15-25 min with the 3 min settle)
#   bench/soak.sh --deploys 20 --settle 10s        # a short run to check it works
#   bench/soak.sh --deploys 300 --apps 1 --out /tmp/soak   # keep report.md, samples.csv, deploys.csv, daemon.log
#
# Flags (passed to bench/cmd/soak; `bench/soak.sh -h` lists them all):
# --deploys N, --apps N, --out DIR, --sample-every N, --settle D,
# --clients N, --pause D, --retain N, --health-deadline D, --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

bin="$(mktemp -d /tmp/platsoak-bin.XXXXXX)"
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/soak" ./bench/cmd/soak
"$bin/soak" "$@"
