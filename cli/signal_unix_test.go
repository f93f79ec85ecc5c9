//go:build unix

package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestLogsFollowStopsOnInterrupt(t *testing.T) {
	streaming := make(chan struct{})
	newFake(t, map[string]http.HandlerFunc{"GET /api/apps/web/logs": func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"time":"2026-01-02T03:04:05Z","text":"hello"}`+"\n")
		w.(http.Flusher).Flush()
		close(streaming)
		<-r.Context().Done() // follow forever, until the client hangs up
	}})
	go func() {
		<-streaming
		time.Sleep(50 * time.Millisecond) // let the client copy the first line
		syscall.Kill(os.Getpid(), syscall.SIGINT)
	}()
	out, errOut, code := run("logs", "web", "-f")
	if code != 0 || out != "hello\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestLogsFollowResumes: `plat logs -f` whose stream ends (the daemon was
// upgraded) reconnects by itself, waits out a daemon between workers (503)
// and resumes after the last line it showed: nothing twice. On main it
// exited at the first end of the stream.
func TestLogsFollowResumes(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	var calls atomic.Int32
	resumed := make(chan string, 1)
	f := newFake(t, map[string]http.HandlerFunc{"GET /api/apps/web/logs": func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1: // two lines, then the daemon goes away
			fmt.Fprintf(w, `{"time":%q,"text":"one"}`+"\n"+`{"time":%q,"text":"two","replica":"web.2"}`+"\n",
				t0.Format(time.RFC3339Nano), t0.Add(time.Second).Format(time.RFC3339Nano))
		case 2:
			http.Error(w, "restarting", http.StatusServiceUnavailable)
		default:
			resumed <- r.URL.Query().Get("since")
			io.WriteString(w, `{"time":"2026-01-02T03:04:07Z","text":"three"}`+"\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}})
	go func() {
		<-resumed
		time.Sleep(100 * time.Millisecond)
		syscall.Kill(os.Getpid(), syscall.SIGINT)
	}()
	out, errOut, code := run("logs", "web", "-f")
	if code != 0 || out != "one\nweb.2 | two\nthree\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "reconnecting") {
		t.Errorf("stderr %q does not say it reconnects", errOut)
	}
	reqs := f.requests()
	if len(reqs) != 3 || !strings.Contains(reqs[2], "since="+strings.ReplaceAll(t0.Add(time.Second).Format(time.RFC3339Nano), ":", "%3A")) {
		t.Errorf("requests %v, want the third to resume after the second line", reqs)
	}
}

// TestLogsFollowStopsOnRefusal: a reconnect the daemon refuses (a revoked
// token) ends `plat logs -f` with the reason.
func TestLogsFollowStopsOnRefusal(t *testing.T) {
	var calls atomic.Int32
	newFake(t, map[string]http.HandlerFunc{"GET /api/apps/web/logs": func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			io.WriteString(w, `{"time":"2026-01-02T03:04:05Z","text":"one"}`+"\n")
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"token revoked"}`)
	}})
	out, errOut, code := run("logs", "web", "-f")
	if code == 0 || out != "one\n" || calls.Load() != 2 {
		t.Errorf("exit %d, stdout %q, stderr %q after %d requests; want a failure after one reconnect", code, out, errOut, calls.Load())
	}
}
