#!/usr/bin/env bash
# plat's own restarts under load (not CI): 10 upgrades and 10 kill -9s with
# 32 clients on one app, printing every failed request by kind, the longest
# request and the time from the signal to a daemon serving again.
#
#   bench/restart.sh                          # this checkout: SIGHUP upgrades, kill -9 of the worker
#   bench/restart.sh --before d0a52f8         # a plat from before in-place upgrades, built from that
#                                             # commit: SIGTERM + start, kill -9 + start
#   bench/restart.sh -n 3 -clients 16         # flags go to bench/cmd/restartbench
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

tmp="$(mktemp -d /tmp/platrestart.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
args=()
if [ "${1:-}" = "--before" ]; then
  ref="$2"
  shift 2
  mkdir -p "$tmp/src"
  git archive "$ref" | tar -x -C "$tmp/src"
  (cd "$tmp/src" && go build -o "$tmp/plat-before" ./cmd/plat)
  args=(-plat "$tmp/plat-before" -restart)
  echo "plat built from $ref ($(git log -1 --format='%h %s' "$ref" | cut -c1-72))"
fi
go build -o "$tmp/restartbench" ./bench/cmd/restartbench
"$tmp/restartbench" "${args[@]}" "$@"
