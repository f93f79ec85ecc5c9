#!/usr/bin/env bash
# Release strategies with the same app (not CI): push → first new answer,
# push → 100% new, push command time, the longest request under a light
# load (in-place: the pause while the router holds requests) and failed
# requests, for blue-green, rolling (batch 1) and in-place.
#
#   bench/strategies.sh                        # 3 pushes per strategy, 3 replicas
#   bench/strategies.sh -pushes 5 -replicas 1  # flags go to bench/cmd/strategybench
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
go run ./bench/cmd/strategybench "$@"
