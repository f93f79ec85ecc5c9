#!/usr/bin/env bash
# Router benchmark: wrk against one small backend directly, through plat's
# router (bench/cmd/routerbench, the daemon's router.Router) and through nginx
# (Debian package, reverse proxy with a keep-alive upstream), in the same run,
# rounds interleaved, loopback only. Prints a markdown table of medians.
#
#   bench/router.sh                      # 3 rounds × (-c64, -c16) × 10 s
#   ROUNDS=5 DURATION=10s CONNS="64" bench/router.sh
#   CPUPROFILE=/tmp/router.pprof bench/router.sh   # then: go tool pprof -top <bin> /tmp/router.pprof
#
# Environment: ROUNDS (3), DURATION (10s), CONNS ("64 16"), THREADS (1),
# WARMUP (2s), OUT (directory for raw wrk output; default a temp dir),
# CPUPROFILE (file: CPU profile of the router process over the whole run),
# BASELINE_REV (a git revision: also benchmark the router as built from it,
# as target plat-base, e.g. to measure a change before and after).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-64 16}"
THREADS="${THREADS:-1}"
WARMUP="${WARMUP:-2s}"
HOST_HEADER="hello.localhost"
TARGETS=(direct plat nginx)
[ -n "${BASELINE_REV:-}" ] && TARGETS+=(plat-base)

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

work="$(mktemp -d /tmp/plat-bench.XXXXXX)"
OUT="${OUT:-$work/results}"
mkdir -p "$OUT" "$work/nginx/logs"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work/bin" "$work/nginx" "$work/base"
}
trap cleanup EXIT

# free_port prints a loopback TCP port nobody listens on (other tests may be
# running on this machine, so no fixed ports).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}

# wait_up waits until something answers HTTP on 127.0.0.1:$1.
wait_up() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

echo "building bench binaries" >&2
go build -o "$work/bin/hello" ./bench/cmd/hello
go build -o "$work/bin/routerbench" ./bench/cmd/routerbench
if [ -n "${BASELINE_REV:-}" ]; then
  mkdir -p "$work/base"
  git archive "$BASELINE_REV" | tar -x -C "$work/base"
  cp -r bench/cmd/routerbench "$work/base/routerbench-cmd" # the baseline may predate bench/
  (cd "$work/base" && go build -o "$work/bin/routerbench-base" ./routerbench-cmd)
fi

backend_port="$(free_port)"
"$work/bin/hello" -addr "127.0.0.1:$backend_port" &
backend_pid=$!
pids+=("$backend_pid")
wait_up "$backend_port"

plat_port="$(free_port)"
"$work/bin/routerbench" -addr "127.0.0.1:$plat_port" -backend "127.0.0.1:$backend_port" \
  -host "$HOST_HEADER" ${CPUPROFILE:+-cpuprofile "$CPUPROFILE"} &
router_pid=$!
pids+=("$router_pid")
wait_up "$plat_port"

if [ -n "${BASELINE_REV:-}" ]; then
  base_port="$(free_port)"
  "$work/bin/routerbench-base" -addr "127.0.0.1:$base_port" -backend "127.0.0.1:$backend_port" -host "$HOST_HEADER" &
  base_pid=$!
  pids+=("$base_pid")
  wait_up "$base_port"
fi

nginx_port="$(free_port)"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream hello { server 127.0.0.1:$backend_port; keepalive 128; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://hello;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
pids+=("$nginx_pid")
wait_up "$nginx_port"

port_of() {
  case "$1" in
    direct) echo "$backend_port" ;;
    plat) echo "$plat_port" ;;
    nginx) echo "$nginx_port" ;;
    plat-base) echo "$base_port" ;;
  esac
}

# cpu_ticks TARGET prints the CPU time (user+system, in clock ticks) used so
# far by the process(es) serving TARGET: the backend for direct, the router
# for plat, nginx's master and workers for nginx. CPU per request is less
# sensitive than req/s to other load on the machine.
cpu_ticks() {
  local ps
  case "$1" in
    direct) ps="$backend_pid" ;;
    plat) ps="$router_pid" ;;
    plat-base) ps="$base_pid" ;;
    nginx) ps="$nginx_pid $(cat /proc/"$nginx_pid"/task/*/children)" ;;
  esac
  for p in $ps; do awk '{ print $14 + $15 }' "/proc/$p/stat"; done | awk '{ s += $1 } END { print s }'
}

# run_wrk TARGET CONNS DURATION FILE
run_wrk() {
  local t0 t1
  t0="$(cpu_ticks "$1")"
  wrk -t"$THREADS" -c"$2" -d"$3" --latency -H "Host: $HOST_HEADER" \
    "http://127.0.0.1:$(port_of "$1")/" >"$4" 2>&1
  t1="$(cpu_ticks "$1")"
  echo "cpu_ticks $((t1 - t0)) $(getconf CLK_TCK)" >>"$4"
  if grep -qE 'Non-2xx|Socket errors' "$4"; then
    echo "errors while benchmarking $1 (-c$2):" >&2
    cat "$4" >&2
    return 1
  fi
}

# parse FILE prints "req/s p50_ms p99_ms cpu_us_per_request" from wrk
# --latency output and run_wrk's CPU line.
parse() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v)-2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v)-2) + 0
      if (v ~ /s$/) return substr(v, 1, length(v)-1) * 1000
      return v + 0
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $1 == "Requests/sec:" { rps = $2 }
    $2 == "requests" && $3 == "in" { n = $1 }
    $1 == "cpu_ticks" { cpu = $2 * 1e6 / $3 }
    END { printf "%s %.3f %.3f %.1f\n", rps, p50, p99, (n > 0 ? cpu / n : 0) }' "$1"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2 }'; }

echo "warming up" >&2
for t in "${TARGETS[@]}"; do
  run_wrk "$t" 64 "$WARMUP" "$OUT/warmup-$t.txt"
done

for r in $(seq 1 "$ROUNDS"); do
  for c in $CONNS; do
    for t in "${TARGETS[@]}"; do
      f="$OUT/r$r-c$c-$t.txt"
      run_wrk "$t" "$c" "$DURATION" "$f"
      echo "round $r -c$c $t: $(parse "$f")" >&2
    done
  done
done

if [ -n "${CPUPROFILE:-}" ]; then
  kill -TERM "$router_pid"
  wait "$router_pid" || true
  cp "$work/bin/routerbench" "$CPUPROFILE.bin"
  echo "CPU profile: go tool pprof -top $CPUPROFILE.bin $CPUPROFILE" >&2
fi

echo
echo "wrk -t$THREADS -d$DURATION --latency, $ROUNDS rounds interleaved, medians; $(nproc) CPUs, loopback"
echo
echo "| conns | target | req/s | p50 ms | p99 ms | × direct | p99 added ms | server CPU µs/req |"
echo "|------:|--------|------:|-------:|-------:|---------:|-------------:|------------------:|"
for c in $CONNS; do
  declare -A rps=() p50=() p99=() cpu=()
  for t in "${TARGETS[@]}"; do
    for f in "$OUT"/r*-c"$c"-"$t".txt; do parse "$f"; done >"$work/parsed-$c-$t"
    rps[$t]="$(cut -d' ' -f1 "$work/parsed-$c-$t" | median)"
    p50[$t]="$(cut -d' ' -f2 "$work/parsed-$c-$t" | median)"
    p99[$t]="$(cut -d' ' -f3 "$work/parsed-$c-$t" | median)"
    cpu[$t]="$(cut -d' ' -f4 "$work/parsed-$c-$t" | median)"
  done
  for t in "${TARGETS[@]}"; do
    awk -v c="$c" -v t="$t" -v rps="${rps[$t]}" -v p50="${p50[$t]}" -v p99="${p99[$t]}" -v cpu="${cpu[$t]}" \
      -v drps="${rps[direct]}" -v dp99="${p99[direct]}" 'BEGIN {
        ratio = (t == "direct") ? "1.00" : sprintf("%.2f", rps / drps)
        added = (t == "direct") ? "–" : sprintf("%+.2f", p99 - dp99)
        printf "| %s | %s | %.0f | %.2f | %.2f | %s | %s | %.0f |\n", c, t, rps, p50, p99, ratio, added, cpu
      }'
  done
done
echo
echo "raw wrk output: $OUT" >&2
