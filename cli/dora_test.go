package cli

import (
	"net/http"
	"strings"
	"testing"
)

// doraJSON is a daemon's answer: a week with one 2-day trend period
// without deploys, and one with three.
const doraJSON = `{"app":"web","days":9,"fix_window":"1h0m0s",
 "from":"2026-03-01T00:00:00Z","to":"2026-03-10T00:00:00Z",
 "deployment_frequency":{"deploys":3,"per_day":0.33,"per_week":2.33,"band":"high"},
 "lead_time":{"median":"50h30m0s","samples":2,"band":"high"},
 "change_failure_rate":{"failed":1,"deploys":3,"rate":0.33,"band":"medium"},
 "time_to_restore":{"median":"25m0s","samples":1,"band":"elite"},
 "trend":[
  {"from":"2026-03-01T00:00:00Z","to":"2026-03-03T00:00:00Z","deployment_frequency":{"deploys":0,"per_day":0,"per_week":0},
   "lead_time":{"median":null,"samples":0},"change_failure_rate":{"failed":0,"deploys":0,"rate":null},"time_to_restore":{"median":null,"samples":0}},
  {"from":"2026-03-03T00:00:00Z","to":"2026-03-10T00:00:00Z","deployment_frequency":{"deploys":3,"per_day":0.43,"per_week":3,"band":"high"},
   "lead_time":{"median":"50h30m0s","samples":2,"band":"high"},"change_failure_rate":{"failed":1,"deploys":3,"rate":0.33,"band":"medium"},
   "time_to_restore":{"median":"25m0s","samples":1,"band":"elite"}}]}`

func TestDora(t *testing.T) {
	t.Setenv("TZ", "UTC")
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/apps/web/dora": canned(200, doraJSON),
		"GET /api/dora":          canned(200, strings.Replace(doraJSON, `"app":"web",`, "", 1)),
	})
	out, errOut, code := run("dora", "web", "--days", "9")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"DORA metrics of web, last 9 days",
		"deployment frequency   3 deploys (2.33/week)  high",
		"lead time for changes  2d2h (median of 2)     high",
		"change failure rate    33% (1 of 3)           medium",
		"time to restore        25m (median of 1)      elite",
		"2026-03-01  0        -          -             -",
		"2026-03-03  3        2d2h       33%           25m",
		"within 1h",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if reqs := f.requests(); reqs[len(reqs)-1] != "GET /api/apps/web/dora?days=9" {
		t.Errorf("requests %v", reqs)
	}
	if out, _, code := run("dora"); code != 0 || !strings.Contains(out, "DORA metrics of all apps, last 9 days") {
		t.Errorf("host: exit %d\n%s", code, out)
	}
	if out, _, code := run("dora", "--json"); code != 0 || !strings.Contains(out, `"change_failure_rate": {`) {
		t.Errorf("--json: exit %d\n%s", code, out)
	}
	if _, errOut, code := run("dora", "--days", "400"); code != 2 || !strings.Contains(errOut, "give 1 to 365") {
		t.Errorf("--days 400: exit %d, stderr %q", code, errOut)
	}
}
