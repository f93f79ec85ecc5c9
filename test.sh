#!/usr/bin/env bash
# test.sh: run plat's whole test suite, the same way on a newcomer's machine
# and in CI (.ci/run calls it).
#   ./test.sh            static checks, then every test under -race
#   ./test.sh -run TestX ./daemon/   extra arguments go to `go test` instead of ./...
#   ./test.sh --setup    only install and start what the tests need
# What the tests need is installed and started when it is missing: the Docker
# Engine, git, openssh-client (pushes over SSH), busybox-static (the tests'
# base image), debootstrap (the Debian base image of the tests of apps without
# a Dockerfile; it needs Debian's mirror), chromium (dashboard tests), gcc (the race detector),
# docker-registry and iproute2 (the swarm-mode tests' registry and bridges), and the Go toolchain go.mod asks for
# (scripts/gotoolchain.sh). That takes root and apt-get; without them it says
# exactly what to install. Under CI=true no Docker, git or browser test may
# skip, and the test that restarts the Docker Engine runs too (it stops every
# container on the machine for a while: set PLAT_TEST_ENGINE_RESTART=1 to run
# it elsewhere).
set -euo pipefail
cd "$(dirname "$0")"

say() { printf -- '-----> %s\n' "$*"; }
die() { printf ' !     %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# Debian package for each command the tests run.
declare -A packages=(
  [git]=git [dockerd]=docker.io [busybox]=busybox-static [chromium]=chromium [docker-registry]=docker-registry
  [gcc]="gcc libc6-dev" [curl]="curl ca-certificates" [unzip]=unzip [ssh]=openssh-client
  [debootstrap]=debootstrap [ip]=iproute2
)
need=()
for cmd in git ssh dockerd busybox chromium gcc curl unzip docker-registry ip; do
  command -v "$cmd" >/dev/null || need+=(${packages[$cmd]})
done
# The tests read /bin/busybox itself to make their base image.
[ -x /bin/busybox ] || need+=(busybox-static)
# debootstrap lives in /usr/sbin, outside a user's PATH.
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  if is_root && command -v apt-get >/dev/null; then
    say "Installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    die "the tests need: ${need[*]} (Debian/Ubuntu: sudo apt-get install -y ${need[*]}; elsewhere the same tools from your package manager), then run ./test.sh again"
  fi
fi

if ! docker info >/dev/null 2>&1; then
  is_root || die "the Docker Engine is not running or not yours to use: start it (sudo systemctl start docker, or sudo dockerd &) or run ./test.sh as root"
  say "Starting the Docker Engine"
  log="${TMPDIR:-/tmp}/plat-test-dockerd.log"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl start docker
  else
    (dockerd >>"$log" 2>&1 &)
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -n 30 "$log" 2>/dev/null; die "the Docker Engine did not start (log: $log)"; }
fi
docker version --format 'Docker Engine {{.Server.Version}} (API {{.Server.APIVersion}})'

# shellcheck source=scripts/gotoolchain.sh
. scripts/gotoolchain.sh
# shellcheck source=scripts/shards.sh
. scripts/shards.sh
plat_go_ensure . || die "no Go toolchain to test plat with (see above)"
say "Go: $(go env GOVERSION) ($(command -v go))"

if [ "${1:-}" = --setup ]; then
  exit 0
fi
if [ $# -gt 0 ]; then
  exec go test -race -count=1 "$@"
fi

# daemon_tests runs daemon/'s tests: end-to-end tests that mostly wait on
# the Docker Engine (starts, health checks, drains), one after another within
# a process. PLAT_TEST_SHARDS processes of the one test binary run a share
# of them each, side by side, so the suite's wall time is not the sum of
# those waits.
daemon_tests() {
  local dir rc=0
  dir="$(mktemp -d)"
  go test -race -c -o "$dir/daemon.test" ./daemon/ || return 1
  (cd daemon && plat_test_shards "$dir/daemon.test" "${PLAT_TEST_SHARDS:-2}" github.com/plat-paas/plat/daemon) || rc=1
  rm -rf "$dir"
  return $rc
}

say "Static checks: gofmt, go vet, go mod tidy"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
[ -z "$unformatted" ] || die "gofmt needed on: $unformatted (run gofmt -w on them)"
go vet ./...
go mod tidy -diff >/dev/null || { go mod tidy -diff || true; die "go.mod/go.sum are not tidy: run go mod tidy"; }

say "Tests: go test -race ./... (daemon/ in ${PLAT_TEST_SHARDS:-2} shards)"
go test -race -count=1 -timeout 30m $(go list ./... | grep -v '/daemon$')
# The router's tests serve through its fast front end, as the daemon does;
# once more through net/http alone (what the fast path hands over, and
# --fast-router=false).
say "Router tests through net/http alone"
PLAT_ROUTER_FRONT=nethttp go test -race -count=1 ./router/
daemon_tests

say "Fuzz targets, 10 s each (bench/fuzz.sh runs them longer)"
FUZZTIME="${PLAT_TEST_FUZZTIME:-10s}" bench/fuzz.sh

# Alone, after everything else: it restarts dockerd, which would break any
# other test running at the same time.
if [ "${CI:-}" = true ] || [ "${PLAT_TEST_ENGINE_RESTART:-}" = 1 ]; then
  say "Engine restart test (restarts dockerd)"
  PLAT_TEST_ENGINE_RESTART=1 go test -race -count=1 -timeout 10m -run '^TestEngineRestart$' -v ./daemon/ |
    grep -E '^(=== RUN|--- |PASS|FAIL|ok)|_test.go'
fi
