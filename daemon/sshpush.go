package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/plat-paas/plat/store"
)

const (
	// sshDir (under the data dir) holds the SSH server's host key.
	sshDir         = "ssh"
	sshHostKeyFile = "host_ed25519_key"
)

// errUploadPack refuses fetches and clones, over HTTP and SSH alike.
const errUploadPack = "plat only receives pushes: use `git push`"

// loadOrCreateHostKey reads the ed25519 host key at path, creating it
// (mode 0600) the first time, so clients see the same host key across
// restarts.
func loadOrCreateHostKey(path string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ssh host key: %w", err)
		}
		block, err := ssh.MarshalPrivateKey(priv, "plat host key")
		if err != nil {
			return nil, fmt.Errorf("encode ssh host key: %w", err)
		}
		data = pem.EncodeToMemory(block)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
		}
		// Written aside and renamed: a crash never leaves half a key.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return nil, fmt.Errorf("write ssh host key: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, fmt.Errorf("write ssh host key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read ssh host key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("ssh host key %s: %w (move it away and restart the daemon to make a new one; clients will then see a new host key)", path, err)
	}
	return signer, nil
}

// parseGitCommand reads the command of an SSH exec request as git sends
// it (git-receive-pack '/myapp' for ssh://plat@HOST:2222/myapp) and
// returns the app it pushes to. Paths may be /app, app or app.git, in
// single or double quotes or none. Everything but a push is refused.
func parseGitCommand(line string) (string, error) {
	words, err := splitShellWords(line)
	if err != nil {
		return "", err
	}
	if len(words) >= 2 && words[0] == "git" {
		words = append([]string{"git-" + words[1]}, words[2:]...)
	}
	if len(words) == 0 {
		return "", errors.New("no command given: plat only receives git pushes (git push platform main)")
	}
	switch words[0] {
	case "git-receive-pack":
	case "git-upload-pack", "git-upload-archive":
		return "", errors.New(errUploadPack)
	default:
		return "", fmt.Errorf("plat runs no commands over SSH, only git pushes (git push platform main); %q is refused", words[0])
	}
	if len(words) != 2 {
		return "", fmt.Errorf("git-receive-pack takes one repository, e.g. '/myapp'; got %q", line)
	}
	app := strings.TrimSuffix(strings.Trim(words[1], "/"), ".git")
	if app == "" || strings.ContainsAny(app, "/\\") || strings.HasPrefix(app, "~") {
		return "", fmt.Errorf("%q is not an app: push to ssh://plat@HOST:PORT/APP", words[1])
	}
	return app, nil
}

// splitShellWords splits s into words the way sh would for the simple
// quoting git uses: single quotes, double quotes and backslashes.
func splitShellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i++
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// authorizeKey is the SSH server's key check: the registered key with the
// fingerprint, looked up at every connection and every command, so
// `plat keys:remove` refuses the key's next one.
func (s *server) authorizeKey(fingerprint string) (string, error) {
	k, ok, err := s.store.SSHKeyByFingerprint(fingerprint)
	if err != nil {
		s.log.Error("ssh key lookup", "err", err)
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("key %s is not registered", fingerprint)
	}
	return k.Name, nil
}

// runSSH serves an SSH command: a push runs `git receive-pack` with the
// channel as its stdin and stdout, under the same lease, hook and deploy
// as a push over HTTP, its input bounded by --max-push-size.
func (s *server) runSSH(ctx context.Context, c *sshCommand) uint32 {
	log := s.log.With("remote", c.Remote, "key", c.KeyName)
	fail := func(msg string) uint32 {
		fmt.Fprintf(c.Stderr, "plat: %s\n", msg)
		return 1
	}
	name, err := parseGitCommand(c.Line)
	if err != nil {
		log.Info("ssh command refused", "command", c.Line, "err", err)
		return fail(err.Error())
	}
	app, err := s.store.GetApp(name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fail(fmt.Sprintf("no app named %q: create it with `plat apps:create %s`", name, name))
		}
		log.Error("ssh push: read app", "app", name, "err", err)
		return fail("cannot read the app; see the daemon's log")
	}
	if err := s.repos.ensure(app.Name); err != nil {
		log.Error("prepare repository", "app", app.Name, "err", err)
		return fail("cannot prepare the repository; see the daemon's log")
	}

	// receive-pack reads a pipe of ours, not the channel: it may finish
	// (nothing to push) while the client still keeps its side open.
	pr, pw, err := os.Pipe()
	if err != nil {
		log.Error("ssh push: pipe", "err", err)
		return fail("internal error; see the daemon's log")
	}
	defer pr.Close()
	stderr := &clientWriter{w: c.Stderr}
	limit := s.cfg.maxPushBytes()
	go func() {
		defer pw.Close()
		n, err := io.Copy(pw, io.LimitReader(c.Stdin, limit))
		if err != nil || n < limit {
			return
		}
		// At the limit: anything more is a push too large. receive-pack
		// then sees the pack end early and refuses the update.
		if m, _ := c.Stdin.Read(make([]byte, 1)); m > 0 {
			tooLarge := &sizeError{what: "push", limit: limit, flag: "--max-push-size"}
			log.Warn("push refused: too large", "app", app.Name, "limit", limit)
			fmt.Fprintf(stderr, "\n !     Push rejected: %s\n", tooLarge)
		}
	}()
	start := time.Now()
	var errOut bytes.Buffer
	err = s.receivePack(ctx, app.Name, false, pr, &clientWriter{w: c.Stdout}, io.MultiWriter(stderr, &errOut))
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		log.Warn("ssh push", "app", app.Name, "status", exit.ExitCode(), "stderr", strings.TrimSpace(errOut.String()), "took", time.Since(start))
		return uint32(exit.ExitCode())
	case err != nil:
		log.Error("ssh push", "app", app.Name, "err", err)
		return fail("cannot run git receive-pack; see the daemon's log")
	}
	log.Info("ssh push", "app", app.Name, "took", time.Since(start))
	return 0
}

// sshHostKeyMain runs `plat daemon ssh-host-key`: the SHA256 fingerprint
// of the daemon's SSH host key (install.sh prints it).
func sshHostKeyMain(args []string) int {
	fs := flag.NewFlagSet("plat daemon ssh-host-key", flag.ContinueOnError)
	dataDir := fs.String("data", envOr("PLAT_DATA", DefaultDataDir), "the daemon's data directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path := filepath.Join(*dataDir, sshDir, sshHostKeyFile)
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "plat: no SSH host key at %s: the daemon makes it when it starts with --ssh on (%v)\n", path, err)
		return 1
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		fmt.Fprintf(os.Stderr, "plat: ssh host key %s: %v\n", path, err)
		return 1
	}
	fmt.Println(ssh.FingerprintSHA256(signer.PublicKey()))
	return 0
}
