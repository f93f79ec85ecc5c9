package daemon

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestParseFD(t *testing.T) {
	tests := []struct {
		in   string
		role string
		fd   int
		ok   bool
	}{
		{"api=3", "api", 3, true},
		{"ctl=7", "ctl", 7, true},
		{"api=2", "", 0, false}, // stdio is never a socket of ours
		{"api", "", 0, false},
		{"api=x", "", 0, false},
	}
	for _, tt := range tests {
		role, fd, err := parseFD(tt.in)
		if (err == nil) != tt.ok || role != tt.role || fd != tt.fd {
			t.Errorf("parseFD(%q) = %q, %d, %v", tt.in, role, fd, err)
		}
	}
}

// TestGate: requests admitted before the store closes are waited for;
// later ones get a 503 that tells the client to retry.
func TestGate(t *testing.T) {
	var g gate
	release := make(chan struct{})
	h := g.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	admitted := make(chan struct{})
	go func() {
		close(admitted)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	<-admitted
	time.Sleep(20 * time.Millisecond) // let the request enter the gate
	if g.closeAndWait(50 * time.Millisecond) {
		t.Fatal("closeAndWait returned while a request was running")
	}
	close(release)
	if !g.closeAndWait(time.Second) {
		t.Fatal("closeAndWait timed out after the request ended")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("after close: %d %v, want 503 with Retry-After", rec.Code, rec.Header())
	}
}
