package daemon_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// TestHostileAppHugeHeader: an app that answers with a 100 MiB response
// header gets its client a 502, the daemon's peak memory stays far below
// the header's size, the log names the app, and the app (and the daemon)
// keep serving the next request. On main the daemon went from 26 MB to
// 574 MB.
func TestHostileAppHugeHeader(t *testing.T) {
	const headerSize = 100 << 20
	d := startDaemon(t)
	d.deployedApp("hostile", "v1")

	pid := d.cmd.Process.Pid
	before := peakRSS(t, pid)
	code, body, err := d.get("hostile", fmt.Sprintf("/?hugeheader=%d", headerSize))
	if err != nil {
		t.Fatal(err)
	}
	if code != 502 || !strings.Contains(body, "too large") {
		t.Fatalf("got %d %q; want a 502 that says the headers were too large", code, body)
	}
	grew := peakRSS(t, pid) - before
	t.Logf("daemon peak RSS grew %.1f MiB (from %.1f MiB) refusing a %d MiB header", float64(grew)/(1<<20), float64(before)/(1<<20), headerSize>>20)
	limit := int64(32 << 20)
	if raceEnabled {
		limit *= 2 // the race detector's shadow memory
	}
	if grew > limit {
		t.Errorf("daemon peak RSS grew %d MiB; want under %d MiB", grew>>20, limit>>20)
	}
	waitFor(t, 5*time.Second, "a log line naming the app and the header limit", func() bool {
		log := d.log.String()
		return strings.Contains(log, "response headers over the limit") && strings.Contains(log, "app=hostile")
	})
	d.mustServe("hostile", "version=v1")
}
