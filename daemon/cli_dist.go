package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// DefaultCLIDir is where install.sh puts the cross-built CLI binaries the
// daemon serves (`plat daemon --cli-dir`).
const DefaultCLIDir = "/usr/local/lib/plat/cli"

// cliTargets are the OS-ARCH pairs install.sh builds the CLI for; each is
// served as plat-OS-ARCH with a plat-OS-ARCH.sha256 beside it.
var cliTargets = []string{"linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"}

// hostRE is a Host header safe to put in the install script: a name or an
// IP literal, with an optional port; nothing a shell would interpret.
var hostRE = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)

// cliRoutes serves the CLI to laptops, without authentication: it is the
// same public software as the source it was built from.
func (s *server) cliRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /install-cli", s.installCLI)
	mux.HandleFunc("GET /cli/{file}", s.cliFile)
}

func (s *server) cliDir() string {
	if s.cfg.CLIDir == "" {
		return DefaultCLIDir
	}
	return s.cfg.CLIDir
}

// cliAvailable lists the targets whose binary and checksum are both there.
func (s *server) cliAvailable() []string {
	var out []string
	for _, t := range cliTargets {
		bin := filepath.Join(s.cliDir(), "plat-"+t)
		if fileExists(bin) && fileExists(bin+".sha256") {
			out = append(out, t)
		}
	}
	return out
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// origin is the scheme and host the client reached this daemon at, so
// the script downloads from where it came from; a Host header that is not
// a plain host[:port] falls back to the configured public URL.
func (s *server) origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if hostRE.MatchString(r.Host) {
		return scheme + "://" + r.Host
	}
	return strings.TrimRight(s.cfg.PublicURL, "/")
}

// installCLI serves the POSIX sh script behind `curl -fsSL ORIGIN/install-cli | sh`.
func (s *server) installCLI(w http.ResponseWriter, r *http.Request) {
	script := strings.NewReplacer(
		"@ORIGIN@", s.origin(r),
		"@AVAILABLE@", strings.Join(s.cliAvailable(), " "),
	).Replace(installCLIScript)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(script))
}

// cliFile serves plat-OS-ARCH and plat-OS-ARCH.sha256.
func (s *server) cliFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	target := strings.TrimSuffix(strings.TrimPrefix(name, "plat-"), ".sha256")
	if !strings.HasPrefix(name, "plat-") || !slices.Contains(cliTargets, target) {
		http.Error(w, fmt.Sprintf("no CLI download named %q: there are plat-OS-ARCH and plat-OS-ARCH.sha256 for %s; `curl -fsSL %s/install-cli | sh` picks the right one",
			name, strings.Join(cliTargets, ", "), s.origin(r)), http.StatusNotFound)
		return
	}
	f, err := os.Open(filepath.Join(s.cliDir(), name))
	if errors.Is(err, fs.ErrNotExist) {
		goos, goarch, _ := strings.Cut(target, "-")
		http.Error(w, fmt.Sprintf("%s is not built on this server (looked in %s). install.sh builds the CLI downloads; "+
			"to build this one by hand, in plat's source: CGO_ENABLED=0 GOOS=%s GOARCH=%s go build -trimpath -o %s/plat-%s ./cmd/plat-cli && (cd %s && sha256sum plat-%s >plat-%s.sha256)",
			name, s.cliDir(), goos, goarch, s.cliDir(), target, s.cliDir(), target, target), http.StatusNotFound)
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		s.internalError(w, fmt.Errorf("CLI download %s: not a regular file (%v)", name, err))
		return
	}
	if strings.HasSuffix(name, ".sha256") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="plat"`)
	}
	w.Header().Set("Cache-Control", "no-cache") // a reinstall replaces them
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// installCLIScript is the install script; @ORIGIN@ and @AVAILABLE@ are
// filled in per request. POSIX sh: it must run under dash and macOS's sh.
const installCLIScript = `#!/bin/sh
# Installs the plat CLI from the plat daemon at @ORIGIN@:
#   curl -fsSL @ORIGIN@/install-cli | sh
# It picks the build for this OS and CPU, checks its SHA-256, and installs it
# into PLAT_INSTALL_DIR (default: /usr/local/bin when writable, else ~/.local/bin).
set -eu
origin='@ORIGIN@'
available='@AVAILABLE@'

die() { printf 'plat install: %s\n' "$*" >&2; exit 1; }

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) die "no plat CLI for $(uname -s): builds exist for Linux and macOS" ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "no plat CLI for the CPU $(uname -m): builds exist for amd64 and arm64" ;;
esac
target="$os-$arch"
case " $available " in
  *" $target "*) ;;
  *) die "this plat server has no CLI build for $target (it has: ${available:-none}); its admin builds them by running install.sh on the server" ;;
esac

if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsSL -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q -O "$2" "$1"; }
else
  die "needs curl or wget to download plat"
fi
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d ' ' -f 1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
else
  die "needs sha256sum or shasum to verify the download"
fi

tmp="$(mktemp -d 2>/dev/null || mktemp -d -t plat)" || die "cannot make a temporary directory"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
fetch "$origin/cli/plat-$target" "$tmp/plat" || die "could not download $origin/cli/plat-$target"
fetch "$origin/cli/plat-$target.sha256" "$tmp/plat.sha256" || die "could not download $origin/cli/plat-$target.sha256"
want="$(cut -d ' ' -f 1 <"$tmp/plat.sha256")"
got="$(sha256 "$tmp/plat")"
if [ -z "$want" ] || [ "$got" != "$want" ]; then
  die "the download does not match its checksum (SHA-256 $got, want ${want:-nothing}): not installing it"
fi

dir="${PLAT_INSTALL_DIR:-}"
if [ -z "$dir" ]; then
  if [ -d /usr/local/bin ] && [ -w /usr/local/bin ]; then dir=/usr/local/bin; else dir="$HOME/.local/bin"; fi
fi
mkdir -p "$dir" || die "cannot create $dir: set PLAT_INSTALL_DIR to a directory you can write"
chmod 755 "$tmp/plat"
mv -f "$tmp/plat" "$dir/plat" || die "cannot write $dir/plat: set PLAT_INSTALL_DIR to a directory you can write"

printf 'Installed %s\n' "$("$dir/plat" version 2>/dev/null || echo "plat for $target") in $dir/plat"
case ":$PATH:" in
  *":$dir:"*) ;;
  *) printf '%s is not on your PATH: add it with  export PATH="%s:$PATH"\n' "$dir" "$dir" ;;
esac
printf '\nNext, log in with your API token (the server prints one: plat daemon token):\n  plat login %s --token YOUR_TOKEN\n' "$origin"
`
