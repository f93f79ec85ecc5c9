package api

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationEncodesAsString(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{2 * time.Second, `"2s"`},
		{500 * time.Millisecond, `"500ms"`},
		{5 * time.Minute, `"5m0s"`},
		{0, `"0s"`},
	} {
		b, err := json.Marshal(Duration(tc.d))
		if err != nil || string(b) != tc.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tc.d, b, err, tc.want)
		}
	}
}

func TestDurationDecodes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{`"2s"`, 2 * time.Second, true},
		{`"1m30s"`, 90 * time.Second, true},
		{`""`, 0, true},
		{`null`, 0, true},
		{`2000000000`, 2 * time.Second, true}, // daemons before this package
		{`5e8`, 500 * time.Millisecond, true},
		{`"2 seconds"`, 0, false},
		{`true`, 0, false},
	} {
		var d Duration
		err := json.Unmarshal([]byte(tc.in), &d)
		if (err == nil) != tc.ok || (tc.ok && d.D() != tc.want) {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v, ok %v", tc.in, d.D(), err, tc.want, tc.ok)
		}
	}
}

// TestHealthCheckWire: zero durations are left out (they mean "the
// default"), the others travel as strings, and an old daemon's
// nanoseconds still read.
func TestHealthCheckWire(t *testing.T) {
	b, _ := json.Marshal(HealthCheck{Path: "/up", Timeout: Duration(2 * time.Second)})
	if string(b) != `{"path":"/up","timeout":"2s"}` {
		t.Errorf("marshal: %s", b)
	}
	var h HealthCheck
	if err := json.Unmarshal([]byte(`{"timeout":"2s","interval":500000000,"deadline":null}`), &h); err != nil {
		t.Fatal(err)
	}
	if h.Timeout.D() != 2*time.Second || h.Interval.D() != 500*time.Millisecond || h.Deadline != 0 {
		t.Errorf("got %+v", h)
	}
}

// TestStreamLine: each line of a stream has exactly the one key it is.
func TestStreamLine(t *testing.T) {
	for _, tc := range []struct {
		l    StreamLine
		want string
	}{
		{ProgressLine("Building v3"), `{"progress":"Building v3"}`},
		{ErrorLine("boom"), `{"error":"boom"}`},
		{StreamLine{Release: json.RawMessage(`{"version":3}`)}, `{"release":{"version":3}}`},
		{StreamLine{App: json.RawMessage(`{"name":"web"}`)}, `{"app":{"name":"web"}}`},
	} {
		if b, _ := json.Marshal(tc.l); string(b) != tc.want {
			t.Errorf("got %s, want %s", b, tc.want)
		}
	}
}
