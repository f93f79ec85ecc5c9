package daemon

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// `plat daemon` is two processes of the same binary. The supervisor opens
// the listening sockets once and runs the daemon proper as a worker child
// that inherits them; it does nothing else, so it stays small and does not
// crash with the worker. While no worker accepts (a crashed one being
// replaced, an upgrade handing over), connections wait in the kernel's
// backlog instead of being refused.
//
// Signals to the supervisor:
//   - SIGTERM, SIGINT: graceful stop (forwarded to the worker; the app
//     containers keep running for the next daemon);
//   - SIGHUP: upgrade. The supervisor re-executes its binary's path (the
//     new binary, if one was put there) keeping its PID and the listening
//     sockets; the new supervisor starts a new worker and the old worker
//     hands the store over to it and drains (see handOver).
//
// The supervisor and each worker talk over a socketpair, one line per
// message: the worker says "prepared" (about to open the store), "ready"
// (accepting) and "released" (its store is closed); the supervisor says
// "drain" (hand over to the new worker). A worker whose supervisor is gone
// (the socket reads EOF) stops gracefully.

// Environment markers between the processes.
const (
	// envWorker marks a worker and says which inherited fd is what:
	// "api=3,http=4,local=5,https=6,ctl=7[,upgrade=1]".
	envWorker = "PLAT_DAEMON_WORKER"
	// envHandOver carries a supervisor's state across its re-exec:
	// "api=3,...;worker=PID:FD;since=UNIXNANO".
	envHandOver = "PLAT_DAEMON_HANDOVER"
)

// Control messages.
const (
	msgPrepared = "prepared"
	msgReady    = "ready"
	msgReleased = "released"
	msgDrain    = "drain"
)

// Supervisor timings.
const (
	// restartBackoffMax caps the wait between restarts of a worker that
	// keeps dying right after it started.
	restartBackoffMax = 5 * time.Second
	// crashLoopWindow: a worker dying sooner than this after its start
	// makes the next restart wait (doubling from restartBackoffMin).
	crashLoopWindow   = 2 * time.Second
	restartBackoffMin = 100 * time.Millisecond
	// binaryCheckTimeout bounds `plat version` of the new binary before an
	// upgrade executes it.
	binaryCheckTimeout = 10 * time.Second
	pidFileName        = "daemon.pid"
)

// Listener roles, in the order they are opened and passed on.
const (
	roleAPI     = "api"
	roleHTTP    = "http"
	roleLocal   = "local"
	roleHTTPS   = "https"
	roleSSH     = "ssh"
	roleMetrics = "metrics"
	roleCtl     = "ctl"
)

// workerExe is what a supervisor runs its workers from: its own image, so
// a binary replaced on disk takes effect only with an upgrade (SIGHUP),
// never half-way by a crash restart.
const workerExe = "/proc/self/exe"

// supervisor holds the listening sockets and runs the worker.
type supervisor struct {
	cfg   Config
	log   *slog.Logger
	exe   string   // path re-executed on upgrade
	argv  []string // os.Args
	roles []string
	fds   map[string]int // the listening sockets, raw (see listen)

	sigs     chan os.Signal
	events   chan workerEvent
	current  *worker // the worker that serves (or is starting to)
	old      *worker // the worker an upgrade replaces, while it drains
	since    time.Time
	ready    bool // some worker was ready: later failures restart instead of exiting
	pending  bool // an upgrade asked for while another was running or the worker starting
	stopping bool
	backoff  time.Duration
}

// worker is one worker process as the supervisor sees it.
type worker struct {
	pid      int
	proc     *os.Process
	ctl      int // the supervisor's end of the control socketpair
	conn     net.Conn
	started  time.Time
	upgrade  bool // started by an upgrade: takes the store from old
	prepared bool
	isReady  bool
	draining bool
	killer   *time.Timer
}

type workerEvent struct {
	w      *worker
	msg    string // a control message, or "" when the worker exited
	status string // how it exited
	start  bool   // restart timer fired
}

func (w *worker) send(msg string) {
	if w.conn != nil {
		_ = w.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = fmt.Fprintln(w.conn, msg)
	}
}

// supervise runs `plat daemon`: the supervisor, until it is stopped.
func supervise(cfg Config, log *slog.Logger) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	exe, err := os.Executable()
	if err != nil {
		log.Error("plat daemon: find own executable", "err", err)
		return 1
	}
	s := &supervisor{sigs: sigs, cfg: cfg, log: log.With("process", "supervisor"), exe: exe, argv: os.Args, fds: map[string]int{}, events: make(chan workerEvent, 16)}
	state := os.Getenv(envHandOver)
	os.Unsetenv(envHandOver)
	if state != "" {
		if err := s.adopt(state); err != nil {
			s.log.Error("plat daemon: take over from the previous supervisor", "err", err)
			return 1
		}
	} else if err := s.listen(); err != nil {
		log.Error("plat daemon stopped", "err", err)
		return 1
	}
	s.writePID()
	if s.current, err = s.startWorker(s.old != nil); err != nil {
		if s.old == nil {
			log.Error("plat daemon: start the worker", "err", err)
			return 1
		}
		s.log.Error("upgrade: cannot start the new worker; the old one keeps serving", "err", err)
		s.current, s.old = s.old, nil
	}
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				s.upgrade()
			default:
				s.stop()
			}
		case ev := <-s.events:
			if done, code := s.handle(ev); done {
				s.cleanup()
				return code
			}
		}
	}
}

// listen opens the daemon's listening sockets.
func (s *supervisor) listen() error {
	cfg := s.cfg
	open := func(role, network, addr, what string) error {
		ln, err := net.Listen(network, addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", what, err)
		}
		defer ln.Close()
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false) // the copy keeps the socket; cleanup removes the path
		}
		// A raw copy of the descriptor, never an *os.File: File and Fd
		// would switch the socket, shared with the workers, to blocking.
		fd, err := dupFD(ln.(syscall.Conn))
		if err != nil {
			return fmt.Errorf("listen on %s: %w", what, err)
		}
		s.roles = append(s.roles, role)
		s.fds[role] = fd
		return nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := open(roleAPI, "tcp", cfg.APIAddr, "API address"); err != nil {
		return err
	}
	if err := open(roleHTTP, "tcp", cfg.HTTPAddr, "router address"); err != nil {
		return err
	}
	sock := filepath.Join(cfg.DataDir, socketName)
	_ = os.Remove(sock)
	if err := open(roleLocal, "unix", sock, "local socket"); err != nil {
		return err
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		return fmt.Errorf("restrict local socket: %w", err)
	}
	if cfg.HTTPSAddr != "" {
		if err := open(roleHTTPS, "tcp", cfg.HTTPSAddr, "router HTTPS address"); err != nil {
			return err
		}
	}
	if cfg.MetricsAddr != "" {
		if err := open(roleMetrics, "tcp", cfg.MetricsAddr, "metrics address"); err != nil {
			return err
		}
	}
	if cfg.SSHAddr != "" {
		if err := open(roleSSH, "tcp", cfg.SSHAddr, "SSH address"); err != nil {
			return err
		}
	}
	return nil
}

// startWorker starts a worker with the listening sockets and a control
// socket. upgrade makes it wait for the old worker's store.
func (s *supervisor) startWorker(upgrade bool) (*worker, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mine, theirs := fds[0], fds[1]
	defer syscall.Close(theirs)
	files := []uintptr{0, 1, 2}
	var spec []string
	for _, role := range s.roles {
		files = append(files, uintptr(s.fds[role]))
		spec = append(spec, fmt.Sprintf("%s=%d", role, len(files)-1))
	}
	files = append(files, uintptr(theirs))
	spec = append(spec, fmt.Sprintf("%s=%d", roleCtl, len(files)-1))
	if upgrade {
		spec = append(spec, "upgrade=1")
	}
	env := append(os.Environ(), envWorker+"="+strings.Join(spec, ","))
	pid, err := syscall.ForkExec(workerExe, s.argv, &syscall.ProcAttr{Env: env, Files: files})
	if err != nil {
		syscall.Close(mine)
		return nil, fmt.Errorf("start worker: %w", err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		syscall.Close(mine)
		return nil, fmt.Errorf("start worker: %w", err)
	}
	w := &worker{pid: pid, proc: proc, ctl: mine, started: time.Now(), upgrade: upgrade}
	s.watch(w)
	s.log.Info("worker started", "pid", w.pid, "upgrade", upgrade)
	return w, nil
}

// watch relays w's messages and its exit to the supervisor's loop.
func (s *supervisor) watch(w *worker) {
	if fd, err := syscall.Dup(w.ctl); err == nil {
		f := os.NewFile(uintptr(fd), "plat-worker-control")
		conn, err := net.FileConn(f)
		f.Close()
		if err == nil {
			w.conn = conn
			go func() {
				sc := bufio.NewScanner(conn)
				for sc.Scan() {
					s.events <- workerEvent{w: w, msg: sc.Text()}
				}
			}()
		} else {
			s.log.Warn("worker control socket", "pid", w.pid, "err", err)
		}
	}
	go func() {
		st, err := w.proc.Wait()
		status := ""
		if err != nil {
			status = err.Error()
		} else {
			status = st.String()
		}
		s.events <- workerEvent{w: w, status: status}
	}()
}

// handle acts on one worker event; done ends the supervisor with code.
func (s *supervisor) handle(ev workerEvent) (done bool, code int) {
	w := ev.w
	switch {
	case ev.start:
		if s.stopping || s.current != nil {
			return false, 0
		}
		// While an old worker still drains, the new one waits for its store.
		nw, err := s.startWorker(s.old != nil)
		if err != nil {
			s.log.Error("restart the worker", "err", err)
			s.scheduleRestart()
			return false, 0
		}
		s.current = nw
	case ev.msg == msgPrepared:
		w.prepared = true
		if w == s.current && s.old != nil && !s.old.draining {
			// The new worker is up to the point of needing the store:
			// the old one now releases it and stops accepting.
			s.old.draining = true
			s.old.send(msgDrain)
			s.log.Info("upgrade: the new worker is prepared; the old one hands over", "old", s.old.pid, "new", w.pid)
			old := s.old
			s.old.killer = time.AfterFunc(s.cfg.upgradeTimeout()+4*shutdownTimeout, func() {
				s.log.Warn("upgrade: the old worker did not finish draining in time; killing it", "pid", old.pid)
				_ = old.proc.Kill()
			})
		}
	case ev.msg == msgReady:
		w.isReady, s.ready = true, true
		s.backoff = 0
		if w.upgrade && w == s.current {
			s.log.Info("plat daemon upgraded: the new worker serves", "pid", w.pid, "took", time.Since(s.since).Round(time.Millisecond))
		}
	case ev.msg == msgReleased:
		s.log.Info("the old worker released the store", "pid", w.pid)
	case ev.msg != "":
		s.log.Warn("unknown message from a worker", "pid", w.pid, "msg", ev.msg)
	default: // exited
		if w.killer != nil {
			w.killer.Stop()
		}
		if w.conn != nil {
			w.conn.Close()
		}
		syscall.Close(w.ctl)
		switch w {
		case s.old:
			s.log.Info("the old worker exited", "pid", w.pid, "status", ev.status)
			s.old = nil
		case s.current:
			s.current = nil
			switch {
			case s.stopping:
			case w.upgrade && !w.prepared && s.old != nil && !s.old.draining:
				s.log.Error("upgrade failed: the new worker exited before it started; the old one keeps serving", "pid", w.pid, "status", ev.status)
				s.current, s.old = s.old, nil
			case !s.ready && !w.upgrade:
				s.log.Error("plat daemon stopped: the worker exited before it served", "status", ev.status)
				return true, 1
			default:
				s.log.Error("the worker died; starting a new one on the same sockets", "pid", w.pid, "status", ev.status, "ran", time.Since(w.started).Round(time.Millisecond))
				if time.Since(w.started) < crashLoopWindow {
					s.scheduleRestart()
				} else {
					s.handle(workerEvent{start: true})
				}
			}
		}
		if s.stopping && s.current == nil && s.old == nil {
			return true, 0
		}
	}
	if s.pending && !s.stopping && s.old == nil && s.current != nil && s.current.isReady {
		s.upgrade()
	}
	return false, 0
}

// scheduleRestart starts a worker after a growing delay.
func (s *supervisor) scheduleRestart() {
	s.backoff = min(max(2*s.backoff, restartBackoffMin), restartBackoffMax)
	time.AfterFunc(s.backoff, func() { s.events <- workerEvent{start: true} })
}

// stop forwards a graceful stop to the workers. The listening sockets are
// closed at once: a stopping daemon refuses new connections rather than
// queueing them for no one.
func (s *supervisor) stop() {
	if s.stopping {
		return
	}
	s.stopping = true
	s.log.Info("stopping")
	for _, fd := range s.fds {
		syscall.Close(fd)
	}
	for _, w := range []*worker{s.current, s.old} {
		if w != nil {
			_ = w.proc.Signal(syscall.SIGTERM)
			w.killer = time.AfterFunc(3*shutdownTimeout, func() { _ = w.proc.Kill() })
		}
	}
	if s.current == nil && s.old == nil { // between restarts: nothing to wait for
		go func() { s.events <- workerEvent{w: &worker{ctl: -1}, status: "none"} }()
	}
}

// cleanup removes the socket path and the pid file.
func (s *supervisor) cleanup() {
	if s.stopping {
		_ = os.Remove(filepath.Join(s.cfg.DataDir, socketName))
	}
	pidFile := filepath.Join(s.cfg.DataDir, pidFileName)
	if b, err := os.ReadFile(pidFile); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		_ = os.Remove(pidFile)
	}
}

// writePID records the supervisor's PID (it stays the same across
// upgrades) for `kill -HUP` and systemd's PIDFile.
func (s *supervisor) writePID() {
	if err := os.WriteFile(filepath.Join(s.cfg.DataDir, pidFileName), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		s.log.Warn("write pid file", "err", err)
	}
}

// upgrade re-executes the supervisor from its path (the new binary),
// keeping the PID, the listening sockets and the serving worker, which the
// new supervisor replaces (see supervise and adopt).
func (s *supervisor) upgrade() {
	switch {
	case s.stopping:
		return
	case s.old != nil || s.current == nil || !s.current.isReady:
		// One hand-over at a time: this one starts when the running one
		// ends (the old worker exited, the new one serves).
		if !s.pending {
			s.log.Info("upgrade queued until the running upgrade or worker start finishes")
		}
		s.pending = true
		return
	}
	s.pending = false
	since := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), binaryCheckTimeout)
	out, err := exec.CommandContext(ctx, s.exe, "version").CombinedOutput()
	cancel()
	if err != nil {
		s.log.Error("upgrade aborted: the binary does not run; the daemon keeps serving", "path", s.exe, "err", err, "output", strings.TrimSpace(string(out)))
		return
	}
	s.log.Info("upgrading", "path", s.exe, "to", strings.TrimSpace(string(out)))
	var spec []string
	keep := []int{s.current.ctl}
	for _, role := range s.roles {
		spec = append(spec, fmt.Sprintf("%s=%d", role, s.fds[role]))
		keep = append(keep, s.fds[role])
	}
	state := fmt.Sprintf("%s;worker=%d:%d;since=%d", strings.Join(spec, ","), s.current.pid, s.current.ctl, since.UnixNano())
	for _, fd := range keep {
		if err := setCloseOnExec(fd, false); err != nil {
			s.log.Error("upgrade aborted", "err", err)
			return
		}
	}
	// A SIGHUP during the exec would kill a process without a handler;
	// ignored signals stay ignored across exec, until supervise handles it.
	signal.Ignore(syscall.SIGHUP)
	env := append(os.Environ(), envHandOver+"="+state)
	err = syscall.Exec(s.exe, s.argv, env)
	// Only reached when the exec failed.
	signal.Notify(s.sigs, syscall.SIGHUP)
	for _, fd := range keep {
		_ = setCloseOnExec(fd, true)
	}
	s.log.Error("upgrade aborted: exec the new binary; the daemon keeps serving", "path", s.exe, "err", err)
}

// adopt takes over the listening sockets and the serving worker from the
// supervisor that re-executed into this one.
func (s *supervisor) adopt(state string) error {
	parts := strings.Split(state, ";")
	if len(parts) != 3 {
		return fmt.Errorf("bad hand-over state %q", state)
	}
	for _, kv := range strings.Split(parts[0], ",") {
		role, fd, err := parseFD(kv)
		if err != nil {
			return err
		}
		if err := setCloseOnExec(fd, true); err != nil {
			return err
		}
		s.roles = append(s.roles, role)
		s.fds[role] = fd
	}
	pidFD, ok := strings.CutPrefix(parts[1], "worker=")
	pidStr, fdStr, ok2 := strings.Cut(pidFD, ":")
	pid, err1 := strconv.Atoi(pidStr)
	fd, err2 := strconv.Atoi(fdStr)
	if !ok || !ok2 || err1 != nil || err2 != nil {
		return fmt.Errorf("bad worker in hand-over state %q", parts[1])
	}
	if ns, err := strconv.ParseInt(strings.TrimPrefix(parts[2], "since="), 10, 64); err == nil {
		s.since = time.Unix(0, ns)
	}
	if err := setCloseOnExec(fd, true); err != nil {
		return err
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return fmt.Errorf("find the old worker %d: %w", pid, err)
	}
	s.old = &worker{pid: pid, proc: proc, ctl: fd, isReady: true}
	s.ready = true
	s.watch(s.old)
	s.log.Info("upgrade: took over the listening sockets and the serving worker", "old", pid)
	return nil
}

func parseFD(kv string) (string, int, error) {
	k, v, ok := strings.Cut(kv, "=")
	n, err := strconv.Atoi(v)
	if !ok || err != nil || n < 3 {
		return "", 0, fmt.Errorf("bad inherited descriptor %q", kv)
	}
	return k, n, nil
}

func setCloseOnExec(fd int, on bool) error {
	flag := 0
	if on {
		flag = syscall.FD_CLOEXEC
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, uintptr(flag)); errno != 0 {
		return fmt.Errorf("set close-on-exec of descriptor %d: %w", fd, errno)
	}
	return nil
}

// dupFD returns a close-on-exec copy of c's descriptor.
func dupFD(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd, dupErr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 3)
		if errno != 0 {
			dupErr = errno
			return
		}
		nfd = int(r)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, fmt.Errorf("duplicate descriptor: %w", dupErr)
	}
	return nfd, nil
}
