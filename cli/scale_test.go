package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/plat-paas/plat/api"
)

const (
	psJSON = `[
		{"name":"plat-web-v3.1","label":"web.1","container_id":"0123456789abcdef0123","release":3,"state":"running","addr":"127.0.0.1:32768","in_flight":4},
		{"name":"plat-web-v3.2","label":"web.2","container_id":"fedcba9876543210fedc","release":3,"state":"starting","addr":"127.0.0.1:32769","in_flight":0}]`
	sleepingApp = `{"name":"web","status":"sleeping","active":3,"replicas":0,"url":"http://web.plat.test",
		"scale":{"min":0,"max":1,"idle":"5m0s","target":10},"deployed_at":"0001-01-01T00:00:00Z","health":{}}`
)

// scaleStream answers POST /scale like the daemon: progress, then the app
// with the settings of the request applied (fixed count: min = max).
func scaleStream(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	json.Unmarshal(b, &body)
	scale := map[string]any{"min": 1.0, "max": 3.0, "idle": "5m0s", "target": 10.0}
	if n, ok := body["replicas"]; ok {
		scale["min"], scale["max"] = n, n
	}
	for _, k := range []string{"min", "max", "idle", "target"} {
		if v, ok := body[k]; ok {
			scale[k] = v
		}
	}
	if d, ok := scale["idle"].(string); ok && d == "5m" {
		scale["idle"] = "5m0s"
	}
	app := map[string]any{"name": "web", "status": "running", "active": 3, "replicas": scale["min"], "scale": scale}
	ndjson(`{"progress":"scaling web"}`, `{"progress":"web.3 healthy"}`)(w, r)
	json.NewEncoder(w).Encode(map[string]any{"app": app})
}

func TestScaleChanges(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantBody string
		wantOut  string
	}{
		{"heroku form", []string{"scale", "web", "web=3"}, `{"replicas":3}`,
			"web: min 3, max 3, idle 5m, target 10; 3 replicas running now\n"},
		{"sleep when idle", []string{"scale", "web", "--min", "0", "--idle", "5m"}, `{"min":0,"idle":"5m"}`,
			"web: min 0, max 3, idle 5m, target 10 (sleeps after 5m without requests; autoscales 1-3); 0 replicas running now\n"},
		{"autoscale", []string{"scale", "--min", "1", "web", "--max", "5", "--target", "10"}, `{"min":1,"max":5,"target":10}`,
			"web: min 1, max 5, idle 5m, target 10 (autoscales 1-5); 1 replica running now\n"},
		{"replicas with idle", []string{"scale", "web", "web=2", "--idle=30s"}, `{"replicas":2,"idle":"30s"}`,
			"web: min 2, max 2, idle 30s, target 10; 2 replicas running now\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{"POST /api/apps/web/scale": scaleStream})
			out, errOut, code := run(tt.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if got := f.lastBody(); got != tt.wantBody {
				t.Errorf("request body %s, want %s", got, tt.wantBody)
			}
			if out != tt.wantOut {
				t.Errorf("stdout %q, want %q", out, tt.wantOut)
			}
			if errOut != "scaling web\nweb.3 healthy\n" {
				t.Errorf("progress on stderr %q", errOut)
			}
		})
	}
}

func TestScaleJSON(t *testing.T) {
	newFake(t, map[string]http.HandlerFunc{"POST /api/apps/web/scale": scaleStream})
	out, errOut, code := run("scale", "web", "web=2", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var a api.App
	if err := json.Unmarshal([]byte(out), &a); err != nil || a.Scale.Min != 2 || a.Scale.Max != 2 || a.Replicas != 2 {
		t.Fatalf("stdout %s: %+v %v", out, a, err)
	}
}

func TestScaleShow(t *testing.T) {
	tests := []struct {
		name  string
		app   string
		ps    string
		args  []string
		wants []string
	}{
		{"running", appWeb, psJSON, []string{"scale", "web"}, []string{
			"status:    running", "scale:     min 1, max 3, idle 5m, target 10 (autoscales 1-3)", "replicas:  2 running",
			"REPLICA  STATE     RELEASE  IN-FLIGHT  ADDRESS          CONTAINER",
			"web.1    running   v3       4          127.0.0.1:32768  0123456789ab",
			"web.2    starting  v3       0          127.0.0.1:32769  fedcba987654"}},
		{"sleeping", sleepingApp, `[]`, []string{"scale", "web"}, []string{
			"status:    sleeping", "min 0, max 1, idle 5m, target 10 (sleeps after 5m without requests)", "replicas:  0 running"}},
		{"json", appWeb, psJSON, []string{"scale", "web", "--json"}, []string{
			`"status": "running"`, `"min": 1`, `"idle": "5m0s"`, `"label": "web.2"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newFake(t, map[string]http.HandlerFunc{"GET /api/apps/web": canned(200, tt.app), "GET /api/apps/web/ps": canned(200, tt.ps)})
			runOK(t, tt.args, tt.wants...)
		})
	}
}

func TestPs(t *testing.T) {
	tests := []struct {
		name  string
		ps    string
		args  []string
		wants []string
	}{
		{"table", psJSON, []string{"ps", "web"}, []string{"REPLICA  STATE", "web.1    running   v3       4"}},
		{"none", `[]`, []string{"ps", "web"}, []string{"web has no replicas: not deployed yet (git push), or asleep (the next request wakes it)"}},
		{"json", psJSON, []string{"ps", "web", "--json"}, []string{`"container_id": "0123456789abcdef0123"`, `"in_flight": 4`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newFake(t, map[string]http.HandlerFunc{"GET /api/apps/web/ps": canned(200, tt.ps)})
			runOK(t, tt.args, tt.wants...)
		})
	}
}

func TestScaleErrors(t *testing.T) {
	tests := []struct {
		name     string
		routes   map[string]http.HandlerFunc
		args     []string
		wantCode int
		wantErr  string
	}{
		{"web=0", nil, []string{"scale", "web", "web=0"}, 2, "web=0: use --min 0 to let the app sleep when idle"},
		{"other process type", nil, []string{"scale", "web", "worker=2"}, 2, "apps have one process type, web"},
		{"not a count", nil, []string{"scale", "web", "web=many"}, 2, "give a number of replicas"},
		{"no equals", nil, []string{"scale", "web", "3"}, 2, `"3" is not web=N`},
		{"both forms", nil, []string{"scale", "web", "web=3", "--max", "4"}, 2, "give either web=N or --min/--max"},
		{"min over max", nil, []string{"scale", "web", "--min", "4", "--max", "2"}, 2, "--min 4 is more than --max 2"},
		{"max 0", nil, []string{"scale", "web", "--max", "0"}, 2, "--max must be 1 or more"},
		{"bad idle", nil, []string{"scale", "web", "--min", "0", "--idle", "soon"}, 2, `--idle "soon": give a positive duration`},
		{"bad target", nil, []string{"scale", "web", "--target", "0"}, 2, "--target must be 1 or more"},
		{"refused by the daemon", map[string]http.HandlerFunc{"POST /api/apps/web/scale": canned(400, `{"error":"min 2 is more than max 1"}`)},
			[]string{"scale", "web", "--min", "2"}, 1, "plat: min 2 is more than max 1\n"},
		{"failed while scaling", map[string]http.HandlerFunc{"POST /api/apps/web/scale": ndjson(`{"progress":"starting web.3"}`, `{"error":"web.3 failed its health check"}`)},
			[]string{"scale", "web", "web=3"}, 1, "plat: web.3 failed its health check\n"},
		{"stream cut short", map[string]http.HandlerFunc{"POST /api/apps/web/scale": ndjson(`{"progress":"starting web.3"}`)},
			[]string{"scale", "web", "web=3"}, 1, "check with `plat scale web`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.routes)
			_, errOut, code := run(tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q", code, errOut, tt.wantCode, tt.wantErr)
			}
			if tt.wantCode == 2 && len(f.requests()) != 0 {
				t.Errorf("a usage error reached the daemon: %v", f.requests())
			}
		})
	}
}
