package daemon

import (
	"bufio"
	"bytes"
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

// head returns where app's deploy branch points, "" if it does not exist.
func (r *repos) head(app string) (string, error) { return r.ref(app, deployBranch) }

// ref returns where ref points in app's repository, "" if it does not exist.
func (r *repos) ref(app, ref string) (string, error) {
	out, err := exec.Command("git", "--git-dir", r.path(app), "rev-parse", "-q", "--verify", ref).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s of %s: %w", ref, app, err)
	}
	return strings.TrimSpace(string(out)), nil
}

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
	if app.Preview != nil {
		http.Error(w, fmt.Sprintf("%s is the preview of branch %s: push that branch to %s's repository instead", app.Name, app.Preview.Branch, app.Preview.App), http.StatusNotFound)
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
	if s.refuseDuringUpgrade(w) {
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
	http.Error(w, errUploadPack, http.StatusForbidden)
}

// gitReceivePack runs `git receive-pack` for a push. The whole body is
// read first (bounded in size, and in time per read) into a spool file, so
// a stalled or slow pusher holds nothing but its own request. The push
// then runs under a deploy lease (receivePack). The client going away
// cancels the deploy; the branch is updated if and only if the deploy
// succeeded, either way.
func (s *server) gitReceivePack(w http.ResponseWriter, r *http.Request) {
	s.pushes.Add(1)
	defer s.pushes.Add(-1)
	if s.refuseDuringUpgrade(w) {
		return
	}
	app, ok := s.gitApp(w, r)
	if !ok {
		return
	}
	spool, err := spoolPush(w, r, filepath.Join(s.cfg.DataDir, pushTmpDir), s.cfg.maxPushBytes(), s.cfg.pushIdleTimeout())
	var tooLarge *sizeError
	switch {
	case errors.As(err, &tooLarge) && spool != nil:
		// The whole body was read: answer in git's terms, which the
		// pusher sees as the reason its push was rejected.
		defer spool.Close()
		s.log.Warn("push refused: too large", "app", app.Name, "limit", tooLarge.limit, "remote", r.RemoteAddr)
		cmds, _ := readPushCommands(bufio.NewReader(spool))
		rejectPush(w, cmds, tooLarge.Error(), "push too large")
		return
	case errors.As(err, &tooLarge):
		s.log.Warn("push refused: too large", "app", app.Name, "limit", tooLarge.limit, "remote", r.RemoteAddr)
		http.Error(w, "plat: "+tooLarge.Error(), http.StatusRequestEntityTooLarge)
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.log.Warn("push refused: the client stopped sending", "app", app.Name, "idle", s.cfg.pushIdleTimeout(), "remote", r.RemoteAddr)
		http.Error(w, fmt.Sprintf("plat: the push sent nothing for %s; push again", s.cfg.pushIdleTimeout()), http.StatusRequestTimeout)
		return
	case err != nil:
		s.log.Warn("push refused: cannot read its body", "app", app.Name, "err", err, "remote", r.RemoteAddr)
		http.Error(w, "bad receive-pack request: "+err.Error(), http.StatusBadRequest)
		return
	}
	defer spool.Close()
	// Checked here so a malformed request never reaches receive-pack.
	if _, err := readPushCommands(bufio.NewReader(spool)); err != nil {
		http.Error(w, "bad receive-pack request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		s.internalError(w, err)
		return
	}

	w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	var stderr bytes.Buffer
	err = s.receivePack(r.Context(), app.Name, true, spool, &clientWriter{w: newFlushWriter(w)}, &stderr)
	if err != nil {
		s.log.Warn("git receive-pack", "app", app.Name, "err", err, "stderr", strings.TrimSpace(stderr.String()))
	}
}

// receivePack runs `git receive-pack` on app's repository for a push (over
// HTTP with stateless, over SSH without), under a new deploy lease that
// ends with ctx (the client going away) or when receive-pack is done.
// The pre-receive hook passes the lease's ID back with its deploy: the
// deploy takes the app's release lock after its build and the lease keeps
// it until receive-pack has recorded (or refused) the branch update, so a
// second push waits its turn and sees where main is. stdout and stderr
// must never block on a client that went away (see clientWriter).
func (s *server) receivePack(ctx context.Context, app string, stateless bool, stdin io.Reader, stdout, stderr io.Writer) error {
	lease := s.deployer.NewLease(ctx, app, true)
	defer lease.Release()
	args := []string{"receive-pack"}
	if stateless {
		args = append(args, "--stateless-rpc")
	}
	// Not cancelled with ctx: the hook ends as soon as the lease does, and
	// receive-pack then refuses the update and cleans up.
	cmd := exec.Command("git", append(args, s.repos.path(app))...)
	cmd.Env = append(os.Environ(), "PLAT_SOCKET="+s.repos.socket, "PLAT_APP="+app, "PLAT_LEASE="+lease.ID)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git receive-pack of %s: %w", app, err)
	}
	return nil
}

// clientWriter writes to the pusher until the first error, then discards:
// receive-pack must never block on a client that went away.
type clientWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (c *clientWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		_, c.err = c.w.Write(p)
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
