package daemon_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
)

// TestDebugRuntime reads a real daemon's runtime numbers: only with a token,
// and the open connections a client holds show up in them.
func TestDebugRuntime(t *testing.T) {
	d := startDaemon(t)
	url := "http://" + d.apiAddr + "/api/debug/runtime"

	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %d, want 401", resp.StatusCode)
	}

	type info struct {
		Goroutines       int     `json:"goroutines"`
		Threads          int     `json:"threads"`
		HeapObjectsBytes uint64  `json:"heap_objects_bytes"`
		OpenFDs          int     `json:"open_fds"`
		UptimeSeconds    float64 `json:"uptime_seconds"`
	}
	read := func() info {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+d.token)
		// A new connection each time, so the reading counts only the
		// connections held below.
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/debug/runtime: %d %s", resp.StatusCode, body)
		}
		var i info
		if err := json.Unmarshal(body, &i); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return i
	}
	before := read()
	if before.Goroutines <= 0 || before.Threads <= 0 || before.HeapObjectsBytes == 0 || before.OpenFDs <= 0 || before.UptimeSeconds <= 0 {
		t.Fatalf("implausible reading: %+v", before)
	}

	// Each idle connection costs the daemon a socket and a goroutine.
	const conns = 20
	for range conns {
		c, err := net.Dial("tcp", d.apiAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	var during info
	for range 50 { // the daemon accepts the connections asynchronously
		if during = read(); during.OpenFDs-before.OpenFDs >= conns {
			break
		}
	}
	if during.OpenFDs-before.OpenFDs < conns || during.Goroutines-before.Goroutines < conns {
		t.Errorf("with %d more connections: fds %d → %d, goroutines %d → %d", conns, before.OpenFDs, during.OpenFDs, before.Goroutines, during.Goroutines)
	}
}
