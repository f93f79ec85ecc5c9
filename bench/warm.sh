#!/usr/bin/env bash
# The warm stage side by side in one run (not CI): rollback from the paused
# standby vs starting containers; the first 1 and 20 concurrent requests to
# a warm-sleeping, a cold-sleeping and a running app; the memory a paused
# app keeps. Results go to BENCHMARKS.md.
#
#   bench/warm.sh             # 5 rounds
#   bench/warm.sh -warm 10    # flags go to bench/cmd/platbench
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
go run ./bench/cmd/platbench -pushes 0 -apps 0 -coldstart 0 -replica-rounds 0 -warm 5 "$@"
