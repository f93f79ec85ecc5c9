package authlimit

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// step is one event at an offset from the start: a failure from addr, or
// a check of whether addr may try (wantOK, and wantWait when refused).
type step struct {
	at       time.Duration
	addr     string
	fail     int // failures to record; 0: check instead
	wantOK   bool
	wantWait time.Duration
}

func TestLimiter(t *testing.T) {
	const a, b = "192.0.2.1", "192.0.2.2"
	tests := []struct {
		name     string
		steps    []step
		wantLogs int
	}{
		{"nothing failed", []step{{at: 0, addr: a, wantOK: true}}, 0},
		{"below the limit", []step{
			{at: 0, addr: a, fail: 9},
			{at: time.Second, addr: a, wantOK: true},
		}, 1},
		{"the limit locks out", []step{
			{at: 0, addr: a, fail: 10},
			{at: 0, addr: a, wantOK: false, wantWait: time.Minute},
			{at: 20 * time.Second, addr: a, wantOK: false, wantWait: 40 * time.Second},
		}, 2},
		{"other addresses are not affected", []step{
			{at: 0, addr: a, fail: 10},
			{at: time.Second, addr: b, wantOK: true},
		}, 2},
		{"lockout ends", []step{
			{at: 0, addr: a, fail: 10},
			{at: time.Minute, addr: a, wantOK: true},
		}, 2},
		{"failures spread over more than the window do not lock out", []step{
			{at: 0, addr: a, fail: 9},
			{at: 61 * time.Second, addr: a, fail: 1},
			{at: 62 * time.Second, addr: a, wantOK: true},
		}, 2},
		{"after a lockout the count starts over", []step{
			{at: 0, addr: a, fail: 10},
			{at: 30 * time.Second, addr: a, wantOK: false, wantWait: 30 * time.Second},
			{at: time.Minute, addr: a, fail: 1},
			{at: time.Minute, addr: a, wantOK: true},
			{at: time.Minute, addr: a, fail: 9},
			{at: time.Minute, addr: a, wantOK: false, wantWait: time.Minute},
		}, 5}, // burst, lockout, "lockout ended" (1 refused), burst, lockout
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			now := start
			var logs bytes.Buffer
			l := New(Options{Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			for i, s := range tt.steps {
				now = start.Add(s.at)
				if s.fail > 0 {
					for range s.fail {
						l.Fail(s.addr, "/api/apps")
					}
					continue
				}
				wait, ok := l.Allow(s.addr)
				if ok != s.wantOK || wait != s.wantWait {
					t.Errorf("step %d: Allow(%s) at +%s = %s, %v; want %s, %v", i, s.addr, s.at, wait, ok, s.wantWait, s.wantOK)
				}
			}
			if n := strings.Count(logs.String(), "\n"); n != tt.wantLogs {
				t.Errorf("%d log lines, want %d:\n%s", n, tt.wantLogs, logs.String())
			}
		})
	}
}

func TestLimiterLogNamesAddressAndCount(t *testing.T) {
	var logs bytes.Buffer
	l := New(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 25 {
		if _, ok := l.Allow("198.51.100.7"); ok {
			l.Fail("198.51.100.7", "/git/x.git/info/refs")
		}
	}
	out := logs.String()
	if !strings.Contains(out, "ip=198.51.100.7") || !strings.Contains(out, "failures=10") || strings.Count(out, "\n") != 2 {
		t.Errorf("log of 25 attempts (10 failures, then locked out):\n%s", out)
	}
}

func TestLimiterBounded(t *testing.T) {
	now := time.Now()
	l := New(Options{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	for i := range maxTracked + 500 {
		l.Fail(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), "/")
	}
	if n := l.Tracked(); n > maxTracked {
		t.Fatalf("tracking %d addresses, want at most %d", n, maxTracked)
	}
	now = now.Add(DefaultWindow) // the old bursts are over: room again
	l.Fail("192.0.2.9", "/")
	if n := l.Tracked(); n != 1 {
		t.Fatalf("after the window, tracking %d addresses, want 1", n)
	}
}

func TestNilLimiterAllows(t *testing.T) {
	var l *Limiter
	l.Fail("192.0.2.1", "/")
	if _, ok := l.Allow("192.0.2.1"); !ok {
		t.Fatal("nil limiter refused")
	}
}

func TestClientAddr(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"127.0.0.1:80", "127.0.0.1"},
		{"[::1]:80", "::1"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:80", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::9]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"@", "@"}, // a unix socket peer
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if got := ClientAddr(r); got != tt.want {
			t.Errorf("ClientAddr(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
