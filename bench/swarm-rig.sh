#!/usr/bin/env bash
# bench/swarm-rig.sh: plat's swarm mode on three "hosts" (not CI: heavy).
#
# Makes three network namespaces joined by a bridge in a fourth (the host's
# own namespace and firewall stay out of it), runs a Docker Engine in each
# (own data/exec root, socket, hostname; containerd of its own), joins them
# into one swarm with node 1 as manager, a registry on node 1, and a plat
# daemon in swarm mode on node 1 (a plain-mode daemon on node 2 for
# comparison). Then it measures, printing one RESULT line each:
#   - push → serving, swarm vs plain (the registry push is the new cost),
#     and rollback time in swarm mode;
#   - three replicas spread over the nodes (plat nodes), their logs (plat logs);
#   - failover: node 3's engine stops while clients keep asking; failed
#     requests, time until the node is Down, until plat serves from a
#     replacement task; then node 2 vanishes from the network (its link
#     cut: a host crash, connections time out instead of being refused);
#   - router throughput (wrk) to a task on another node vs to a local
#     container of the plain daemon, and directly to each.
# Traffic stays between the namespaces' addresses (10.250.0.0/24).
# Needs root, dockerd, docker-registry, wrk, git, go. Cleans up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="$(pwd)"
RIG="${RIG_DIR:-/tmp/plat-swarm-rig}"
NET=10.250.0
NS=plsw
LOAD_FOR="${LOAD_FOR:-60s}"
export PATH="/usr/local/go/bin:$PATH"

say() { printf '== %s\n' "$*"; }
result() { printf 'RESULT %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2fs", b - a }'; }

cleanup() {
  set +e
  for f in "$RIG/plat1.pid" "$RIG/plat2.pid" "$RIG/registry.pid"; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  done
  for i in 1 2 3; do
    sock="unix://$RIG/n$i/docker.sock"
    if [ -S "$RIG/n$i/docker.sock" ]; then
      ids="$(docker -H "$sock" service ls -q 2>/dev/null)"
      [ -n "$ids" ] && docker -H "$sock" service rm $ids >/dev/null 2>&1
      docker -H "$sock" swarm leave --force >/dev/null 2>&1
    fi
  done
  for i in 1 2 3; do
    if [ -f "$RIG/n$i/dockerd.pid" ]; then
      pid="$(cat "$RIG/n$i/dockerd.pid")"
      kill "$pid" 2>/dev/null
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null
    fi
  done
  for i in 1 2 3; do ip netns del "$NS-n$i" 2>/dev/null; done
  ip netns del "$NS-sw" 2>/dev/null
  grep " $RIG/" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$RIG"
}
trap cleanup EXIT

for tool in dockerd docker docker-registry wrk git go ip nsenter unshare; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
cleanup 2>/dev/null
mkdir -p "$RIG/bin"

say "building plat, the test app and the load generator"
go build -o "$RIG/bin/plat" ./cmd/plat
CGO_ENABLED=0 go build -o "$RIG/bin/testapp" ./internal/testapp
go build -o "$RIG/bin/swarmload" ./bench/cmd/swarmload
PLAT="$RIG/bin/plat"

in_ns() { local n="$1"; shift; nsenter --net="/run/netns/$NS-n$n" "$@"; }
dk() { local n="$1"; shift; docker -H "unix://$RIG/n$n/docker.sock" "$@"; }

say "three hosts: network namespaces $NS-n1..3 on a bridge in $NS-sw"
ip netns add "$NS-sw"
ip -n "$NS-sw" link add br0 type bridge
ip -n "$NS-sw" link set br0 up
for i in 1 2 3; do
  ip netns add "$NS-n$i"
  ip link add "$NS-n$i-e" type veth peer name "$NS-n$i-s"
  ip link set "$NS-n$i-e" netns "$NS-n$i"
  ip link set "$NS-n$i-s" netns "$NS-sw"
  ip -n "$NS-sw" link set "$NS-n$i-s" master br0 up
  ip -n "$NS-n$i" addr add "$NET.$i/24" dev "$NS-n$i-e"
  ip -n "$NS-n$i" link set "$NS-n$i-e" up
  ip -n "$NS-n$i" link set lo up
done

start_engine() {
  local i="$1" d="$RIG/n$1"
  mkdir -p "$d"
  # nsenter (not ip netns exec) keeps the host's /sys and its cgroups;
  # unshare --uts gives each node its own hostname.
  nsenter --net="/run/netns/$NS-n$i" unshare --uts sh -c "hostname rig-n$i; exec dockerd \
    --data-root $d/data --exec-root $d/exec --pidfile $d/docker.pid -H unix://$d/docker.sock \
    --insecure-registry $NET.1:5000 --containerd-namespace rig-n$i --containerd-plugins-namespace rig-n$i-plugins" \
    >"$d/dockerd.log" 2>&1 &
  echo $! >"$d/dockerd.pid"
}
t0="$(now)"
for i in 1 2 3; do start_engine "$i"; done
for i in 1 2 3; do
  for _ in $(seq 1 120); do dk "$i" version >/dev/null 2>&1 && break; sleep 0.25; done
  dk "$i" version >/dev/null || { tail -20 "$RIG/n$i/dockerd.log"; exit 1; }
done
dk 1 swarm init --advertise-addr "$NET.1" >/dev/null
token="$(dk 1 swarm join-token -q worker)"
for i in 2 3; do dk "$i" swarm join --advertise-addr "$NET.$i" --token "$token" "$NET.1:2377" >/dev/null; done
say "swarm of 3 up in $(since "$t0")"
dk 1 node ls

cat >"$RIG/registry.yml" <<REG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $RIG/registry
http:
  addr: $NET.1:5000
REG
# nsenter and env exec (no fork): $! is the server itself, for cleanup.
nsenter --net="/run/netns/$NS-n1" docker-registry serve "$RIG/registry.yml" >"$RIG/registry.log" 2>&1 &
echo $! >"$RIG/registry.pid"

start_plat() { # node, orchestrator, instance
  local i="$1" data="$RIG/plat$1"
  mkdir -p "$data"
  nsenter --net="/run/netns/$NS-n$i" env DOCKER_HOST="unix://$RIG/n$i/docker.sock" "$PLAT" daemon --data "$data" \
    --api "$NET.$i:8700" --http "$NET.$i:8080" --https "" --ssh "" --instance "$3" \
    --orchestrator "$2" --registry "$NET.1:5000" >"$RIG/plat$i.log" 2>&1 &
  echo $! >"$RIG/plat$i.pid"
  for _ in $(seq 1 120); do grep -q 'plat daemon ready' "$RIG/plat$i.log" && break; sleep 0.25; done
  grep -q 'plat daemon ready' "$RIG/plat$i.log" || { cat "$RIG/plat$i.log"; exit 1; }
  "$PLAT" daemon token --data "$data" >"$RIG/token$i"
}
start_plat 1 swarm rig
start_plat 2 docker rigplain

# p N ARGS: the CLI against daemon N, from inside node N.
p() { local i="$1"; shift; in_ns "$i" env HOME="$RIG/home$i" PLAT_URL="http://$NET.$i:8700" PLAT_TOKEN="$(cat "$RIG/token$i")" "$PLAT" "$@"; }
mkrepo() { # node app
  local i="$1" app="$2" dir="$RIG/repo-$1-$2"
  mkdir -p "$dir" "$RIG/home$i"
  cp "$RIG/bin/testapp" "$dir/app"
  printf 'FROM scratch\nCOPY app /app\nCOPY version /version\nCMD ["/app"]\n' >"$dir/Dockerfile"
  echo v0 >"$dir/version"
  p "$i" apps:create "$app" >/dev/null
  p "$i" health:set "$app" --interval 100ms >/dev/null
  (cd "$dir" && git init -q -b main && git add -A && git -c user.name=rig -c user.email=rig@plat.invalid commit -qm v0 &&
    in_ns "$i" env HOME="$RIG/home$i" PLAT_URL="http://$NET.$i:8700" PLAT_TOKEN="$(cat "$RIG/token$i")" "$PLAT" git:remote "$app" >/dev/null)
}
push() { # node app version: sets TOOK to the push's wall time
  local i="$1" app="$2" dir="$RIG/repo-$1-$2"
  echo "$3" >"$dir/version"
  (cd "$dir" && git add -A && git -c user.name=rig -c user.email=rig@plat.invalid commit -qm "$3")
  local s; s="$(now)"
  if ! (cd "$dir" && in_ns "$i" env HOME="$RIG/home$i" PLAT_URL="http://$NET.$i:8700" PLAT_TOKEN="$(cat "$RIG/token$i")" \
    GIT_TERMINAL_PROMPT=0 git push -q platform main >"$RIG/push.log" 2>&1); then
    cat "$RIG/push.log"
    exit 1
  fi
  TOOK="$(since "$s")"
}
serves() { # node app want
  in_ns "$1" curl -fsS -m 5 -H "Host: $2.localhost" "http://$NET.$1:8080/" | grep -q "$3"
}

say "push → serving: the same app on the swarm daemon (node 1) and the plain daemon (node 2)"
mkrepo 1 rig
mkrepo 2 rig
swarm_times=() plain_times=()
for v in 1 2 3 4; do
  push 1 rig "v$v"
  swarm_times+=("$TOOK")
  serves 1 rig "version=v$v" || { echo "swarm daemon does not serve v$v" >&2; exit 1; }
  push 2 rig "v$v"
  plain_times+=("$TOOK")
  serves 2 rig "version=v$v" || { echo "plain daemon does not serve v$v" >&2; exit 1; }
done
result "push→serving swarm (first = cold registry): ${swarm_times[*]}"
result "push→serving plain: ${plain_times[*]}"
grep 'deploy timings' "$RIG/plat1.log" | tail -1 | sed 's/^/   swarm /'
grep 'deploy timings' "$RIG/plat2.log" | tail -1 | sed 's/^/   plain /'
rb_swarm=() rb_plain=()
for _ in 1 2; do
  s="$(now)"; p 1 rollback rig >/dev/null; rb_swarm+=("$(since "$s")")
  s="$(now)"; p 2 rollback rig >/dev/null; rb_plain+=("$(since "$s")")
done
result "rollback swarm: ${rb_swarm[*]}; plain: ${rb_plain[*]}"

say "router throughput: wrk -t1 -c32 -d5s, one replica"
task_addr="$(p 1 ps rig --json | grep -o '"addr": *"[^"]*"' | head -1 | cut -d'"' -f4)"
plain_addr="$(p 2 ps rig --json | grep -o '"addr": *"[^"]*"' | head -1 | cut -d'"' -f4)"
wrk_rps() { in_ns "$1" wrk -t1 -c32 -d5s -H "Host: $2" "$3" | awk '/Requests\/sec/ {print $2}'; }
result "throughput via the swarm router to a task at $task_addr: $(wrk_rps 1 rig.localhost "http://$NET.1:8080/") req/s"
result "throughput direct to that task: $(wrk_rps 1 x "http://$task_addr/") req/s"
result "throughput via the plain router to a local container: $(wrk_rps 2 rig.localhost "http://$NET.2:8080/") req/s"
result "throughput direct to that container ($plain_addr, from node 2): $(wrk_rps 2 x "http://$plain_addr/") req/s"

say "three replicas on the swarm"
p 1 scale rig web=3 >/dev/null
p 1 nodes
victim=3
if ! p 1 nodes --json | tr -d ' \n' | grep -q "\"addr\":\"$NET.3:[0-9]*\""; then
  victim=2
fi
for n in $(seq 1 30); do in_ns 1 curl -fsS -o /dev/null -H "Host: rig.localhost" "http://$NET.1:8080/?print=rig-line-$n"; done
sleep 1
result "plat logs: lines of $(p 1 logs rig | grep -o 'web\.[0-9] | rig-line' | sort -u | cut -d' ' -f1 | tr '\n' ' ')(one replica per node: logs come from every node)"
result "tasks per node: $(p 1 nodes --json | tr -d ' \n' | grep -o '"hostname":"[^"]*"\|"replica":"[^"]*"' | tr '\n' ' ')"

# failover VICTIM HOW: HOW stops the node; measures under load.
failover() {
  local victim="$1" how="$2"
  say "failover: node $victim $how under load ($LOAD_FOR of 8 keep-alive clients)"
  nsenter --net="/run/netns/$NS-n1" "$RIG/bin/swarmload" -target "$NET.1:8080" -host rig.localhost -for "$LOAD_FOR" -c 8 >"$RIG/load.out" 2>&1 &
  local loadpid=$! down="" replaced="" addrs t_kill
  sleep 5
  t_kill="$(now)"
  case "$how" in
    "engine stops") kill "$(cat "$RIG/n$victim/dockerd.pid")" ;;
    "is cut off") ip -n "$NS-sw" link set "$NS-n$victim-s" down ;;
  esac
  for _ in $(seq 1 600); do
    if [ -z "$down" ] && dk 1 node ls --format '{{.Hostname}} {{.Status}}' | grep -q "rig-n$victim Down"; then
      down="$(since "$t_kill")"
    fi
    if [ -z "$replaced" ]; then
      addrs="$(p 1 ps rig --json | grep -o '"addr": *"[^"]*"' | cut -d'"' -f4)"
      if [ "$(echo "$addrs" | grep -c .)" -eq 3 ] && ! echo "$addrs" | grep -q "^$NET.$victim:"; then
        replaced="$(since "$t_kill")"
      fi
    fi
    [ -n "$down" ] && [ -n "$replaced" ] && break
    sleep 0.1
  done
  wait "$loadpid" || true
  result "node $victim $how: Down after ${down:-never}; plat serving 3 replicas again, none on node $victim, after ${replaced:-never}"
  result "load across the loss of node $victim: $(head -1 "$RIG/load.out")"
  sed -n '2,$p' "$RIG/load.out"
  p 1 nodes
}
failover "$victim" "engine stops"
other=2
[ "$victim" = 2 ] && other=3
failover "$other" "is cut off"
grep -E 'crashed|restarted|recreated|restore-failed|router: backend' "$RIG/plat1.log" | sed 's/^/   /' | tail -12
