#!/usr/bin/env bash
# Router benchmark: one small backend measured directly, through plat's router
# (bench/cmd/routerbench, the daemon's router.Router behind its fast front end;
# plat-nethttp: behind net/http alone, as before the fast front end) and through nginx
# (Debian package, reverse proxy with a keep-alive upstream), in the same run,
# rounds interleaved, loopback only. Prints a markdown table of medians per
# mode:
#
#   http       HTTP/1.1 keep-alive (wrk): direct, plat, nginx, plat-nethttp,
#              plat-features (canary split + request log + a feature flag), plat-base
#   https      HTTPS keep-alive (wrk, TLS 1.3, ECDSA P-256): nginx-tls, plat-tls,
#              plat-tls-nethttp
#   handshake  a new TLS connection per request (wrk, Connection: close), full
#              handshakes (servers issue no session tickets): plat-hs, nginx-hs;
#              req/s = handshakes/s
#   resume     the same with session tickets, which wrk then uses: resumed
#              handshakes (PSK + X25519): plat-resume, nginx-resume
#   h2         HTTP/2 over TLS (h2load): plat-h2, nginx-h2
#
#   bench/router.sh                      # 3 rounds × all modes × 10 s
#   ROUNDS=1 DURATION=5s MODES="https h2" bench/router.sh
#   PROFILE_DIR=/tmp/prof bench/router.sh   # a CPU profile per plat target, pprof -top -cum summaries
#
# Environment: ROUNDS (3), DURATION (10s), WARMUP (2s), THREADS (1),
# MODES ("http https handshake resume h2"),
# CONNS ("64 16": wrk connections in the http and https modes),
# HS_CONNS (16: connections in the handshake and resume modes),
# H2_CONNS (8) × H2_STREAMS (8): h2load connections × concurrent streams each,
# FEATURES (1: add plat-features to the http mode; 0: leave it out),
# FEATURE_FLAG (new-ui:50; empty: plat-features has no flag),
# FEATURES_COOKIES (0: plat-features clients send no cookies, so every request
#   draws a canary bucket and a user id and gets both Set-Cookies back, the
#   costliest case; 1: they send plat_bucket and plat_uid, as a returning
#   browser does),
# OUT (directory for raw load-generator output; default a temp dir),
# PROFILE_DIR (directory: a CPU profile per plat target, <target>.pprof, and
#   the routerbench binary; prints go tool pprof -top -cum of each),
# CPUPROFILE (file: CPU profile of the plat target only, as before),
# BASELINE_REV (a git revision: also benchmark the router as built from it,
#   as target plat-base in the http mode, to measure a change before/after).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-64 16}"
HS_CONNS="${HS_CONNS:-16}"
H2_CONNS="${H2_CONNS:-8}"
H2_STREAMS="${H2_STREAMS:-8}"
THREADS="${THREADS:-1}"
WARMUP="${WARMUP:-2s}"
MODES="${MODES:-http https handshake resume h2}"
FEATURES="${FEATURES:-1}"
FEATURES_COOKIES="${FEATURES_COOKIES:-0}"
PPROF_NODES="${PPROF_NODES:-25}"
HOST_HEADER="hello.localhost"
# The routerbench of this revision serves plain HTTP only; it builds against
# older routers that predate canaries, request logs and flags (BASELINE_REV).
PLAIN_ROUTERBENCH_REV=1e49e3a
# The feature flag of plat-features, and its canary's weight.
FEATURE_FLAG="${FEATURE_FLAG-new-ui:50}" # FEATURE_FLAG= : plat-features without a flag
CANARY_WEIGHT=10

for m in $MODES; do
  case "$m" in
    http | https | handshake | resume | h2) ;;
    *) echo "MODES: unknown mode $m; use http, https, handshake, resume, h2" >&2; exit 2 ;;
  esac
done
has_mode() { [[ " $MODES " == *" $1 "* ]]; }
tls_on() { has_mode https || has_mode handshake || has_mode resume || has_mode h2; }

# Targets of each mode, in the order of a round; the first is the reference
# of the mode's "×" and "p99 added" columns.
declare -A MODE_TARGETS=(
  [http]="direct plat nginx plat-nethttp"
  [https]="nginx-tls plat-tls plat-tls-nethttp"
  [handshake]="nginx-hs plat-hs"
  [resume]="nginx-resume plat-resume"
  [h2]="nginx-h2 plat-h2"
)
[ "$FEATURES" = 1 ] && MODE_TARGETS[http]+=" plat-features"
[ -n "${BASELINE_REV:-}" ] && MODE_TARGETS[http]+=" plat-base"
declare -A MODE_CONNS=([http]="$CONNS" [https]="$CONNS" [handshake]="$HS_CONNS" [resume]="$HS_CONNS" [h2]="${H2_CONNS}x$H2_STREAMS")

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if has_mode h2; then command -v h2load >/dev/null || need+=(nghttp2-client); fi
if tls_on; then command -v openssl >/dev/null || need+=(openssl); fi
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
[ -n "${PROFILE_DIR:-}" ] && mkdir -p "$PROFILE_DIR"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work/bin" "$work/nginx" "$work/base" "$work/tls"
}
trap cleanup EXIT

# free_port prints a loopback TCP port nobody listens on (other tests may be
# running on this machine, so no fixed ports), below the ephemeral range
# (outgoing connections bind those: the handshake modes use thousands) and
# not handed out before in this run.
ephemeral_low="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
free_port() {
  local p
  while :; do
    p=$((10000 + RANDOM % (ephemeral_low - 10000)))
    grep -qx "$p" "$work/ports" 2>/dev/null && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p" >>"$work/ports"
      echo "$p"
      return
    fi
  done
}

# wait_up waits until something listens on 127.0.0.1:$1.
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
  # The baseline may predate bench/ or the router features today's
  # routerbench turns on: then build the plain one.
  cp -r bench/cmd/routerbench "$work/base/routerbench-cmd"
  if ! (cd "$work/base" && go build -o "$work/bin/routerbench-base" ./routerbench-cmd) 2>/dev/null; then
    git show "$PLAIN_ROUTERBENCH_REV:bench/cmd/routerbench/main.go" >"$work/base/routerbench-cmd/main.go"
    (cd "$work/base" && go build -o "$work/bin/routerbench-base" ./routerbench-cmd)
  fi
fi

# One self-signed ECDSA P-256 certificate for nginx and plat.
if tls_on; then
  mkdir -p "$work/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=$HOST_HEADER" -addext "subjectAltName=DNS:$HOST_HEADER" \
    -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" 2>/dev/null
fi

declare -A port=() pid=()

# start NAME PORT CMD...: runs a server in the background and waits for it.
start() {
  local name="$1" p="$2"
  shift 2
  "$@" &
  pid[$name]=$!
  port[$name]="$p"
  pids+=("$!")
  wait_up "$p"
}

# profile_args TARGET prints routerbench's -cpuprofile for TARGET, if any.
profile_args() {
  if [ -n "${PROFILE_DIR:-}" ]; then
    echo "-cpuprofile $PROFILE_DIR/$1.pprof"
  elif [ "$1" = plat ] && [ -n "${CPUPROFILE:-}" ]; then
    echo "-cpuprofile $CPUPROFILE"
  fi
}

p="$(free_port)"
start direct "$p" "$work/bin/hello" -addr "127.0.0.1:$p"
backend="127.0.0.1:${port[direct]}"

# plat_targets are the routerbench processes of this run, one per target, so
# that each has its own CPU time and profile.
plat_targets=()
for m in $MODES; do
  for t in ${MODE_TARGETS[$m]}; do [[ "$t" == plat* ]] && plat_targets+=("$t"); done
done
tls_args=(-cert "$work/tls/cert.pem" -key "$work/tls/key.pem")
for t in "${plat_targets[@]}"; do
  p="$(free_port)"
  bin="$work/bin/routerbench"
  args=(-addr "127.0.0.1:$p" -backend "$backend" -host "$HOST_HEADER")
  case "$t" in
    plat-features)
      # The canary group: a second hello backend on its own port.
      cp="$(free_port)"
      start canary-backend "$cp" "$work/bin/hello" -addr "127.0.0.1:$cp"
      args+=(-canary "127.0.0.1:$cp" -canary-weight "$CANARY_WEIGHT" -reqlog)
      if [ -n "$FEATURE_FLAG" ]; then args+=(-flags "$FEATURE_FLAG"); fi
      ;;
    plat-base) bin="$work/bin/routerbench-base" ;;
    plat-nethttp) args+=(-frontend nethttp) ;;
    plat-tls-nethttp) args+=("${tls_args[@]}" -frontend nethttp) ;;
    plat-tls | plat-resume | plat-h2) args+=("${tls_args[@]}") ;;
    plat-hs) args+=("${tls_args[@]}" -no-resume) ;;
  esac
  # shellcheck disable=SC2046 # profile_args prints two words or none
  start "$t" "$p" "$bin" "${args[@]}" $(profile_args "$t")
done

nginx_port="$(free_port)"
nginx_tls_port="$(free_port)"
nginx_full_port="$(free_port)"
nginx_tls=""
if tls_on; then
  # TLS 1.3 only; the cipher suite Go's server picks (AES-128-GCM) first,
  # so both sides encrypt alike (nginx would follow the client's
  # preference, AES-256-GCM, otherwise).
  nginx_tls="
  server {
    listen 127.0.0.1:$nginx_tls_port ssl http2;
    ssl_certificate $work/tls/cert.pem;
    ssl_certificate_key $work/tls/key.pem;
    ssl_protocols TLSv1.3;
    ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
    location / { include $work/nginx/proxy.conf; }
  }
  # No tickets and no session cache: no resumption, every handshake full.
  server {
    listen 127.0.0.1:$nginx_full_port ssl;
    ssl_certificate $work/tls/cert.pem;
    ssl_certificate_key $work/tls/key.pem;
    ssl_protocols TLSv1.3;
    ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
    ssl_session_tickets off;
    ssl_session_cache off;
    location / { include $work/nginx/proxy.conf; }
  }"
fi
cat >"$work/nginx/proxy.conf" <<EOF
proxy_pass http://hello;
proxy_http_version 1.1;
proxy_set_header Connection "";
proxy_set_header Host \$host;
proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto \$scheme;
EOF
# keepalive_requests: nginx closes a client connection after 1000 requests
# by default (Go's server never does), which would add a reconnect (and a
# TLS handshake) per 1000 requests to nginx's numbers only.
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream hello { server $backend; keepalive 128; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / { include $work/nginx/proxy.conf; }
  }$nginx_tls
}
EOF
start nginx "$nginx_port" "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;'
if tls_on; then wait_up "$nginx_tls_port" && wait_up "$nginx_full_port"; fi
for t in nginx-tls nginx-resume nginx-h2; do port[$t]="$nginx_tls_port"; done
port[nginx-hs]="$nginx_full_port"

# cpu_ticks TARGET prints the CPU time (user+system, in clock ticks) used so
# far by the process(es) serving TARGET: the backend for direct, the router
# for plat*, nginx's master and workers for nginx*. CPU per request is less
# sensitive than req/s to other load on the machine.
cpu_ticks() {
  local ps
  case "$1" in
    nginx*) ps="${pid[nginx]} $(cat /proc/"${pid[nginx]}"/task/*/children)" ;;
    *) ps="${pid[$1]}" ;;
  esac
  for p in $ps; do awk '{ print $14 + $15 }' "/proc/$p/stat"; done | awk '{ s += $1 } END { print s }'
}

# wrk prints its 99.9th latency percentile (µs) with this script; a done()
# hook costs nothing per request.
cat >"$work/p999.lua" <<'EOF'
done = function(summary, latency, requests)
  io.write(string.format("p999_us %d\n", latency:percentile(99.9)))
end
EOF

# run_load TARGET CONNS DURATION FILE runs the load generator of TARGET's
# mode and appends the CPU time its server used.
run_load() {
  local t="$1" c="$2" d="$3" f="$4" t0 t1 scheme=http
  local args=(-t"$THREADS" -c"$c" -d"$d" --latency -s "$work/p999.lua" -H "Host: $HOST_HEADER")
  t0="$(cpu_ticks "$t")"
  case "$t" in
    *-h2)
      h2load -t"$THREADS" -c"$H2_CONNS" -m"$H2_STREAMS" -D"$d" -H ":authority: $HOST_HEADER" \
        --log-file="$f.log" "https://127.0.0.1:${port[$t]}/" >"$f" 2>&1 || true
      ;;
    *)
      case "$t" in
        *-tls | *-tls-nethttp) scheme=https ;;
        *-hs | *-resume)
          scheme=https
          args+=(-H "Connection: close")
          ;;
        plat-features)
          if [ "$FEATURES_COOKIES" = 1 ]; then args+=(-H "Cookie: plat_bucket=42; plat_uid=bench-user-1"); fi
          ;;
      esac
      wrk "${args[@]}" "$scheme://127.0.0.1:${port[$t]}/" >"$f" 2>&1 || true
      ;;
  esac
  t1="$(cpu_ticks "$t")"
  echo "cpu_ticks $((t1 - t0)) $(getconf CLK_TCK)" >>"$f"
  # A wrong answer or no result ends the run.
  if grep -q 'Non-2xx' "$f" || ! grep -qE '^Requests/sec:|^finished in' "$f" ||
    { [[ "$t" == *-h2 ]] && ! grep -qE '^status codes: [0-9]+ 2xx, 0 3xx, 0 4xx, 0 5xx' "$f"; }; then
    echo "errors while benchmarking $t (-c$c):" >&2
    cat "$f" >&2
    return 1
  fi
  # Timeouts and socket errors also come from other load on the machine (a
  # server descheduled for 2 s): count them in the report, go on.
  local e
  e="$(grep -E '^ *Socket errors:' "$f" || true)"
  if [[ "$t" == *-h2 ]] && ! grep -qE ' 0 failed, 0 errored, 0 timeout' "$f"; then
    e="$(grep -E '^requests:' "$f")"
  fi
  if [ -n "$e" ]; then
    echo "$(basename "$f" .txt):$(echo "$e" | sed 's/^ *//; s/^Socket errors//; s/^requests//')" >>"$OUT/errors.txt"
    echo "warning: $t -c$c: $e" >&2
  fi
}

# parse FILE prints "req/s p50_ms p99_ms p99.9_ms cpu_us_per_request" from
# wrk's --latency output (or h2load's output and per-request log) and
# run_load's CPU line.
parse() {
  local pct=""
  if [ -f "$1.log" ]; then
    # h2load reports no percentiles: take them from its log (start µs,
    # status, duration µs per request).
    pct="$(cut -f3 "$1.log" | sort -n | awk '{ v[NR] = $1 } END {
      printf "%f %f %f", v[int(NR*0.50)+1]/1000, v[int(NR*0.99)+1]/1000, v[int(NR*0.999)+1]/1000 }')"
  fi
  awk -v pct="$pct" '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v)-2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v)-2) + 0
      if (v ~ /s$/) return substr(v, 1, length(v)-1) * 1000
      return v + 0
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $1 == "p999_us" { p999 = $2 / 1000 }
    $1 == "Requests/sec:" { rps = $2 }
    $2 == "requests" && $3 == "in" { n = $1 }
    $1 == "finished" && $2 == "in" { rps = $4 + 0 }
    $1 == "requests:" { n = $8 + 0 } # h2load: N total, N started, N done, N succeeded
    $1 == "cpu_ticks" { cpu = $2 * 1e6 / $3 }
    END {
      if (pct != "") split(pct, p, " ")
      if (pct != "") { p50 = p[1]; p99 = p[2]; p999 = p[3] }
      printf "%s %.3f %.3f %.3f %.1f\n", rps, p50, p99, p999, (n > 0 ? cpu / n : 0)
    }' "$1"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2 }'; }

echo "warming up" >&2
for m in $MODES; do
  for t in ${MODE_TARGETS[$m]}; do
    c="${MODE_CONNS[$m]%% *}"
    run_load "$t" "$c" "$WARMUP" "$OUT/warmup-$t.txt"
  done
done

for r in $(seq 1 "$ROUNDS"); do
  for m in $MODES; do
    for c in ${MODE_CONNS[$m]}; do
      for t in ${MODE_TARGETS[$m]}; do
        f="$OUT/r$r-c$c-$t.txt"
        run_load "$t" "$c" "$DURATION" "$f"
        echo "round $r $m -c$c $t: $(parse "$f")" >&2
      done
    done
  done
done

# The TLS version, cipher suite and key exchange h2load saw.
tls_params() {
  awk '/^TLS Protocol:|^Cipher:|^Server Temp Key:/ { sub(/^[^:]*: /, ""); printf "%s%s", sep, $0; sep = ", " }' "$1"
}

if [ -n "${PROFILE_DIR:-}${CPUPROFILE:-}" ]; then
  for t in "${plat_targets[@]}"; do
    [ -n "$(profile_args "$t")" ] || continue
    kill -TERM "${pid[$t]}"
    wait "${pid[$t]}" || true
  done
  if [ -n "${PROFILE_DIR:-}" ]; then
    cp "$work/bin/routerbench" "$PROFILE_DIR/routerbench"
    if [ -n "${BASELINE_REV:-}" ]; then cp "$work/bin/routerbench-base" "$PROFILE_DIR/routerbench-base"; fi
    for t in "${plat_targets[@]}"; do
      bin="$PROFILE_DIR/routerbench"
      [ "$t" = plat-base ] && bin="$PROFILE_DIR/routerbench-base"
      echo
      echo "## CPU profile of $t: go tool pprof -top -cum -nodecount=$PPROF_NODES $bin $PROFILE_DIR/$t.pprof"
      echo
      go tool pprof -top -cum -nodecount="$PPROF_NODES" "$bin" "$PROFILE_DIR/$t.pprof" 2>/dev/null | sed 's/^/    /'
    done
    echo
    echo "Flame graph: go tool pprof -http=127.0.0.1:8000 $PROFILE_DIR/routerbench $PROFILE_DIR/<target>.pprof (View → Flame Graph);"
    echo "SVG call graph: go tool pprof -svg -output=<target>.svg $PROFILE_DIR/routerbench $PROFILE_DIR/<target>.pprof"
  else
    cp "$work/bin/routerbench" "$CPUPROFILE.bin"
    echo "CPU profile: go tool pprof -top $CPUPROFILE.bin $CPUPROFILE" >&2
  fi
fi

feat_summary=""
echo
echo "$ROUNDS rounds interleaved, $DURATION each, medians; $(nproc) CPUs, loopback; load average before the tables: $(cut -d' ' -f1-3 /proc/loadavg)"
for m in $MODES; do
  targets=(${MODE_TARGETS[$m]})
  ref="${targets[0]}"
  echo
  case "$m" in
    http) echo "HTTP/1.1 keep-alive, wrk -t$THREADS --latency; × and p99 added against direct" ;;
    https) echo "HTTPS keep-alive (TLS 1.3, ECDSA P-256), wrk -t$THREADS --latency; × and p99 added against nginx-tls" ;;
    handshake) echo "A new TLS 1.3 connection per request (wrk -H 'Connection: close'), full handshakes (no session tickets): req/s = handshakes/s, CPU per handshake and its request; × against nginx-hs" ;;
    resume) echo "A new TLS 1.3 connection per request, resumed with the server's session ticket (PSK + X25519): req/s = handshakes/s, CPU per handshake and its request; × against nginx-resume" ;;
    h2) echo "HTTP/2 over TLS, h2load -t$THREADS -c$H2_CONNS -m$H2_STREAMS (conns × streams each); percentiles from h2load's per-request log; × against nginx-h2" ;;
  esac
  echo
  echo "| conns | target | req/s | p50 ms | p99 ms | p99.9 ms | × $ref | p99 added ms | server CPU µs/req |"
  echo "|------:|--------|------:|-------:|-------:|---------:|------:|-------------:|------------------:|"
  for c in ${MODE_CONNS[$m]}; do
    declare -A rps=() p50=() p99=() p999=() cpu=()
    for t in "${targets[@]}"; do
      for f in "$OUT"/r*-c"$c"-"$t".txt; do parse "$f"; done >"$work/parsed-$c-$t"
      rps[$t]="$(cut -d' ' -f1 "$work/parsed-$c-$t" | median)"
      p50[$t]="$(cut -d' ' -f2 "$work/parsed-$c-$t" | median)"
      p99[$t]="$(cut -d' ' -f3 "$work/parsed-$c-$t" | median)"
      p999[$t]="$(cut -d' ' -f4 "$work/parsed-$c-$t" | median)"
      cpu[$t]="$(cut -d' ' -f5 "$work/parsed-$c-$t" | median)"
    done
    for t in "${targets[@]}"; do
      awk -v c="$c" -v t="$t" -v ref="$ref" -v rps="${rps[$t]}" -v p50="${p50[$t]}" -v p99="${p99[$t]}" \
        -v p999="${p999[$t]}" -v cpu="${cpu[$t]}" -v rrps="${rps[$ref]}" -v rp99="${p99[$ref]}" 'BEGIN {
        ratio = (t == ref) ? "1.00" : sprintf("%.2f", rps / rrps)
        added = (t == ref) ? "–" : sprintf("%+.2f", p99 - rp99)
        printf "| %s | %s | %.0f | %.2f | %.2f | %.2f | %s | %s | %.0f |\n", c, t, rps, p50, p99, p999, ratio, added, cpu
      }'
    done
    if [ "$m" = http ] && [ "$FEATURES" = 1 ]; then
      feat_summary+="$(awk -v c="$c" -v first="${CONNS%% *}" -v fr="${rps[plat-features]}" -v pr="${rps[plat]}" -v fc="${cpu[plat-features]}" -v pc="${cpu[plat]}" \
        'BEGIN { printf "%s-c%s: plat-features %.2f× plat'"'"'s req/s, CPU/req %+.0f%%", (c == first ? "" : "; "), c, fr / pr, (fc / pc - 1) * 100 }')"
    fi
  done
  if [ "$m" = http ] && [ "$FEATURES" = 1 ]; then
    cookies="no cookies: each request draws a bucket and a user id and gets two Set-Cookies"
    [ "$FEATURES_COOKIES" = 1 ] && cookies="clients send plat_bucket and plat_uid"
    echo
    echo "Features on (canary split at $CANARY_WEIGHT% to a second backend, request log read into a log hub, flag $FEATURE_FLAG; $cookies): ${feat_summary:-}"
  fi
  if [ "$m" = h2 ]; then
    echo
    echo "TLS negotiated: nginx-h2 $(tls_params "$OUT/r1-c${MODE_CONNS[h2]}-nginx-h2.txt"); plat-h2 $(tls_params "$OUT/r1-c${MODE_CONNS[h2]}-plat-h2.txt")"
  fi
done
if [ -s "$OUT/errors.txt" ]; then
  echo
  echo "Socket errors (wrk) and failed requests (h2load), counted, not fatal (round-conns-target: counts):"
  echo
  sed 's/^/    /' "$OUT/errors.txt"
fi
echo
echo "raw output: $OUT" >&2
