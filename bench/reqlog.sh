#!/usr/bin/env bash
# Router per-request CPU with request lines on vs off (issue 14: within 5%).
# CPU time (user+sys) of the test binary per request, -test.cpu 1, a fixed
# number of requests, the modes interleaved round by round; prints each
# round's on/off ratio and the median. Usage: bench/reqlog.sh [ROUNDS] [N_MEM] [N_LOOP]
set -euo pipefail
rounds=${1:-8} nmem=${2:-200000} nloop=${3:-20000}
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/router.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./router/
cpu() { # path mode N → CPU µs per request
	local TIMEFORMAT='%U %S' t
	t=$({ time "$bin" -test.run '^$' -test.bench "^BenchmarkRequestLog\$/path=$1/log=$2\$" \
		-test.benchtime "$3x" -test.cpu 1 >/dev/null; } 2>&1)
	awk -v t="$t" -v n="$3" 'BEGIN { split(t, a, " "); printf "%.3f", (a[1] + a[2]) * 1e6 / n }'
}
for path in ServeHTTP Proxy; do
	n=$nmem
	[ "$path" = Proxy ] && n=$nloop
	ratios=()
	for r in $(seq "$rounds"); do
		off=$(cpu "$path" off "$n")
		on=$(cpu "$path" on "$n")
		ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')
		ratios+=("$ratio")
		echo "$path round $r: off ${off}µs on ${on}µs ratio $ratio"
	done
	printf '%s\n' "${ratios[@]}" | sort -n | awk -v p="$path" '{ a[NR] = $1 } END {
		m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "%s median on/off ratio %.3f (min %.3f, max %.3f)\n", p, m, a[1], a[NR] }'
done
