package daemon

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultUpgradeWait is how long `plat daemon upgrade` waits for the new
// worker to serve: the old one's deploys may take the upgrade timeout.
const DefaultUpgradeWait = DefaultUpgradeTimeout + time.Minute

// upgradePoll is how often `plat daemon upgrade` asks which worker serves.
const upgradePoll = 50 * time.Millisecond

// upgradeState is the server's part of an upgrade.
type upgradeState struct {
	supervised bool
	started    time.Time
	// pushes counts receive-pack requests, from before their lease exists.
	pushes atomic.Int64
	// upgrading is set when this worker hands over to a new one.
	upgrading atomic.Bool
}

// errUpgrading refuses a push that arrives while the old worker of an
// upgrade drains: git shows the message to the pusher.
const errUpgrading = "plat is being upgraded right now; push again in a few seconds"

// refuseDuringUpgrade answers 503 to a new push during a hand-over.
func (s *server) refuseDuringUpgrade(w http.ResponseWriter) bool {
	if !s.upgrading.Load() {
		return false
	}
	w.Header().Set("Retry-After", "5")
	http.Error(w, errUpgrading, http.StatusServiceUnavailable)
	return true
}

// daemonStatus is GET /admin/daemon on the local socket.
type daemonStatus struct {
	Version string    `json:"version"`
	PID     int       `json:"pid"`            // the worker serving this request
	Super   int       `json:"supervisor_pid"` // 0: no supervisor
	Started time.Time `json:"started"`
}

func (s *server) adminDaemon(w http.ResponseWriter, r *http.Request) {
	st := daemonStatus{Version: version(), PID: os.Getpid(), Started: s.started}
	if s.supervised {
		st.Super = os.Getppid()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

var errNoSupervisor = errors.New("the running plat daemon has no supervisor (it predates upgrades in place): restart it once (systemctl restart plat, or stop it and start `plat daemon`); later upgrades keep serving")

// upgradeMain runs `plat daemon upgrade`: SIGHUP to the supervisor of the
// daemon on --data, then it waits until a new worker serves.
func upgradeMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plat daemon upgrade", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", envOr("PLAT_DATA", DefaultDataDir), "the daemon's data directory")
	wait := fs.Duration("timeout", DefaultUpgradeWait, "how long to wait for the new version to serve")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: plat daemon upgrade [--data DIR] [--timeout D]\n\n"+
			"Restarts the running daemon from the plat binary now at its path (put the new one there first),\n"+
			"on the same listening sockets: no request is refused or dropped. Same as `kill -HUP $(cat DIR/daemon.pid)`\n"+
			"or `systemctl reload plat`, but waits until the new version serves.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := upgrade(*dataDir, *wait, stdout); err != nil {
		fmt.Fprintf(stderr, "plat: %v\n", err)
		return 1
	}
	return 0
}

func upgrade(dataDir string, wait time.Duration, stdout io.Writer) error {
	socket := filepath.Join(dataDir, socketName)
	before, err := daemonStatusAt(socket)
	if err != nil {
		return err
	}
	if before.Super == 0 {
		return errNoSupervisor
	}
	began := time.Now()
	if err := syscall.Kill(before.Super, syscall.SIGHUP); err != nil {
		return fmt.Errorf("signal the daemon's supervisor (pid %d): %w", before.Super, err)
	}
	fmt.Fprintf(stdout, "-----> Upgrading the plat daemon (pid %d, version %s)\n", before.Super, before.Version)
	for time.Since(began) < wait {
		time.Sleep(upgradePoll)
		now, err := daemonStatusAt(socket)
		if err != nil || now.PID == before.PID {
			continue
		}
		fmt.Fprintf(stdout, "=====> plat daemon upgraded: version %s → %s, serving after %s (pid %d kept; the old worker drains)\n",
			before.Version, now.Version, time.Since(began).Round(time.Millisecond), now.Super)
		return nil
	}
	return fmt.Errorf("the new version did not serve within %s; the daemon's log says why (journalctl -u plat, or the log file)", wait)
}

// daemonStatusAt asks the daemon on socket which worker serves.
func daemonStatusAt(socket string) (daemonStatus, error) {
	c := unixClient(socket)
	c.Timeout = 5 * time.Second
	c.Transport.(*http.Transport).DisableKeepAlives = true
	resp, err := c.Get("http://plat/admin/daemon")
	if err != nil {
		return daemonStatus{}, fmt.Errorf("cannot reach the daemon's socket %s: %w; is the daemon running, and are you the user it runs as?", socket, err)
	}
	defer resp.Body.Close()
	var st daemonStatus
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return st, errNoSupervisor
	case resp.StatusCode != http.StatusOK:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return st, fmt.Errorf("daemon status: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("daemon status: %w", err)
	}
	return st, nil
}
