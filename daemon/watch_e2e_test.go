package daemon_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// watchLimit is how soon a daemon must stop with a dashboard watching:
// well under its 10 s shutdown timeout, which a held stream would use up.
const watchLimit = 3 * time.Second

// TestWatchStream: GET /api/apps/{app}/watch answers an unknown app with a
// 404 before any stream (so a browser does not retry it), streams the
// app's state as server-sent events, and ends when the daemon stops
// instead of holding its shutdown.
func TestWatchStream(t *testing.T) {
	d := startDaemon(t)
	d.createApp("web")
	get := func(path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+d.apiAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+d.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get("/api/apps/nope/watch")
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("watch of an unknown app: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	resp = get("/api/apps/web/watch")
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("watch: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	name := ""
	for len(events) < 5 && sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			name = v
		} else if v, ok := strings.CutPrefix(line, "data: "); ok {
			events[name] = v
		}
	}
	var app struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(events["app"]), &app); err != nil || app.Name != "web" || app.Status != "new" || events["releases"] != "[]" || events["ps"] != "[]" {
		t.Fatalf("first events: %v (%v)", events, err)
	}

	ended := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(ended)
	}()
	start := time.Now()
	d.stop(syscall.SIGTERM)
	if took := time.Since(start); took > watchLimit {
		t.Errorf("the daemon took %s to stop with a watch stream open, want under %s", took, watchLimit)
	}
	select {
	case <-ended:
	case <-time.After(time.Second):
		t.Error("the watch stream did not end with the daemon")
	}
}
