package daemon_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshSetup is a daemon serving SSH and a client key registered with it.
type sshSetup struct {
	d          *daemon
	addr, port string
	keyFile    string // registered private key
	otherKey   string // never registered
	knownHosts string
	hostKey    ssh.PublicKey
}

// requireSSH fails (CI) or skips the test when the ssh client is missing.
func requireSSH(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("needs %s (Debian: openssh-client); under CI=true it may not skip", tool)
			}
			t.Skipf("needs %s (Debian: openssh-client)", tool)
		}
	}
}

func newSSHSetup(t *testing.T, extra ...string) *sshSetup {
	t.Helper()
	requireSSH(t)
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	d := startDaemon(t, append([]string{"--ssh", addr}, extra...)...)
	s := &sshSetup{d: d, addr: addr, port: port}
	dir := t.TempDir()
	s.keyFile, s.otherKey = filepath.Join(dir, "id_laptop"), filepath.Join(dir, "id_other")
	for _, f := range []string{s.keyFile, s.otherKey} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test@plat", "-f", f).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	out := d.mustPlat("keys:add", "laptop", s.keyFile+".pub")
	if !strings.Contains(out, "Added SSH key laptop (ssh-ed25519 SHA256:") {
		t.Fatalf("keys:add said:\n%s", out)
	}
	var list struct {
		Keys []struct{ Name, Type, Fingerprint string }
		SSH  struct {
			Enabled            bool
			Port               int
			HostKey            string `json:"host_key"`
			HostKeyFingerprint string `json:"host_key_fingerprint"`
		}
	}
	if err := json.Unmarshal([]byte(d.mustPlat("keys", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	fp, _ := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", s.keyFile+".pub").Output()
	if len(list.Keys) != 1 || list.Keys[0].Name != "laptop" || list.Keys[0].Type != "ssh-ed25519" || !strings.Contains(string(fp), list.Keys[0].Fingerprint) {
		t.Fatalf("plat keys --json: %+v; ssh-keygen -l says %s", list.Keys, fp)
	}
	if !list.SSH.Enabled || strconv.Itoa(list.SSH.Port) != port {
		t.Fatalf("plat keys --json ssh = %+v, want enabled on port %s", list.SSH, port)
	}
	hk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(list.SSH.HostKey))
	if err != nil || hk.Type() != ssh.KeyAlgoED25519 || ssh.FingerprintSHA256(hk) != list.SSH.HostKeyFingerprint {
		t.Fatalf("host key %q (%s): %v", list.SSH.HostKey, list.SSH.HostKeyFingerprint, err)
	}
	if text := d.mustPlat("keys"); !strings.Contains(text, list.SSH.HostKeyFingerprint) || !strings.Contains(text, "laptop") {
		t.Fatalf("plat keys does not show the host key fingerprint and the key:\n%s", text)
	}
	// install.sh prints it with `plat daemon ssh-host-key`.
	if out, err := exec.Command(platBin, "daemon", "ssh-host-key", "--data", d.data).Output(); err != nil || strings.TrimSpace(string(out)) != list.SSH.HostKeyFingerprint {
		t.Fatalf("plat daemon ssh-host-key: %q, %v; want %s", out, err, list.SSH.HostKeyFingerprint)
	}
	s.hostKey = hk
	s.knownHosts = filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(s.knownHosts, []byte("[127.0.0.1]:"+port+" "+list.SSH.HostKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The host key is kept in the data dir, private.
	if fi, err := os.Stat(filepath.Join(d.data, "ssh", "host_ed25519_key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key file: %v, %v; want mode 0600", fi, err)
	}
	return s
}

// gitSSH runs git in r's checkout through the system's ssh client with key.
func (s *sshSetup) gitSSH(r *repo, key string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(s.d.env(), "GIT_SSH_COMMAND=ssh -i "+key+" -o IdentitiesOnly=yes -o UserKnownHostsFile="+s.knownHosts+" -o StrictHostKeyChecking=yes -o BatchMode=yes -p "+s.port)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// client connects with x/crypto/ssh as the registered key.
func (s *sshSetup) client(t *testing.T) *ssh.Client {
	t.Helper()
	pem, err := os.ReadFile(s.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", s.addr, &ssh.ClientConfig{User: "plat", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(s.hostKey), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("ssh dial with the registered key: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSSHPush: with a registered key, `git push` over SSH (the system's
// ssh client) deploys like a push over HTTP, streams the same remote:
// lines, and is rejected the same way; an unregistered key, and a key
// once removed, are refused. Fails on main: there is no SSH server.
func TestSSHPush(t *testing.T) {
	// An idle timeout shorter than the deploy: the read bound must not cut
	// a push whose client waits for its deploy.
	s := newSSHSetup(t, "--push-idle-timeout", "1s")
	d := s.d
	d.createApp("sshapp")
	r := d.newRepo("sshapp")
	cmd := exec.Command(platBin, "git:remote", "sshapp", "--ssh")
	cmd.Dir, cmd.Env = r.dir, d.env()
	out, err := cmd.CombinedOutput()
	want := "ssh://plat@127.0.0.1:" + s.port + "/sshapp"
	if err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("plat git:remote --ssh: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(r.git("remote", "get-url", "platform")); got != want {
		t.Fatalf("platform remote = %q, want %q", got, want)
	}

	r.commit("ssh1", "")
	start := time.Now()
	out2, err := s.gitSSH(r, s.keyFile, "push", "platform", "main")
	took := time.Since(start)
	if err != nil {
		t.Fatalf("git push over ssh: %v\n%s", err, out2)
	}
	for _, w := range []string{"remote: -----> Building", "remote: =====> sshapp v1 is live at", "main -> main"} {
		if !strings.Contains(out2, w) {
			t.Errorf("push output lacks %q:\n%s", w, out2)
		}
	}
	t.Logf("push over ssh took %s (idle timeout 1s)", took)
	d.mustServe("sshapp", "version=ssh1")

	t.Run("failing push is rejected with its reason", func(t *testing.T) {
		r.commit("ssh2", "crash")
		out, err := s.gitSSH(r, s.keyFile, "push", "platform", "main")
		if err == nil || !strings.Contains(out, "remote:  !     Push rejected") || !strings.Contains(out, "boom: testapp crashed on purpose") || !strings.Contains(out, "[remote rejected] main -> main") {
			t.Fatalf("push of a crashing app over ssh: err %v\n%s", err, out)
		}
		d.mustServe("sshapp", "version=ssh1")
	})
	t.Run("fetch is refused", func(t *testing.T) {
		out, err := s.gitSSH(r, s.keyFile, "fetch", "platform")
		if err == nil || !strings.Contains(out, "plat only receives pushes") {
			t.Fatalf("git fetch over ssh: err %v\n%s", err, out)
		}
	})
	t.Run("unregistered key is refused", func(t *testing.T) {
		r.commit("ssh3", "")
		out, err := s.gitSSH(r, s.otherKey, "push", "platform", "main")
		if err == nil || !strings.Contains(out, "Permission denied (publickey)") {
			t.Fatalf("push with an unregistered key: err %v\n%s", err, out)
		}
	})
	t.Run("removed key is refused", func(t *testing.T) {
		d.mustPlat("keys:remove", "laptop")
		out, err := s.gitSSH(r, s.keyFile, "push", "platform", "main")
		if err == nil || !strings.Contains(out, "Permission denied (publickey)") {
			t.Fatalf("push with a removed key: err %v\n%s", err, out)
		}
		d.mustServe("sshapp", "version=ssh1")
	})
}

// run runs line in a new session of c and returns its exit status and
// standard error.
func run(t *testing.T, c *ssh.Client, line string) (int, string) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var stderr bytes.Buffer
	sess.Stderr = &stderr
	err = sess.Run(line)
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exit):
		return exit.ExitStatus(), stderr.String()
	}
	t.Fatalf("run %q: %v", line, err)
	return 0, ""
}

// TestSSHRefusals: the SSH server runs only git-receive-pack for an
// existing app; every other request, channel and authentication method
// is refused. Fails on main: there is no SSH server.
func TestSSHRefusals(t *testing.T) {
	s := newSSHSetup(t)
	s.d.createApp("refusals")
	c := s.client(t)

	t.Run("password and keyboard-interactive authentication", func(t *testing.T) {
		for name, auth := range map[string]ssh.AuthMethod{
			"password": ssh.Password("plat"),
			"keyboard-interactive": ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
				return []string{"plat"}, nil
			}),
		} {
			_, err := ssh.Dial("tcp", s.addr, &ssh.ClientConfig{User: "plat", Auth: []ssh.AuthMethod{auth}, HostKeyCallback: ssh.FixedHostKey(s.hostKey), Timeout: 10 * time.Second})
			if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
				t.Errorf("%s authentication: %v, want refused", name, err)
			}
		}
	})
	t.Run("commands", func(t *testing.T) {
		for _, tt := range []struct{ line, want string }{
			{"git-upload-pack '/refusals'", "plat only receives pushes"},
			{"git-upload-archive '/refusals'", "plat only receives pushes"},
			{"ls -la", "plat runs no commands over SSH"},
			{"git-receive-pack '/nope'", `no app named "nope"`},
			{"git-receive-pack '/../etc'", "is not an app"},
		} {
			status, stderr := run(t, c, tt.line)
			if status != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("%s: status %d, stderr %q; want 1 and %q", tt.line, status, stderr, tt.want)
			}
		}
	})
	t.Run("shell", func(t *testing.T) {
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		sess.Stderr = &stderr
		if err := sess.Shell(); err != nil {
			t.Fatal(err)
		}
		err = sess.Wait()
		var exit *ssh.ExitError
		if !errors.As(err, &exit) || exit.ExitStatus() != 1 || !strings.Contains(stderr.String(), "plat has no shell") {
			t.Fatalf("shell: %v, stderr %q", err, stderr.String())
		}
	})
	t.Run("session requests", func(t *testing.T) {
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
			t.Error("pty request accepted")
		}
		if err := sess.Setenv("GIT_PROTOCOL", "version=2"); err == nil {
			t.Error("env request accepted")
		}
		if err := sess.RequestSubsystem("sftp"); err == nil {
			t.Error("sftp subsystem accepted")
		}
		for _, req := range []string{"auth-agent-req@openssh.com", "x11-req", "signal"} {
			if ok, err := sess.SendRequest(req, true, nil); ok || err != nil {
				t.Errorf("%s request: ok %v, err %v; want refused", req, ok, err)
			}
		}
	})
	t.Run("channels and forwarding", func(t *testing.T) {
		var oce *ssh.OpenChannelError
		if _, err := c.Dial("tcp", s.d.apiAddr); !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
			t.Errorf("direct-tcpip (ssh -L): %v, want prohibited", err)
		}
		if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
			t.Error("tcpip-forward (ssh -R) accepted")
		}
		for _, typ := range []string{"x11", "auth-agent@openssh.com", "direct-streamlocal@openssh.com", "anything"} {
			if _, _, err := c.OpenChannel(typ, nil); !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
				t.Errorf("%s channel: %v, want prohibited", typ, err)
			}
		}
	})
	t.Run("a removed key runs nothing more on a connection it opened", func(t *testing.T) {
		c := s.client(t)
		s.d.mustPlat("keys:remove", "laptop")
		status, stderr := run(t, c, "git-receive-pack '/refusals'")
		if status != 1 || !strings.Contains(stderr, "was removed") {
			t.Fatalf("command after the removal: status %d, stderr %q", status, stderr)
		}
		s.d.mustPlat("keys:add", "laptop", s.keyFile+".pub")
	})
	t.Run("the connection still works", func(t *testing.T) {
		// After every refusal, a push's command is still accepted (and
		// here ends at once: the client sends nothing but a flush).
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		sess.Stdin = strings.NewReader("0000")
		var stdout bytes.Buffer
		sess.Stdout = &stdout
		if err := sess.Run("git-receive-pack 'refusals.git'"); err != nil || !strings.Contains(stdout.String(), "report-status") {
			t.Fatalf("receive-pack: %v, stdout %q", err, stdout.String())
		}
	})
}

// TestSSHKeysBadInput: keys:add refuses what is not one supported public
// key, and duplicates, with a reason. Fails on main: no keys commands.
func TestSSHKeysBadInput(t *testing.T) {
	s := newSSHSetup(t)
	d := s.d
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	pub, _ := os.ReadFile(s.keyFile + ".pub")
	for _, tt := range []struct{ name, file, want string }{
		{"ci", write("garbage.pub", "not a key\n"), "cannot parse the public key"},
		{"ci", write("dsa.pub", "ssh-dss AAAAB3NzaC1kc3MAAACBAP== x\n"), "DSA keys (ssh-dss) are not supported"},
		{"ci", s.keyFile, "is a private key"},
		{"laptop", s.otherKey + ".pub", `a key named "laptop" exists`},
		{"copy", write("same.pub", string(pub)), `already registered as "laptop"`},
		{"bad name", s.otherKey + ".pub", "key name"},
	} {
		out, err := d.plat("keys:add", tt.name, tt.file)
		if err == nil || !strings.Contains(out, tt.want) {
			t.Errorf("keys:add %s %s: err %v, output %q; want %q", tt.name, filepath.Base(tt.file), err, out, tt.want)
		}
	}
	// From stdin.
	cmd := exec.Command(platBin, "keys:add", "other", "-")
	cmd.Env, cmd.Stdin = d.env(), bytes.NewReader(mustRead(t, s.otherKey+".pub"))
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Added SSH key other") {
		t.Fatalf("keys:add other -: %v\n%s", err, out)
	}
	if out, err := d.plat("keys:remove", "nope"); err == nil || !strings.Contains(out, `no key named "nope"`) {
		t.Errorf("keys:remove nope: %v\n%s", err, out)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
