package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "app.localhost" {
			http.Error(w, "wrong host", http.StatusBadGateway)
		}
	}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer bad.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedAddr := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()

	tests := []struct {
		name                string
		target              string
		keepAlive           bool
		wantOK, wantNon2xx  bool
		wantErrors, wantErr bool
	}{
		{"keep-alive ok", strings.TrimPrefix(ok.URL, "http://"), true, true, false, false, false},
		{"new connections ok", strings.TrimPrefix(ok.URL, "http://"), false, true, false, false, false},
		{"503s", strings.TrimPrefix(bad.URL, "http://"), true, false, true, false, true},
		{"refused", closedAddr, false, false, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			r := Run(ctx, Options{Target: tt.target, Host: "app.localhost", Concurrency: 4, KeepAlive: tt.keepAlive})
			if r.Requests == 0 || r.Requests != r.OK+r.Non2xx+r.Errors {
				t.Fatalf("counts do not add up: %+v", r)
			}
			if (r.OK > 0) != tt.wantOK || (r.Non2xx > 0) != tt.wantNon2xx || (r.Errors > 0) != tt.wantErrors {
				t.Errorf("got %s", r)
			}
			if (r.Check() != nil) != tt.wantErr {
				t.Errorf("Check() = %v", r.Check())
			}
			if r.P50 > r.P99 || r.P99 > r.Max {
				t.Errorf("percentiles out of order: %s", r)
			}
		})
	}
}

// TestRunPause checks that Pause bounds the rate: 2 clients pausing 50ms
// for 300ms send about 12 requests, not thousands.
func TestRunPause(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r := Run(ctx, Options{Target: strings.TrimPrefix(srv.URL, "http://"), Host: "app.localhost", Concurrency: 2, KeepAlive: true, Pause: 50 * time.Millisecond})
	if r.Requests < 2 || r.Requests > 14 || r.Failed() > 0 {
		t.Fatalf("with 2 clients pausing 50ms for 300ms: %s; want 2 to 14 requests, none failed", r)
	}
}
