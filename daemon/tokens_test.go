package daemon

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/plat-paas/plat/store"
)

func TestParseLifetime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"12h", 12 * time.Hour, true},
		{"30m", 30 * time.Minute, true},
		{"2s", 2 * time.Second, true},
		{"1d12h", 36 * time.Hour, true},
		{"3650d", maxTokenLifetime, true},
		{"3651d", 0, false},
		{"99999999999999999999d", 0, false},
		{"", 0, false},
		{"0s", 0, false},
		{"90", 0, false},
		{"d", 0, false},
		{"1.5h", 0, false},
		{"500ms", 0, false},
		{"1w", 0, false},
		{"-1d", 0, false},
		{"1d ", 0, false},
	}
	for _, tt := range tests {
		got, err := parseLifetime(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseLifetime(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func newTestTokens(t *testing.T) (*tokenManager, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "plat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newTokenManager(st, slog.New(slog.DiscardHandler)), st
}

// TestLastUseWrittenAtMostOncePerMinute: every request updates the last
// use shown in the list, but the store is written at most once a minute.
func TestLastUseWrittenAtMostOncePerMinute(t *testing.T) {
	m, st := newTestTokens(t)
	secret, _, err := st.CreateTokenExpiring("ci", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Truncate(time.Second)
	now := start
	m.now = func() time.Time { return now }
	use := func() {
		t.Helper()
		tok, err := m.verify(secret)
		if err != nil {
			t.Fatal(err)
		}
		_, done, ok := m.track(context.Background(), tok)
		if !ok {
			t.Fatal("track refused a valid token")
		}
		done()
	}
	stored := func() time.Time {
		tok, ok := st.LookupToken(secret)
		if !ok {
			t.Fatal("token gone")
		}
		return tok.LastUsed
	}
	use()
	if !stored().Equal(start) {
		t.Fatalf("first use not stored: %v", stored())
	}
	for i := 1; i <= 30; i++ { // 30 requests over 30s
		now = start.Add(time.Duration(i) * time.Second)
		use()
	}
	if !stored().Equal(start) {
		t.Fatalf("stored last use moved within the minute: %v", stored())
	}
	tok, _ := st.LookupToken(secret)
	if got := m.lastUsed(tok); !got.Equal(start.Add(30 * time.Second)) {
		t.Fatalf("listed last use %v, want the latest request", got)
	}
	now = start.Add(61 * time.Second)
	use()
	if !stored().Equal(now) {
		t.Fatalf("stored last use after a minute = %v, want %v", stored(), now)
	}
}

// TestRevokeEndsRequestsInFlight: a token's admitted requests end when it
// is revoked (all but the revoking one), with the cause; a request checked
// just before the revocation is refused when it starts.
func TestRevokeEndsRequestsInFlight(t *testing.T) {
	m, st := newTestTokens(t)
	_, a, _ := st.CreateTokenExpiring("a", time.Time{})
	_, b, _ := st.CreateTokenExpiring("b", time.Time{})
	ctxA1, doneA1, _ := m.track(context.Background(), a)
	defer doneA1()
	ctxA2, doneA2, _ := m.track(context.Background(), a)
	defer doneA2()
	ctxB, doneB, _ := m.track(context.Background(), b)
	defer doneB()
	self, _ := authFromContext(ctxA2)

	if n := m.markRevoked(a.ID, self.conn); n != 1 {
		t.Fatalf("markRevoked ended %d requests, want 1", n)
	}
	if !errors.Is(context.Cause(ctxA1), errTokenRevoked) {
		t.Errorf("request of the revoked token: cause %v, want errTokenRevoked", context.Cause(ctxA1))
	}
	if ctxA2.Err() != nil {
		t.Error("the revoking request itself was ended")
	}
	if ctxB.Err() != nil {
		t.Error("another token's request was ended")
	}
	if _, _, ok := m.track(context.Background(), a); ok {
		t.Error("a revoked token's request was admitted")
	}
}

// TestExpiryEndsRequestsInFlight: a stream outlives nothing: it ends when
// its token expires.
func TestExpiryEndsRequestsInFlight(t *testing.T) {
	m, st := newTestTokens(t)
	_, tok, _ := st.CreateTokenExpiring("short", time.Now().Add(100*time.Millisecond))
	ctx, done, ok := m.track(context.Background(), tok)
	if !ok {
		t.Fatal("not admitted")
	}
	defer done()
	select {
	case <-ctx.Done():
		if !errors.Is(context.Cause(ctx), errTokenExpired) {
			t.Fatalf("cause %v, want errTokenExpired", context.Cause(ctx))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request still running after its token expired")
	}
}
