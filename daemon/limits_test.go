package daemon_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
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

	pid := d.workerPID()
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

// stalledUpload opens a connection to addr that sends the head of a POST
// announcing 1 MB and 3 bytes of it, then nothing.
func stalledUpload(t *testing.T, addr, host, path string, header string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: 1048576\r\n\r\nabc", path, host, header); err != nil {
		t.Fatal(err)
	}
	return c
}

// answerOf reads the answer on c: its status, or 0 if the daemon closed
// the connection without one; it fails the test if neither comes in time.
func answerOf(t *testing.T, c net.Conn, within time.Duration) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("a stalled upload still held its request after %s", within)
	case err != nil:
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestStalledUploads: clients that send 3 bytes of a 1 MB body and stall
// neither scale an app up nor keep a scale-to-zero app awake, and after
// --body-idle-timeout each gets a 408 (router) or its connection closed
// (API), leaving nothing in flight. On main 8 such clients scaled an app
// from 1 to 3 replicas, kept a sleeping-capable app awake, and held their
// requests for good.
func TestStalledUploads(t *testing.T) {
	const (
		stalled  = 8
		bodyIdle = 8 * time.Second
	)
	d := startDaemon(t, "--body-idle-timeout", bodyIdle.String())
	d.deployedApp("busy", "v1")
	d.mustPlat("scale", "busy", "--min", "1", "--max", "3", "--target", "1")
	d.deployedApp("nap", "v1")

	start := time.Now()
	var busy []net.Conn
	for range stalled {
		busy = append(busy, stalledUpload(t, d.httpAddr, "busy.localhost", "/?readbody=1", ""))
	}
	api := stalledUpload(t, d.apiAddr, d.apiAddr, "/api/apps", "Authorization: Bearer "+d.token+"\r\nContent-Type: application/json\r\n")
	d.mustPlat("scale", "nap", "--min", "0", "--idle", "2s")
	for range stalled {
		stalledUpload(t, d.httpAddr, "nap.localhost", "/?readbody=1", "")
	}

	// The scale-to-zero app sleeps though its uploads never end.
	waitFor(t, bodyIdle-time.Since(start), "the app with stalled uploads to sleep", func() bool {
		return d.appState("nap").Status == "sleeping"
	})
	// Far past the autoscaler's 2s scale-up delay, busy still runs 1.
	if wait := 6*time.Second - time.Since(start); wait > 0 {
		time.Sleep(wait)
	}
	if got := d.appState("busy").Replicas; got != 1 {
		t.Errorf("8 stalled uploads scaled the app to %d replicas; want 1", got)
	}
	if d.eventCount("busy", "autoscaled") != 0 {
		t.Errorf("the autoscaler acted on stalled uploads: %+v", d.events("busy"))
	}

	for i, c := range busy {
		if code := answerOf(t, c, bodyIdle+5*time.Second); code != http.StatusRequestTimeout {
			t.Errorf("stalled upload %d got %d; want 408", i, code)
		}
	}
	if code := answerOf(t, api, 5*time.Second); code != 0 && code < 400 {
		t.Errorf("stalled API request got %d; want an error or a closed connection", code)
	}
	t.Logf("stalled uploads ended %s after they started (--body-idle-timeout %s)", time.Since(start).Round(100*time.Millisecond), bodyIdle)
	var ps []struct {
		Name     string `json:"name"`
		InFlight int    `json:"in_flight"`
	}
	d.apiGet("/api/apps/busy/ps", &ps)
	for _, p := range ps {
		if p.InFlight != 0 {
			t.Errorf("replica %s still has %d requests in flight", p.Name, p.InFlight)
		}
	}
	for _, line := range strings.Split(d.log.String(), "\n") {
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, "app=busy") {
			t.Errorf("a stalled client logged as the app's error: %s", line)
		}
	}
	d.mustServe("busy", "version=v1")
}
