package daemon

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/plat-paas/plat/store"
)

// repos manages the bare git repositories pushes land in.
type repos struct {
	dir        string
	hookBinary string // this plat binary, run as the pre-receive hook
	socket     string // where the hook reaches the daemon
	mu         sync.Mutex
}

func (r *repos) path(app string) string { return filepath.Join(r.dir, app+".git") }

// ensure creates app's bare repository if needed and (re)writes its hook, so
// the hook always runs the daemon's current binary.
func (r *repos) ensure(app string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.path(app)
	if _, err := os.Stat(filepath.Join(p, "HEAD")); err != nil {
		if err := os.MkdirAll(r.dir, 0o700); err != nil {
			return fmt.Errorf("create repos dir: %w", err)
		}
		out, err := exec.Command("git", "init", "--bare", "--quiet", "--initial-branch=main", p).CombinedOutput()
		if err != nil {
			return fmt.Errorf("git init %s: %v: %s", app, err, out)
		}
	}
	hook := fmt.Sprintf("#!/bin/sh\n# Written by plat: builds and deploys pushes to main.\nexec %s hook pre-receive\n", shellQuote(r.hookBinary))
	if err := os.WriteFile(filepath.Join(p, "hooks", "pre-receive"), []byte(hook), 0o700); err != nil {
		return fmt.Errorf("write pre-receive hook: %w", err)
	}
	return nil
}

func (r *repos) remove(app string) error { return os.RemoveAll(r.path(app)) }

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// gitApp resolves {repo} ("myapp.git") to an existing app and its repository.
func (s *server) gitApp(w http.ResponseWriter, r *http.Request) (store.App, bool) {
	name := strings.TrimSuffix(r.PathValue("repo"), ".git")
	app, err := s.store.GetApp(name)
	if err != nil {
		msg := fmt.Sprintf("no app named %q: create it with `plat apps:create %s`", name, name)
		if !errors.Is(err, store.ErrNotFound) {
			msg = "cannot read app: " + err.Error()
		}
		http.Error(w, msg, http.StatusNotFound)
		return app, false
	}
	if err := s.repos.ensure(app.Name); err != nil {
		s.log.Error("prepare repository", "app", app.Name, "err", err)
		http.Error(w, "cannot prepare the repository", http.StatusInternalServerError)
		return app, false
	}
	return app, true
}

// gitInfoRefs answers the first request of a smart-HTTP push.
func (s *server) gitInfoRefs(w http.ResponseWriter, r *http.Request) {
	service := r.URL.Query().Get("service")
	if service != "git-receive-pack" {
		http.Error(w, "plat only receives pushes: use `git push`", http.StatusForbidden)
		return
	}
	app, ok := s.gitApp(w, r)
	if !ok {
		return
	}
	refs, err := exec.CommandContext(r.Context(), "git", "receive-pack", "--stateless-rpc", "--advertise-refs", s.repos.path(app.Name)).Output()
	if err != nil {
		s.log.Error("git advertise refs", "app", app.Name, "err", err)
		http.Error(w, "cannot read the repository", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-git-receive-pack-advertisement")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(pktLine("# service=git-receive-pack\n"))
	w.Write([]byte("0000"))
	w.Write(refs)
}

func (s *server) gitUploadPack(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "plat only receives pushes: use `git push`", http.StatusForbidden)
}

// gitReceivePack runs `git receive-pack` for a push. It holds the app's
// deploy lock for the whole push, so that the deploy (run by the hook) and
// the branch update happen together and a second push waits its turn.
func (s *server) gitReceivePack(w http.ResponseWriter, r *http.Request) {
	app, ok := s.gitApp(w, r)
	if !ok {
		return
	}
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip body", http.StatusBadRequest)
			return
		}
		defer gz.Close()
		body = gz
	}
	// Peek at the first command line to learn whether the client reads
	// progress on side-band 2; then we can tell it when it has to wait.
	br := bufio.NewReader(body)
	first, err := readPktLine(br)
	if err != nil {
		http.Error(w, "bad receive-pack request: "+err.Error(), http.StatusBadRequest)
		return
	}
	// Progress (and receive-pack's answer) streams while the pack is read.
	if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
		s.log.Warn("enable full duplex", "err", err)
	}
	w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	out := &clientWriter{fw: newFlushWriter(w)}
	progress := io.Discard
	if bytes.Contains(first, []byte("side-band")) {
		progress = sidebandWriter{out}
	}

	// The push goes on if the client disconnects: the branch is updated if
	// and only if the deploy succeeded, either way.
	ctx := context.WithoutCancel(r.Context())
	unlock, err := s.deployer.Lock(ctx, app.Name, progress)
	if err != nil {
		return
	}
	defer unlock()

	cmd := exec.CommandContext(ctx, "git", "receive-pack", "--stateless-rpc", s.repos.path(app.Name))
	cmd.Env = append(os.Environ(), "PLAT_SOCKET="+s.repos.socket, "PLAT_APP="+app.Name)
	cmd.Stdin = io.MultiReader(bytes.NewReader(first), br)
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		s.log.Warn("git receive-pack", "app", app.Name, "err", err, "stderr", strings.TrimSpace(stderr.String()))
	}
}

// clientWriter writes to the pusher until the first error, then discards:
// receive-pack must never block on a client that went away.
type clientWriter struct {
	fw  *flushWriter
	err error
}

func (c *clientWriter) Write(p []byte) (int, error) {
	if c.err == nil {
		_, c.err = c.fw.Write(p)
	}
	return len(p), nil
}

// sidebandWriter sends text as git side-band progress (band 2), which the
// client prints as "remote: ..." lines.
type sidebandWriter struct{ w io.Writer }

func (s sidebandWriter) Write(p []byte) (int, error) {
	const maxData = 65515 // 65520 minus the 4-byte length and the band byte
	for rest := p; len(rest) > 0; {
		n := min(len(rest), maxData)
		pkt := append([]byte{2}, rest[:n]...)
		if _, err := s.w.Write(pktLine(string(pkt))); err != nil {
			return 0, err
		}
		rest = rest[n:]
	}
	return len(p), nil
}

func pktLine(s string) []byte {
	return []byte(fmt.Sprintf("%04x%s", len(s)+4, s))
}

// readPktLine reads one pkt-line, returning it whole (length prefix included).
func readPktLine(r *bufio.Reader) ([]byte, error) {
	head := make([]byte, 4)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("read pkt-line length: %w", err)
	}
	n, err := strconv.ParseUint(string(head), 16, 16)
	if err != nil {
		return nil, fmt.Errorf("bad pkt-line length %q", head)
	}
	if n < 4 {
		return head, nil // flush or delimiter packet
	}
	line := make([]byte, n)
	copy(line, head)
	if _, err := io.ReadFull(r, line[4:]); err != nil {
		return nil, fmt.Errorf("read pkt-line: %w", err)
	}
	return line, nil
}
