package api

import (
	"encoding/json"
	"strings"
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

// TestWireNames pins the JSON names the dashboard and older CLIs read from
// the types that moved here from the daemon and the CLI.
func TestWireNames(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want []string
	}{
		{"metrics", AppMetrics{Since: Duration(time.Hour), Step: Duration(5 * time.Minute), Releases: []MetricsSeries{{Release: "3"}}},
			[]string{`"since":"1h0m0s"`, `"step":"5m0s"`, `"interval":"0s"`, `"retention":"0s"`, `"router_logs":false`, `"router_logs_dropped":0`, `"p99_ms":0`, `"status_5xx":0`, `"proxy_errors":0`, `"in_flight":0`, `"release":"3"`}},
		{"router logs", RouterLogs{App: "a", Enabled: true}, []string{`"app":"a"`, `"enabled":true`}},
		{"nodes", Node{Hostname: "h", Tasks: []NodeTask{{Replica: "r"}}}, []string{`"hostname":"h"`, `"availability":""`, `"leader":false`, `"engine":""`, `"replica":"r"`, `"addr":""`}},
		{"join command", JoinCommand{Command: "c"}, []string{`"command":"c"`}},
		{"run eof", RunControl{EOF: true}, []string{`{"eof":true}`}},
		{"build", BuildSettings{Target: "t"}, []string{`"args":null`, `"secrets":null`, `"target":"t"`, `"note":""`}},
		{"build change", BuildChange{SetArgs: map[string]string{"A": "1"}, UnsetSecrets: []string{"s"}}, []string{`"set_args":{"A":"1"}`, `"unset_secrets":["s"]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s lacks %s", b, w)
				}
			}
		})
	}
}
