package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plat-paas/plat/store"
)

func TestHealthCheckerWait(t *testing.T) {
	fast := store.HealthCheck{Interval: time.Millisecond, Timeout: 50 * time.Millisecond, Deadline: 300 * time.Millisecond}
	tests := []struct {
		name    string
		results []int // status per attempt; 0 = connection error; last repeats
		exitAt  int   // attempt at which the container is gone (0 = never)
		wantErr string
	}{
		{name: "healthy at once", results: []int{200}},
		{name: "redirect and 404 count as up", results: []int{404}},
		{name: "healthy after refusals", results: []int{0, 0, 0, 302}},
		{name: "500 until the deadline", results: []int{500}, wantErr: "answered 500"},
		{name: "never listens", results: []int{0}, wantErr: "connection refused"},
		{name: "exits during the check", results: []int{0}, exitAt: 3, wantErr: "container exited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var attempts atomic.Int32
			h := healthChecker{
				check: fast,
				probe: func(ctx context.Context) (int, error) {
					n := int(attempts.Add(1))
					s := tt.results[min(n, len(tt.results))-1]
					if s == 0 {
						return 0, errors.New("dial tcp: connection refused")
					}
					return s, nil
				},
				alive: func(ctx context.Context) error {
					if tt.exitAt > 0 && int(attempts.Load()) >= tt.exitAt {
						return fmt.Errorf("%w with code 3", errExited)
					}
					return nil
				},
			}
			err := h.wait(context.Background())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("wait: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("wait: %v, want error containing %q", err, tt.wantErr)
			}
			if tt.exitAt > 0 && !errors.Is(err, errExited) {
				t.Fatalf("exit not reported as errExited: %v", err)
			}
		})
	}
}

func TestHealthCheckerStopsWithParentContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := healthChecker{
		check: store.HealthCheck{Interval: time.Millisecond, Deadline: time.Minute},
		probe: func(context.Context) (int, error) { cancel(); return 503, nil },
		alive: func(context.Context) error { return nil },
	}
	if err := h.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait: %v, want context.Canceled", err)
	}
}

func TestHTTPProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/up" {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	probe := httpProbe(srv.Client(), strings.TrimPrefix(srv.URL, "http://"), "/up")
	if status, err := probe(context.Background()); err != nil || status != http.StatusNoContent {
		t.Fatalf("probe: %d %v", status, err)
	}
}

func TestAppLocks(t *testing.T) {
	var l appLocks
	var out strings.Builder
	unlock, err := l.lockRelease(context.Background(), "a", &out)
	if err != nil || out.Len() != 0 {
		t.Fatalf("first lock: %v %q", err, out.String())
	}
	// Another app is independent.
	unlockB, err := l.lockRelease(context.Background(), "b", &out)
	if err != nil || out.Len() != 0 {
		t.Fatalf("lock of another app waited: %v %q", err, out.String())
	}
	unlockB()
	// The replica lock is free while the release lock is held.
	unlockR, err := l.lockReplicas(context.Background(), "a")
	if err != nil {
		t.Fatalf("replica lock while the release lock is held: %v", err)
	}
	unlockR()
	// A second lock of the same app waits, says so, and gives up with ctx.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.lockRelease(ctx, "a", &out); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock: %v", err)
	}
	if !strings.Contains(out.String(), "waiting") {
		t.Fatalf("waiting was not announced: %q", out.String())
	}
	got := make(chan struct{})
	go func() {
		u, err := l.lockRelease(context.Background(), "a", &out)
		if err == nil {
			u()
		}
		close(got)
	}()
	unlock()
	unlock() // idempotent
	select {
	case <-got:
	case <-time.After(time.Second):
		t.Fatal("waiter did not get the lock after unlock")
	}
}

func TestIndentWriter(t *testing.T) {
	var b strings.Builder
	w := indent(&b)
	fmt.Fprint(w, "one\ntw")
	fmt.Fprint(w, "o\nthree\n")
	if want := "       one\n       two\n       three\n"; b.String() != want {
		t.Fatalf("got %q want %q", b.String(), want)
	}
}
