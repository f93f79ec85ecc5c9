package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	// DefaultSSHAddr is where `git push` over SSH is served; "" turns it off.
	DefaultSSHAddr = ":2222"
	// sshHandshakeTimeout bounds a connection's key exchange and
	// authentication.
	sshHandshakeTimeout = 20 * time.Second
	// sshMaxCommands bounds the commands one connection runs at once (git
	// runs one; a multiplexing client may run a few).
	sshMaxCommands = 4
	// sshServerVersion is the version string sent to clients.
	sshServerVersion = "SSH-2.0-plat"
	// Permissions extensions an authenticated connection carries.
	permKeyName        = "plat-key-name"
	permKeyFingerprint = "plat-key-fingerprint"
)

// sshOptions configure an sshServer.
type sshOptions struct {
	HostKey ssh.Signer
	// Authorize returns the name of the registered key with the given
	// SHA256 fingerprint, or an error when there is none.
	Authorize func(fingerprint string) (string, error)
	// Run runs an accepted command and returns its exit status.
	Run func(ctx context.Context, c *sshCommand) uint32
	// IdleTimeout ends a connection that runs no command, or whose command
	// waits this long on a write (a client that stopped reading).
	IdleTimeout time.Duration
	Logger      *slog.Logger
}

// sshCommand is one exec request of an authenticated connection.
type sshCommand struct {
	Line    string // as the client sent it, e.g. git-receive-pack '/myapp'
	KeyName string // the registered key the connection authenticated with
	Remote  string
	// Stdin reads what the client sends; Stdout and Stderr write to it.
	// Each write that waits longer than the idle timeout closes the
	// connection and fails.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// sshServer serves git pushes over SSH: public-key authentication with
// registered keys only, "session" channels only, and in them one "exec"
// request, which Run answers. Shells, ptys, environment, subsystems, port
// and agent forwarding and every other channel type are refused.
type sshServer struct {
	ln     net.Listener
	opts   sshOptions
	config *ssh.ServerConfig
	log    *slog.Logger

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool
	wg      sync.WaitGroup // connections being served
}

// newSSHServer makes a server for ln; Serve runs it.
func newSSHServer(ln net.Listener, opts sshOptions) *sshServer {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultPushIdleTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &sshServer{ln: ln, opts: opts, log: opts.Logger, conns: map[net.Conn]struct{}{}}
	// No PasswordCallback and no KeyboardInteractiveCallback: public keys
	// are the only way in.
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: s.publicKey,
		ServerVersion:     sshServerVersion,
	}
	s.config.AddHostKey(opts.HostKey)
	return s
}

func (s *sshServer) publicKey(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	fp := ssh.FingerprintSHA256(key)
	name, err := s.opts.Authorize(fp)
	if err != nil {
		return nil, err
	}
	return &ssh.Permissions{Extensions: map[string]string{permKeyName: name, permKeyFingerprint: fp}}, nil
}

// Serve accepts connections until Shutdown (it then returns nil) or the
// listener fails.
func (s *sshServer) Serve() error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("ssh accept: %w", err)
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.serveConn(c)
		}()
	}
}

// Shutdown stops accepting, waits for running commands until ctx ends,
// then closes the connections still open.
func (s *sshServer) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.ln.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
}

// serveConn authenticates one connection and serves its channels. Its
// context, under which commands (and so deploys) run, ends when the
// connection does.
func (s *sshServer) serveConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(sshHandshakeTimeout))
	conn, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		s.log.Info("ssh connection refused", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	c.SetDeadline(time.Time{})
	log := s.log.With("remote", c.RemoteAddr().String(), "key", conn.Permissions.Extensions[permKeyName])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { conn.Wait(); cancel() }()
	// Global requests (tcpip-forward, streamlocal-forward...) are refused.
	go ssh.DiscardRequests(reqs)

	w := &connWatch{idle: s.opts.IdleTimeout, close: func() { conn.Close() }}
	w.start()
	var sessions sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() != "session" {
			log.Info("ssh channel refused", "type", nc.ChannelType())
			nc.Reject(ssh.Prohibited, fmt.Sprintf("plat serves only git pushes over SSH: no %s channels", nc.ChannelType()))
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			log.Warn("ssh accept channel", "err", err)
			continue
		}
		sessions.Go(func() { s.session(ctx, conn, w, log, ch, chReqs) })
	}
	w.stop()
	sessions.Wait()
}

// session serves one session channel: its first exec request runs; a
// shell request gets a message; pty, env, subsystem, x11 and agent
// forwarding requests, and any other, are refused.
func (s *sshServer) session(ctx context.Context, conn *ssh.ServerConn, w *connWatch, log *slog.Logger, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "exec", "shell":
			var p struct{ Command string }
			if req.Type == "exec" {
				if err := ssh.Unmarshal(req.Payload, &p); err != nil {
					req.Reply(false, nil)
					continue
				}
			}
			if !w.begin() {
				log.Warn("ssh command refused: too many at once", "limit", sshMaxCommands)
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go ssh.DiscardRequests(reqs) // nothing after the command is honoured
			status := s.run(ctx, conn, w, log, ch, req.Type, p.Command)
			w.end()
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			ch.CloseWrite()
			return
		default:
			log.Info("ssh request refused", "type", req.Type)
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}

func (s *sshServer) run(ctx context.Context, conn *ssh.ServerConn, w *connWatch, log *slog.Logger, ch ssh.Channel, kind, line string) uint32 {
	name := conn.Permissions.Extensions[permKeyName]
	stderr := &idleIO{w: ch.Stderr(), idle: s.opts.IdleTimeout, onIdle: w.close}
	if kind == "shell" {
		log.Info("ssh shell refused")
		fmt.Fprintf(stderr, "Hi %s! You are authenticated, but plat has no shell: it only receives git pushes (git push platform main).\n", name)
		return 1
	}
	// A key removed after this connection was opened runs nothing more.
	if current, err := s.opts.Authorize(conn.Permissions.Extensions[permKeyFingerprint]); err != nil || current != name {
		log.Info("ssh command refused: key removed", "command", line)
		fmt.Fprintf(stderr, "plat: the key %q was removed; add it again with `plat keys:add`\n", name)
		return 1
	}
	return s.opts.Run(ctx, &sshCommand{
		Line: line, KeyName: name, Remote: conn.RemoteAddr().String(),
		// Reads are not bounded in time: git's client may keep its side
		// open while it waits for the deploy, which may take minutes.
		Stdin:  ch,
		Stdout: &idleIO{w: ch, idle: s.opts.IdleTimeout, onIdle: w.close},
		Stderr: stderr,
	})
}

// connWatch closes a connection that runs no command for idle, and
// counts the commands it runs.
type connWatch struct {
	idle  time.Duration
	close func()

	mu      sync.Mutex
	running int
	timer   *time.Timer
	stopped bool
}

func (w *connWatch) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = time.AfterFunc(w.idle, w.close)
}

// begin counts a command in; false when sshMaxCommands already run.
func (w *connWatch) begin() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running >= sshMaxCommands {
		return false
	}
	w.running++
	w.timer.Stop()
	return true
}

func (w *connWatch) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running--
	if w.running == 0 && !w.stopped {
		w.timer.Reset(w.idle)
	}
}

func (w *connWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}

// idleIO writes to w; a write that waits longer than idle calls onIdle
// (which closes the connection, so the write fails).
type idleIO struct {
	w      io.Writer
	idle   time.Duration
	onIdle func()
}

func (i *idleIO) Write(p []byte) (int, error) {
	t := time.AfterFunc(i.idle, i.onIdle)
	defer t.Stop()
	return i.w.Write(p)
}
