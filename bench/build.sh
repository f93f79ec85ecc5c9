#!/bin/sh
# BuildKit (plat's builder) vs the engine's classic builder on the same
# Dockerfile, first and second (cached) build; see BENCHMARKS.md "Builds".
set -eu
cd "$(dirname "$0")/.."
exec go run ./bench/cmd/buildbench "$@"
