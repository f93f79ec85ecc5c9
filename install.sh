#!/usr/bin/env bash
# install.sh: install and start plat on a Debian/Ubuntu host.
#   sudo ./install.sh
# Installs the Docker Engine and git when missing, gets the Go toolchain that
# go.mod asks for when the host has none (or too old a one; see
# scripts/gotoolchain.sh), builds plat from this checkout, starts dockerd and
# the plat daemon (systemd units when systemd runs, background processes with
# log files otherwise), and prints an API token. Safe to run again: it
# rebuilds and upgrades the running daemon in place (`plat daemon upgrade`:
# same listening sockets, no request dropped; a restart only when the
# daemon's settings changed or it predates upgrades), and prints a new
# token. Settings (environment):
#   PLAT_DATA       data directory            (/var/lib/plat)
#   PLAT_API_ADDR   control API and git       (:8700)
#   PLAT_HTTP_ADDR  app router                (:80)
#   PLAT_HTTPS_ADDR app router over HTTPS, and the API at plat.<domain> (:443; empty: no HTTPS)
#   PLAT_SSH_ADDR   git push over SSH         (:2222; empty: no SSH)
#   PLAT_DOMAIN     apps at <app>.<domain>    (localhost)
#   PLAT_APP_SUBNETS IPv4 range each app's network takes a /26 from (10.213.0.0/16: 1024 apps)
#   PLAT_BIN_DIR    where plat is installed   (/usr/local/bin)
#   PLAT_LOG_DIR    logs without systemd      (/var/log/plat)
#   PLAT_GO_DIR     plat's own Go toolchain   (/usr/local/lib/plat/toolchain)
#   PLAT_CLI_DIR    CLI builds /install-cli serves (/usr/local/lib/plat/cli)
#   GOPROXY         where that toolchain comes from (default: Go's own module proxy)
#   PLAT_ORCHESTRATOR docker (this host's engine) or swarm (docs/swarm.md)   (docker)
# With PLAT_ORCHESTRATOR=swarm, on the manager: `docker swarm init` when the
# engine is in no swarm, a registry for app images (Debian's docker-registry)
# at PLAT_REGISTRY (this node's swarm address, port 5000), plain HTTP, so
# that address is added to the engine's insecure-registries (and must be on
# every worker's: see docs/swarm.md), and the daemon in swarm mode.
#   PLAT_SWARM_ADVERTISE_ADDR  address for `docker swarm init` (Docker's choice)
#   PLAT_REGISTRY              host:port of the registry (<node address>:5000)
#   PLAT_REGISTRY_DATA         the registry's storage (/var/lib/plat-registry)
#   PLAT_REGISTRY_CONFIG       the registry's configuration (/etc/plat/registry.yml)
set -euo pipefail

PLAT_DATA="${PLAT_DATA:-/var/lib/plat}"
PLAT_API_ADDR="${PLAT_API_ADDR:-:8700}"
PLAT_HTTP_ADDR="${PLAT_HTTP_ADDR:-:80}"
PLAT_HTTPS_ADDR="${PLAT_HTTPS_ADDR-:443}"
PLAT_SSH_ADDR="${PLAT_SSH_ADDR-:2222}"
PLAT_DOMAIN="${PLAT_DOMAIN:-localhost}"
PLAT_APP_SUBNETS="${PLAT_APP_SUBNETS:-10.213.0.0/16}"
PLAT_BIN_DIR="${PLAT_BIN_DIR:-/usr/local/bin}"
PLAT_LOG_DIR="${PLAT_LOG_DIR:-/var/log/plat}"
PLAT_ORCHESTRATOR="${PLAT_ORCHESTRATOR:-docker}"
PLAT_REGISTRY_DATA="${PLAT_REGISTRY_DATA:-/var/lib/plat-registry}"
PLAT_REGISTRY_CONFIG="${PLAT_REGISTRY_CONFIG:-/etc/plat/registry.yml}"
SRC="$(cd "$(dirname "$0")" && pwd)"
PLAT="$PLAT_BIN_DIR/plat"

say() { printf -- '-----> %s\n' "$*"; }
die() { printf ' !     %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo ./install.sh): plat manages the Docker Engine"

need=()
command -v git >/dev/null || need+=(git)
command -v dockerd >/dev/null || need+=(docker.io)
command -v curl >/dev/null || need+=(curl ca-certificates)
command -v unzip >/dev/null || need+=(unzip)
case "$PLAT_ORCHESTRATOR" in
  docker) ;;
  swarm) command -v docker-registry >/dev/null || need+=(docker-registry) ;;
  *) echo " !     PLAT_ORCHESTRATOR must be docker or swarm, not $PLAT_ORCHESTRATOR" >&2; exit 1 ;;
esac
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "please install ${need[*]} with your package manager, then run ./install.sh again"
  say "Installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

has_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

mkdir -p "$PLAT_LOG_DIR"
if ! docker info >/dev/null 2>&1; then
  say "Starting the Docker Engine"
  if has_systemd; then
    systemctl enable --now docker
  else
    (dockerd >>"$PLAT_LOG_DIR/dockerd.log" 2>&1 &)
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || die "the Docker Engine did not start; see $PLAT_LOG_DIR/dockerd.log"
fi

# --- Swarm mode: the swarm, the registry, the engine's trust in it. ----------
swarm_args=()
if [ "$PLAT_ORCHESTRATOR" = swarm ]; then
  if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = inactive ]; then
    say "Making this host a swarm manager (docker swarm init)"
    docker swarm init ${PLAT_SWARM_ADVERTISE_ADDR:+--advertise-addr "$PLAT_SWARM_ADVERTISE_ADDR"} >/dev/null ||
      die "docker swarm init failed (above); on a host with several addresses, set PLAT_SWARM_ADVERTISE_ADDR to the one the other nodes reach"
  fi
  [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ] ||
    die "this host's engine is in a swarm but not a manager: run install.sh on a manager"
  node_addr="$(docker info --format '{{.Swarm.NodeAddr}}')"
  PLAT_REGISTRY="${PLAT_REGISTRY:-$node_addr:5000}"
  mkdir -p "$(dirname "$PLAT_REGISTRY_CONFIG")" "$PLAT_REGISTRY_DATA"
  cat >"$PLAT_REGISTRY_CONFIG" <<REG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $PLAT_REGISTRY_DATA
  delete:
    enabled: true
http:
  addr: $PLAT_REGISTRY
REG
  if has_systemd; then
    printf '%s\n' "[Unit]
Description=registry for plat's app images
After=network.target

[Service]
ExecStart=$(command -v docker-registry) serve $PLAT_REGISTRY_CONFIG
Restart=always

[Install]
WantedBy=multi-user.target" >/etc/systemd/system/plat-registry.service
    systemctl daemon-reload
    systemctl enable plat-registry >/dev/null
    systemctl restart plat-registry
  else
    regpid=/run/plat-registry.pid
    if [ -f "$regpid" ] && kill -0 "$(cat "$regpid")" 2>/dev/null; then
      kill "$(cat "$regpid")"
      # The new one binds the same port: wait for the old one to go.
      for _ in $(seq 1 40); do kill -0 "$(cat "$regpid")" 2>/dev/null || break; sleep 0.25; done
    fi
    nohup docker-registry serve "$PLAT_REGISTRY_CONFIG" >>"$PLAT_LOG_DIR/registry.log" 2>&1 &
    echo $! >"$regpid"
  fi
  for _ in $(seq 1 40); do curl -fs -o /dev/null "http://$PLAT_REGISTRY/v2/" && break; sleep 0.25; done
  curl -fs -o /dev/null "http://$PLAT_REGISTRY/v2/" ||
    die "the registry does not answer at $PLAT_REGISTRY; see $PLAT_LOG_DIR/registry.log (or journalctl -u plat-registry)"
  say "Registry for app images at $PLAT_REGISTRY (storage $PLAT_REGISTRY_DATA)"
  # Docker pulls over plain HTTP only from loopback and insecure-registries;
  # the engine reloads that list on SIGHUP, without restarting containers.
  case "$PLAT_REGISTRY" in
    127.*|localhost:*) ;;
    *)
      if ! docker info --format '{{range .RegistryConfig.IndexConfigs}}{{.Name}} {{end}}' | grep -qw "$PLAT_REGISTRY"; then
        if [ -s /etc/docker/daemon.json ] && ! grep -q '"insecure-registries"' /etc/docker/daemon.json; then
          die "add \"insecure-registries\": [\"$PLAT_REGISTRY\"] to /etc/docker/daemon.json, then run install.sh again"
        elif [ -s /etc/docker/daemon.json ]; then
          die "add \"$PLAT_REGISTRY\" to the insecure-registries of /etc/docker/daemon.json, then run install.sh again"
        fi
        mkdir -p /etc/docker
        printf '{"insecure-registries": ["%s"]}\n' "$PLAT_REGISTRY" >/etc/docker/daemon.json
        [ -s /var/run/docker.pid ] ||
          die "wrote /etc/docker/daemon.json but found no /var/run/docker.pid to reload dockerd with: reload or restart the Docker Engine, then run install.sh again"
        kill -HUP "$(cat /var/run/docker.pid)"
        for _ in $(seq 1 20); do
          docker info --format '{{range .RegistryConfig.IndexConfigs}}{{.Name}} {{end}}' | grep -qw "$PLAT_REGISTRY" && break
          sleep 0.25
        done
        docker info --format '{{range .RegistryConfig.IndexConfigs}}{{.Name}} {{end}}' | grep -qw "$PLAT_REGISTRY" ||
          die "the Docker Engine did not take $PLAT_REGISTRY as an insecure registry from /etc/docker/daemon.json (see its log)"
      fi
      ;;
  esac
  swarm_args=(--orchestrator swarm --registry "$PLAT_REGISTRY")
fi
# ------------------------------------------------------------------------------

# shellcheck source=scripts/gotoolchain.sh
. "$SRC/scripts/gotoolchain.sh"
plat_go_ensure "$SRC" || die "no Go toolchain to build plat with (see above)"

say "Building plat with $("$PLAT_GO" env GOVERSION)"
(cd "$SRC" && CGO_ENABLED=0 "$PLAT_GO" build -trimpath -o "$PLAT.new" ./cmd/plat)
mv -f "$PLAT.new" "$PLAT"

# --- The CLI for laptops: GET /install-cli serves these builds. ---------------
# One go build per target, skipped when the target was built from the same
# source with the same Go (a hash of both) and still matches its checksum.
PLAT_CLI_DIR="${PLAT_CLI_DIR:-/usr/local/lib/plat/cli}"
mkdir -p "$PLAT_CLI_DIR"
cli_source="$( { "$PLAT_GO" env GOVERSION; cd "$SRC" && find . -path ./.git -prune -o -type f \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum -o -path '*/assets/*' \) -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-64)"
cli_built=()
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64; do
  name="plat-${target%/*}-${target#*/}"
  if [ "$(cat "$PLAT_CLI_DIR/$name.source" 2>/dev/null)" = "$cli_source" ] &&
    (cd "$PLAT_CLI_DIR" && sha256sum -c --status "$name.sha256" 2>/dev/null); then
    continue
  fi
  say "Building the plat CLI for $target"
  (cd "$SRC" && CGO_ENABLED=0 GOOS="${target%/*}" GOARCH="${target#*/}" "$PLAT_GO" build -trimpath -ldflags "-s -w" -o "$PLAT_CLI_DIR/$name.new" ./cmd/plat-cli)
  (cd "$PLAT_CLI_DIR" && sha256sum "$name.new" | sed 's/\.new$//' >"$name.sha256.new")
  mv -f "$PLAT_CLI_DIR/$name.new" "$PLAT_CLI_DIR/$name"
  mv -f "$PLAT_CLI_DIR/$name.sha256.new" "$PLAT_CLI_DIR/$name.sha256"
  printf '%s\n' "$cli_source" >"$PLAT_CLI_DIR/$name.source"
  cli_built+=("$target")
done
[ ${#cli_built[@]} -gt 0 ] || say "The plat CLI builds in $PLAT_CLI_DIR are up to date"
# ------------------------------------------------------------------------------

args=(daemon --data "$PLAT_DATA" --api "$PLAT_API_ADDR" --http "$PLAT_HTTP_ADDR" "--https=$PLAT_HTTPS_ADDR" "--ssh=$PLAT_SSH_ADDR" --domain "$PLAT_DOMAIN" --app-subnets "$PLAT_APP_SUBNETS")
args+=(--cli-dir "$PLAT_CLI_DIR")
args+=("${swarm_args[@]}")
pidfile="$PLAT_DATA/daemon.pid"
mkdir -p "$PLAT_DATA" && chmod 700 "$PLAT_DATA"
# An upgrade in place keeps the running daemon's flags: when they changed,
# it restarts instead.
argsfile="$PLAT_DATA/daemon.args"
same_args() { [ -f "$argsfile" ] && [ "$(cat "$argsfile")" = "${args[*]}" ]; }
upgrade() {
  say "Upgrading the running plat daemon in place (same sockets: no request dropped)"
  "$PLAT" daemon upgrade --data "$PLAT_DATA"
}
if has_systemd; then
  say "Installing the plat systemd unit"
  # KillMode=mixed: a stop signals the supervisor, which stops its worker
  # gracefully; ExecReload upgrades in place (the PID never changes).
  unit="[Unit]
Description=plat daemon
After=docker.service
Requires=docker.service

[Service]
ExecStart=$PLAT ${args[*]}
ExecReload=/bin/kill -HUP \$MAINPID
KillMode=mixed
TimeoutStopSec=45
Restart=always

[Install]
WantedBy=multi-user.target"
  old_unit="$(cat /etc/systemd/system/plat.service 2>/dev/null || true)"
  printf '%s\n' "$unit" >/etc/systemd/system/plat.service
  systemctl daemon-reload
  systemctl enable plat >/dev/null
  if [ "$old_unit" = "$unit" ] && systemctl is-active --quiet plat && upgrade; then
    :
  else
    systemctl restart plat
  fi
else
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && same_args && upgrade; then
    :
  else
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      say "Stopping the running plat daemon"
      kill "$(cat "$pidfile")"
      for _ in $(seq 1 180); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.25; done
    fi
    say "Starting the plat daemon (log: $PLAT_LOG_DIR/daemon.log)"
    nohup "$PLAT" "${args[@]}" >>"$PLAT_LOG_DIR/daemon.log" 2>&1 &
    echo $! >"$pidfile"
  fi
fi
printf '%s\n' "${args[*]}" >"$argsfile"

for _ in $(seq 1 60); do
  # Token names are unique: each run's token is named after its time.
  token="$("$PLAT" daemon token --data "$PLAT_DATA" --name "install-$(date -u +%Y%m%dT%H%M%S)" 2>/dev/null)" && break
  sleep 0.5
done
[ -n "${token:-}" ] || die "the plat daemon did not come up; see $PLAT_LOG_DIR/daemon.log (or journalctl -u plat)"

port="${PLAT_API_ADDR##*:}"
ssh_line="off (PLAT_SSH_ADDR is empty)"
if [ -n "$PLAT_SSH_ADDR" ]; then
  ssh_line="port ${PLAT_SSH_ADDR##*:}, host key $("$PLAT" daemon ssh-host-key --data "$PLAT_DATA" 2>/dev/null || echo "unknown (see the daemon's log)")"
fi
cat <<DONE

=====> plat is running.
       API and git:  http://$(hostname -f 2>/dev/null || hostname):$port   (this host: http://127.0.0.1:$port)
       apps:         http://<app>.$PLAT_DOMAIN${PLAT_HTTP_ADDR/#*:80/}/
                     https://<app>.$PLAT_DOMAIN${PLAT_HTTPS_ADDR/#*:443/}/ (local CA for local names: plat ca)
       git over SSH: $ssh_line
       API token (shown once, stored hashed):

       $token

       Next: plat login http://127.0.0.1:$port --token $token
       The CLI on a laptop: curl -fsSL http://$(hostname -f 2>/dev/null || hostname):$port/install-cli | sh
DONE
if [ "$PLAT_ORCHESTRATOR" = swarm ]; then
  cat <<SWARM
       Swarm mode: apps run as services; images go through $PLAT_REGISTRY.
       To add a host: on it, put {"insecure-registries": ["$PLAT_REGISTRY"]} in /etc/docker/daemon.json
       (then: kill -HUP the dockerd) and run:  $(docker swarm join-token worker 2>/dev/null | grep -o 'docker swarm join.*')
       plat nodes shows the nodes and the apps' tasks on each.
SWARM
fi
