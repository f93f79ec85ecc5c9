package cli

import (
	"net/http"
	"strings"
	"testing"
)

const metricsJSON = `{"app":"web","since":"1h0m0s","step":"5m0s","interval":"1m0s","retention":"24h0m0s","now":"2026-01-02T15:05:00Z",
"totals":{"time":"2026-01-02T15:05:00Z","requests":120,"status_2xx":100,"status_4xx":10,"status_5xx":10,"bytes":1234567,"error_rate":0.0833,"p50_ms":12,"p95_ms":180,"p99_ms":0.5},
"points":[{"time":"2026-01-02T15:00:00Z","requests":100,"status_2xx":90,"status_5xx":10,"bytes":1200000,"in_flight":3,"error_rate":0.1,"p50_ms":12,"p95_ms":180,"p99_ms":300},
{"time":"2026-01-02T15:05:00Z","requests":0,"partial":true}],
"releases":[{"release":"v7","totals":{"requests":100,"status_2xx":90,"status_5xx":10,"error_rate":0.1,"p50_ms":12,"p95_ms":180,"p99_ms":300}},{"release":"v8","totals":{"requests":20,"status_2xx":10,"status_4xx":10}}],
"router_logs":false,"router_logs_dropped":0}`

func TestMetrics(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{"GET /api/apps/web/metrics": canned(200, metricsJSON)})
	out := runOK(t, []string{"metrics", "web"}, "web traffic, last 1h0m0s (rows of 5m0s; kept 24h0m0s, in memory)",
		"UNTIL", "5xx%", "p99", "total", "RELEASE", "v7", "v8", "router request lines are off for web (plat logs:router web on)")
	lines := strings.Split(out, "\n")
	var row, now, total string
	for _, l := range lines {
		switch f := strings.Fields(l); {
		case len(f) > 0 && f[0] == "now":
			now = l
		case len(f) > 0 && f[0] == "total":
			total = l
		case len(f) > 1 && f[1] == "100" && row == "":
			row = l
		}
	}
	for _, tt := range []struct{ line, want string }{
		{row, "10.0%"}, {row, "300ms"}, {row, "1.2MB"}, {total, "8.3%"}, {total, "0.50ms"}, {now, "-"},
	} {
		if !strings.Contains(tt.line, tt.want) {
			t.Errorf("row %q lacks %q\n%s", tt.line, tt.want, out)
		}
	}
	// Without --step the window is cut in ~12 rows of whole minutes.
	if reqs := f.requests(); len(reqs) != 1 || reqs[0] != "GET /api/apps/web/metrics?since=1h&step=5m0s" {
		t.Errorf("requests %v", reqs)
	}
	runOK(t, []string{"metrics", "web", "--json"}, `"router_logs_dropped"`)
}

func TestMetricsAndRouterLogsRejectedLocally(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"metrics", "web", "--since", "soon"}, `--since "soon": give a duration like 15m, 1h or 24h`},
		{[]string{"metrics", "web", "--step", "-1m"}, `--step "-1m": give a duration like 1m or 5m`},
		{[]string{"logs:router", "web", "maybe"}, "say on or off: plat logs:router web on"},
		{[]string{"logs", "web", "--source", "db"}, `--source "db": say app (the app's output) or router (its request lines)`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFake(t, nil)
			_, errOut, code := run(tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.wantErr)
			}
			if reqs := f.requests(); len(reqs) != 0 {
				t.Errorf("sent %v", reqs)
			}
		})
	}
}
