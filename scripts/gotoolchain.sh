# shellcheck shell=bash
# gotoolchain.sh: find or fetch the Go toolchain that go.mod asks for.
# Sourced by install.sh and test.sh; defines plat_go_ensure.
#
# A Go already on PATH (or at /usr/local/go) is used when it is new enough and
# is never changed. Otherwise the exact version from go.mod is fetched as the
# module golang.org/toolchain from the Go module proxy (GOPROXY, as the go
# command itself does for GOTOOLCHAIN), verified (a pinned SHA-256 for the
# versions listed below, the checksum database through the proxy for any
# other), and unpacked under a plat-owned directory:
#   PLAT_GO_DIR   (root: /usr/local/lib/plat/toolchain; others: ~/.cache/plat/toolchain)
# Running it again reuses the unpacked toolchain.

# Pinned SHA-256 of golang.org/toolchain zips, "VERSION-OS-ARCH SHA256".
PLAT_GO_PINNED="
go1.26.8-linux-amd64 30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7
go1.26.8-linux-arm64 02b36b6787b3ac767668f630e2998df45a3b1f9ffee08d1bf3ef6487cd658d99
"

_pgo_say() { printf -- '-----> %s\n' "$*" >&2; }
_pgo_die() { printf ' !     %s\n' "$*" >&2; return 1; }

# _pgo_required prints the Go version go.mod needs (its toolchain line, else its go line).
_pgo_required() {
  local mod="$1/go.mod" v
  v="$(awk '$1 == "toolchain" { print $2; exit }' "$mod")"
  [ -n "$v" ] || v="go$(awk '$1 == "go" { print $2; exit }' "$mod")"
  printf '%s\n' "$v"
}

# _pgo_at_least A B: is Go version A (go1.x.y) at least B?
_pgo_at_least() {
  [ "$(printf '%s\n%s\n' "${1#go}" "${2#go}" | sort -V | head -n1)" = "${2#go}" ]
}

# _pgo_version GO prints the version of the go binary GO (empty if it does not run).
_pgo_version() { GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null || true; }

_pgo_arch() {
  case "$(uname -m)" in
    x86_64 | amd64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) _pgo_die "no Go toolchain for $(uname -m) here: install Go $1 or newer by hand (https://go.dev/dl/), then run this again" ;;
  esac
}

# _pgo_proxies prints the usable GOPROXY entries, one a line ("direct" cannot
# serve golang.org/toolchain, "off" ends the list).
_pgo_proxies() {
  local p
  for p in $(printf '%s' "${GOPROXY:-https://proxy.golang.org,direct}" | tr ',|' '  '); do
    case "$p" in
      off) return 0 ;;
      direct | "") ;;
      *) printf '%s\n' "${p%/}" ;;
    esac
  done
}

# _pgo_h1 DIR prints the go.sum "h1:" hash of the module files unpacked in DIR
# (golang.org/x/mod/sumdb/dirhash.Hash1: SHA-256 of the sorted "sha256  name" lines).
_pgo_h1() {
  local hex
  hex="$(cd "$1" && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)"
  # shellcheck disable=SC2059 # the format is the point: hex pairs become \xHH bytes
  printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | base64
}

# plat_go_ensure SRC: puts a Go that can build SRC first on PATH and sets PLAT_GO.
plat_go_ensure() {
  local src="$1" want have g
  want="$(_pgo_required "$src")"
  [ -n "$want" ] || { _pgo_die "cannot read the Go version from $src/go.mod"; return 1; }

  for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
    [ -n "$g" ] && [ -x "$g" ] || continue
    have="$(_pgo_version "$g")"
    if [ -n "$have" ] && _pgo_at_least "$have" "$want"; then
      PLAT_GO="$g"
      export PATH="$(dirname "$g"):$PATH" GOTOOLCHAIN=local
      return 0
    fi
    [ -n "$have" ] && _pgo_say "Go at $g is $have; plat needs $want: using plat's own toolchain"
  done

  local arch root dir
  arch="$(_pgo_arch "$want")" || return 1
  if [ "$(id -u)" -eq 0 ]; then root="${PLAT_GO_DIR:-/usr/local/lib/plat/toolchain}"; else root="${PLAT_GO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/plat/toolchain}"; fi
  dir="$root/$want.linux-$arch"
  if [ -f "$dir/.plat-verified" ] && [ "$(_pgo_version "$dir/bin/go")" = "$want" ]; then
    _pgo_say "Using plat's Go toolchain ${want#go} ($dir)"
  else
    _pgo_fetch "$want" "$arch" "$root" "$dir" || return 1
  fi
  PLAT_GO="$dir/bin/go"
  export PATH="$dir/bin:$PATH" GOTOOLCHAIN=local
}

# _pgo_fetch VERSION ARCH ROOT DIR downloads, verifies and unpacks the toolchain into DIR.
_pgo_fetch() {
  local tmp rc=0
  command -v curl >/dev/null && command -v unzip >/dev/null ||
    { _pgo_die "fetching Go needs curl and unzip (apt-get install curl unzip ca-certificates)"; return 1; }
  mkdir -p "$3" || return 1
  tmp="$(mktemp -d "$3/.fetch.XXXXXX")" || return 1
  _pgo_fetch_in "$tmp" "$@" || rc=$?
  rm -rf "$tmp"
  return "$rc"
}

_pgo_fetch_in() {
  local tmp="$1" want="$2" arch="$3" dir="$5"
  local mod="golang.org/toolchain" ver="v0.0.1-$2.linux-$3" proxy pinned got h1 sum=""

  for proxy in $(_pgo_proxies); do
    _pgo_say "Fetching Go ${want#go} for linux/$arch from $proxy"
    if curl -fsSL --retry 2 -o "$tmp/go.zip" "$proxy/$mod/@v/$ver.zip"; then break; fi
    rm -f "$tmp/go.zip"
  done
  [ -s "$tmp/go.zip" ] || { _pgo_die "could not fetch $mod@$ver through GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}; install Go ${want#go} by hand (https://go.dev/dl/) and put it on PATH"; return 1; }

  pinned="$(printf '%s\n' "$PLAT_GO_PINNED" | awk -v k="$want-linux-$arch" '$1 == k { print $2 }')"
  if [ -n "$pinned" ]; then
    got="$(sha256sum "$tmp/go.zip" | cut -c1-64)"
    [ "$got" = "$pinned" ] || { _pgo_die "Go ${want#go} download does not match its pinned SHA-256 (got $got, want $pinned): not using it"; return 1; }
  fi
  unzip -q "$tmp/go.zip" -d "$tmp/x" || { _pgo_die "cannot unpack the Go ${want#go} download"; return 1; }
  if [ -z "$pinned" ]; then
    [ "${GOSUMDB:-}" != off ] || { _pgo_die "Go ${want#go} has no pinned checksum and GOSUMDB=off: cannot verify it"; return 1; }
    for proxy in $(_pgo_proxies); do
      sum="$(curl -fsSL "$proxy/sumdb/sum.golang.org/lookup/$mod@$ver" 2>/dev/null | awk -v m="$mod" -v v="$ver" '$1 == m && $2 == v { print $3 }')" && [ -n "$sum" ] && break
    done
    [ -n "${sum:-}" ] || { _pgo_die "cannot look up $mod@$ver in the checksum database: cannot verify it"; return 1; }
    h1="h1:$(_pgo_h1 "$tmp/x")"
    [ "$h1" = "$sum" ] || { _pgo_die "Go ${want#go} download does not match the checksum database ($h1, want $sum): not using it"; return 1; }
  fi

  # Module zips keep no file modes: make the commands executable, as the go
  # command does when it switches toolchains.
  local top="$tmp/x/$mod@$ver"
  chmod -R a+rX "$top" && chmod a+x "$top"/bin/* "$top"/pkg/tool/*/* || return 1
  [ "$(_pgo_version "$top/bin/go")" = "$want" ] || { _pgo_die "the unpacked Go ${want#go} does not run"; return 1; }
  touch "$top/.plat-verified"
  rm -rf "$dir" && mv "$top" "$dir" || return 1
  _pgo_say "Installed Go ${want#go} in $dir (verified${pinned:+ against its pinned SHA-256}${sum:+ against the checksum database})"
}
