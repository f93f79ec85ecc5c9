package daemon_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestStrategySettings: through the real CLI and daemon, an app's release
// strategy is blue-green until `plat strategy:set` chooses another; unset
// flags take their defaults; `plat strategy` (and --json, apps:info) shows
// the effective settings; each change is an event; bad input is refused
// with the reason and changes nothing; the setting survives a restart.
func TestStrategySettings(t *testing.T) {
	t.Parallel() // its own daemon, ports and engine instance
	d := startDaemon(t)
	d.createApp("web")

	show := func() map[string]any {
		t.Helper()
		var s map[string]any
		if err := json.Unmarshal([]byte(d.mustPlat("strategy", "web", "--json")), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	contains := func(what, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: %q not in\n%s", what, w, out)
			}
		}
	}

	contains("plat strategy (new app)", d.mustPlat("strategy", "web"), "strategy:", "blue-green")
	if s := show(); s["name"] != "blue-green" || len(s) != 2 { // name and description only
		t.Errorf("new app's strategy JSON = %v, want blue-green without settings", s)
	}

	out := d.mustPlat("strategy:set", "web", "canary", "--steps", "10,50,100", "--step-time", "5s", "--max-error-rate", "2", "--max-p99", "800ms")
	contains("strategy:set canary", out, "web strategy set to canary", "10%, 50%, 100% of requests", "step time:", "5s",
		"max error rate:  2%", "max p99:         800ms", "min requests:    50 per step") // 50: the default
	s := show()
	want := map[string]any{"name": "canary", "steps": []any{10.0, 50.0, 100.0}, "step_time": "5s", "max_error_rate": 2.0,
		"max_p99": "800ms", "min_requests": 50.0,
		"description": "canary (steps 10,50,100 every 5s, max 5xx 2%, max p99 800ms, min 50 requests per step)"}
	if got, wantJSON := strategyJSON(t, s), strategyJSON(t, want); got != wantJSON {
		t.Errorf("plat strategy --json = %s, want %s", got, wantJSON)
	}
	if !d.hasEvent("web", "strategy", "strategy set to canary (steps 10,50,100 every 5s, max 5xx 2%, max p99 800ms, min 50 requests per step)") {
		t.Errorf("no strategy event: %+v", d.events("web"))
	}
	contains("apps:info", d.mustPlat("apps:info", "web"), "strategy:", "canary (steps 10,50,100 every 5s")

	contains("strategy:set canary with defaults", d.mustPlat("strategy:set", "web", "canary"), "10%, 50%, 100%", "step time:       1m", "max error rate:  1%", "max p99:         off")
	contains("strategy:set rolling", d.mustPlat("strategy:set", "web", "rolling"), "web strategy set to rolling", "batch:", "1 replica(s) at a time")
	if s := show(); s["batch"] != 1.0 || s["steps"] != nil {
		t.Errorf("rolling JSON = %v, want batch 1 and no canary settings", s)
	}
	contains("strategy:set in-place", d.mustPlat("strategy:set", "web", "in-place", "--hold", "5s"), "hold:", "5s")

	// Refused, with the reason, and nothing changes.
	for _, tt := range []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"strategy:set", "web", "canary", "--batch", "2"}, 1, "batch is not a setting of canary: canary takes steps, step_time"},
		{[]string{"strategy:set", "web", "blue-green", "--hold", "5s"}, 1, "hold is not a setting of blue-green"},
		{[]string{"strategy:set", "web", "recreate"}, 1, `unknown strategy "recreate": choose one of blue-green, canary, rolling, in-place`},
		{[]string{"strategy:set", "web", "canary", "--steps", "50,10,100"}, 1, "do not increase at 10%"},
		{[]string{"strategy:set", "web", "canary", "--steps", "10,50"}, 1, "end at 50%, not 100%"},
		{[]string{"strategy:set", "web", "canary", "--max-error-rate", "101"}, 1, "max_error_rate 101 is out of range"},
		{[]string{"strategy:set", "web", "canary", "--step-time", "soon"}, 1, `step_time "soon" is not a duration`},
		{[]string{"strategy:set", "web", "rolling", "--batch", "0"}, 1, "batch 0 is out of range"},
		{[]string{"strategy:set", "web", "canary", "--steps", "ten"}, 2, "give whole percentages"},
		{[]string{"strategy:set", "web"}, 2, "not enough arguments"},
		{[]string{"strategy", "nope"}, 1, `no app named "nope"`},
		{[]string{"strategy:set", "nope", "canary"}, 1, `no app named "nope"`},
	} {
		out, err := d.plat(tt.args...)
		code := 0
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.wantCode || !strings.Contains(out, tt.want) {
			t.Errorf("plat %s: exit %d %q, want exit %d and %q", strings.Join(tt.args, " "), code, out, tt.wantCode, tt.want)
		}
	}
	if s := show(); s["name"] != "in-place" || s["hold"] != "5s" {
		t.Errorf("after refused changes the strategy is %v, want in-place with hold 5s", s)
	}

	// The API directly: strict JSON, 400 with the reason, 404 for an unknown app.
	for _, tt := range []struct {
		method, path, body string
		wantCode           int
		want               string
	}{
		{http.MethodPut, "/api/apps/web/strategy", ``, 400, "say which strategy"},
		{http.MethodPut, "/api/apps/web/strategy", `{"name":"canary","step-time":"5s"}`, 400, `unknown field \"step-time\"`},
		{http.MethodPut, "/api/apps/web/strategy", `{"name":"canary","steps":"10,100"}`, 400, "strategy is not valid"},
		{http.MethodPut, "/api/apps/nope/strategy", `{"name":"canary"}`, 404, "no app named"},
		{http.MethodGet, "/api/apps/nope/strategy", ``, 404, "no app named"},
		{http.MethodPut, "/api/apps/web/strategy", `{"name":"canary","steps":[20,100],"min_requests":0,"max_error_rate":0}`, 200, `"min_requests": 0`},
	} {
		code, body := d.apiCall(tt.method, tt.path, tt.body)
		if code != tt.wantCode || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s %s: %d %s, want %d and %q", tt.method, tt.path, tt.body, code, body, tt.wantCode, tt.want)
		}
	}

	d.restart(syscall.SIGTERM)
	if s := show(); s["name"] != "canary" || s["min_requests"] != 0.0 || s["max_error_rate"] != 0.0 || s["step_time"] != "1m" {
		t.Errorf("after a restart the strategy is %v, want the canary set through the API", s)
	}
}

func strategyJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
