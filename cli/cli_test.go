package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "s3cret-t0ken"

var fixedNow = time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)

func TestMain(m *testing.M) {
	// git runs this test binary as its credential helper in TestGitRemote.
	if os.Getenv("PLAT_CLI_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	now = func() time.Time { return fixedNow }
	os.Exit(m.Run())
}

func ts(d time.Duration) string { return fixedNow.Add(-d).Format(time.RFC3339) }

var (
	appWeb = `{"name":"web","created_at":"` + ts(48*time.Hour) + `","status":"running","active":3,
		"url":"http://web.plat.test","git_url":"http://daemon.test/git/web.git","git_sha":"abc1234def5678",
		"image_id":"sha256:0123456789abcdef0123","deployed_at":"` + ts(3*time.Minute) + `",
		"health":{"path":"/up","timeout":2000000000,"deadline":60000000000},"env_keys":["SECRET","A_KEY"],
		"replicas":2,"scale":{"min":1,"max":3,"idle":"5m0s","target":10}}`
	appAPI = `{"name":"api","created_at":"` + ts(time.Hour) + `","status":"new","active":0,
		"url":"http://api.plat.test","git_url":"http://daemon.test/git/api.git","deployed_at":"0001-01-01T00:00:00Z","health":{},"env_keys":[]}`
	releasesJSON = `[
		{"app":"web","version":1,"cause":"push","status":"superseded","git_sha":"1111111aaaa","created_at":"` + ts(3*time.Hour) + `"},
		{"app":"web","version":2,"cause":"config","status":"failed","reason":"health check failed: /up answered 500","git_sha":"1111111aaaa","created_at":"` + ts(time.Hour) + `"},
		{"app":"web","version":3,"cause":"push","status":"active","git_sha":"abc1234def5678","created_at":"` + ts(2*time.Minute) + `"}]`
)

// fake is a canned plat daemon.
type fake struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []string // "METHOD /path?query"
	bodies []string
}

func (f *fake) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

func (f *fake) lastBody() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) == 0 {
		return ""
	}
	return f.bodies[len(f.bodies)-1]
}

func writeJSONString(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, s)
}

func ndjson(lines ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, l := range lines {
			io.WriteString(w, l+"\n")
			w.(http.Flusher).Flush()
		}
	}
}

func canned(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { writeJSONString(w, status, body) }
}

func defaultRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /api/whoami":            canned(200, `{"ok":true}`),
		"GET /api/apps":              canned(200, "["+appWeb+","+appAPI+"]"),
		"POST /api/apps":             canned(201, strings.Replace(appAPI, `"api"`, `"newapp"`, 1)),
		"GET /api/apps/web":          canned(200, appWeb),
		"DELETE /api/apps/web":       canned(200, `{"destroyed":"web"}`),
		"GET /api/apps/web/releases": canned(200, releasesJSON),
		"GET /api/apps/web/config":   canned(200, `{"SECRET":"x=y","A_KEY":"1"}`),
		"PUT /api/apps/web/health":   func(w http.ResponseWriter, r *http.Request) { writeJSONString(w, 200, appWeb) },
		"GET /api/apps/web/releases/{v}/build-log": func(w http.ResponseWriter, r *http.Request) {
			if r.PathValue("v") != "2" {
				writeJSONString(w, 404, `{"error":"web has no release v`+r.PathValue("v")+`"}`)
				return
			}
			io.WriteString(w, "Step 1/3 : FROM alpine\nbuild ok\n")
		},
		"POST /api/apps/web/config": ndjson(
			`{"progress":"building release v5"}`,
			`{"progress":"starting container plat-web-v5"}`,
			`{"progress":"health check passed"}`,
			`{"release":{"app":"web","version":5,"cause":"config","status":"active","created_at":"`+ts(0)+`"}}`),
		"POST /api/apps/web/rollback": ndjson(
			`{"progress":"starting container plat-web-v6"}`,
			`{"release":{"app":"web","version":6,"cause":"rollback","status":"active","reason":"rollback to v3","rolled_back_to":3,"created_at":"`+ts(0)+`"}}`),
		"GET /api/apps/web/logs": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "line one\nline two tail=%s follow=%s\n", r.URL.Query().Get("tail"), r.URL.Query().Get("follow"))
		},
		"GET /api/apps/{app}": canned(404, `{"error":"no app named \"nope\": see plat apps"}`),
	}
}

// newFake starts a fake daemon with the default routes plus overrides and
// points PLAT_URL/PLAT_TOKEN at it.
func newFake(t *testing.T, overrides map[string]http.HandlerFunc) *fake {
	t.Helper()
	routes := defaultRoutes()
	for k, v := range overrides {
		routes[k] = v
	}
	mux := http.NewServeMux()
	for pat, h := range routes {
		mux.HandleFunc(pat, h)
	}
	f := &fake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Method+" "+r.URL.RequestURI())
		f.bodies = append(f.bodies, string(body))
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			writeJSONString(w, 401, `{"error":"bad token"}`)
			return
		}
		if !strings.HasPrefix(r.UserAgent(), "plat-cli/") {
			writeJSONString(w, 400, `{"error":"unexpected user agent"}`)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	t.Setenv("PLAT_URL", f.URL)
	t.Setenv("PLAT_TOKEN", testToken)
	t.Setenv("PLAT_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	return f
}

func run(args ...string) (stdout, stderr string, code int) {
	return runIn("", args...)
}

func runIn(stdin string, args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = Main(args, strings.NewReader(stdin), &o, &e)
	return o.String(), e.String(), code
}

// runOK runs the CLI, fails the test on a non-zero exit and checks that
// stdout contains every wanted string.
func runOK(t *testing.T, args []string, wants ...string) string {
	t.Helper()
	out, errOut, code := run(args...)
	if code != 0 {
		t.Fatalf("plat %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
	return out
}

var spaces = regexp.MustCompile(`\s{2,}`)

// fields splits a table line on its column gaps.
func fields(line string) []string { return spaces.Split(strings.TrimSpace(line), -1) }

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

func TestAppsTable(t *testing.T) {
	newFake(t, nil)
	out, errOut, code := run("apps")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	ls := lines(out)
	if len(ls) != 3 {
		t.Fatalf("want header and 2 rows, got:\n%s", out)
	}
	tests := []struct {
		line int
		want []string
	}{
		{0, []string{"NAME", "STATUS", "REPLICAS", "RELEASE", "URL", "DEPLOYED"}},
		{1, []string{"api", "new", "-", "-", "http://api.plat.test", "-"}},
		{2, []string{"web", "running", "2", "v3", "http://web.plat.test", "3m ago"}},
	}
	for _, tt := range tests {
		if got := fields(ls[tt.line]); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("line %d = %q, want %q", tt.line, got, tt.want)
		}
	}
	// Columns are aligned.
	for _, col := range []string{"STATUS", "REPLICAS", "RELEASE", "URL"} {
		i := strings.Index(ls[0], col)
		for _, l := range ls[1:] {
			if l[i-1] != ' ' || l[i] == ' ' {
				t.Errorf("column %s not aligned at %d in %q", col, i, l)
			}
		}
	}
}

func TestJSONOutput(t *testing.T) {
	tests := []struct {
		args  []string
		check func(t *testing.T, v any)
	}{
		{[]string{"apps", "--json"}, func(t *testing.T, v any) {
			a := v.([]any)
			if len(a) != 2 || a[0].(map[string]any)["name"] != "web" || a[0].(map[string]any)["git_sha"] != "abc1234def5678" {
				t.Errorf("apps: %v", v)
			}
		}},
		{[]string{"--json", "apps"}, func(t *testing.T, v any) {
			if len(v.([]any)) != 2 {
				t.Errorf("apps: %v", v)
			}
		}},
		{[]string{"apps:info", "--json", "web"}, func(t *testing.T, v any) {
			m := v.(map[string]any)
			if m["name"] != "web" || m["active"] != 3.0 {
				t.Errorf("apps:info: %v", v)
			}
		}},
		{[]string{"releases", "web", "--json"}, func(t *testing.T, v any) {
			var got []float64
			for _, r := range v.([]any) {
				got = append(got, r.(map[string]any)["version"].(float64))
			}
			if fmt.Sprint(got) != "[3 2 1]" {
				t.Errorf("releases versions %v, want newest first", got)
			}
		}},
		{[]string{"config", "web", "--json"}, func(t *testing.T, v any) {
			if v.(map[string]any)["SECRET"] != "x=y" {
				t.Errorf("config: %v", v)
			}
		}},
		{[]string{"config:set", "web", "A=1", "--json"}, func(t *testing.T, v any) {
			m := v.(map[string]any)
			if m["version"] != 5.0 || m["status"] != "active" {
				t.Errorf("config:set: %v", v)
			}
		}},
		{[]string{"apps:destroy", "web", "--confirm", "web", "--json"}, func(t *testing.T, v any) {
			if v.(map[string]any)["destroyed"] != "web" {
				t.Errorf("destroy: %v", v)
			}
		}},
		{[]string{"releases:log", "web", "v2", "--json"}, func(t *testing.T, v any) {
			m := v.(map[string]any)
			if m["version"] != 2.0 || !strings.Contains(m["log"].(string), "build ok") {
				t.Errorf("releases:log: %v", v)
			}
		}},
		{[]string{"git:url", "web", "--json"}, func(t *testing.T, v any) {
			if !strings.HasSuffix(v.(map[string]any)["git_url"].(string), "/git/web.git") {
				t.Errorf("git:url: %v", v)
			}
		}},
		{[]string{"version", "--json"}, func(t *testing.T, v any) {
			if v.(map[string]any)["version"] == "" {
				t.Errorf("version: %v", v)
			}
		}},
		{[]string{"help", "--json"}, func(t *testing.T, v any) {
			if len(v.([]any)) != len(commands) {
				t.Errorf("help: %d entries", len(v.([]any)))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			newFake(t, nil)
			out, errOut, code := run(tt.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			var v any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, out)
			}
			tt.check(t, v)
		})
	}
}

func TestReleasesNewestFirst(t *testing.T) {
	newFake(t, nil)
	out, errOut, code := run("releases", "web")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := [][]string{
		{"VERSION", "CAUSE", "STATUS", "SHA", "CREATED", "REASON"},
		{"v3", "push", "active", "abc1234", "2m ago"},
		{"v2", "config", "failed", "1111111", "1h ago", "health check failed: /up answered 500"},
		{"v1", "push", "superseded", "1111111", "3h ago"},
	}
	ls := lines(out)
	if len(ls) != len(want) {
		t.Fatalf("got:\n%s", out)
	}
	for i, w := range want {
		if got := fields(ls[i]); strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("line %d = %q, want %q", i, got, w)
		}
	}
}

func TestEvents(t *testing.T) {
	const eventsJSON = `[
		{"app":"web","time":"2026-01-02T10:00:00Z","kind":"started","release":4,"message":"rollback to v2"},
		{"app":"web","time":"2026-01-02T10:00:02Z","kind":"rolled back","release":4,"message":"rollback to v2"}]`
	tests := []struct {
		name  string
		args  []string
		body  string
		wants []string
	}{
		{"table", []string{"events", "web"}, eventsJSON, []string{"TIME", "RELEASE", "EVENT", "MESSAGE", "v4", "started", "rolled back", "rollback to v2"}},
		{"json", []string{"events", "web", "--json"}, eventsJSON, []string{`"kind": "rolled back"`, `"release": 4`}},
		{"none", []string{"events", "web"}, `[]`, []string{"web has no deploy events yet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newFake(t, map[string]http.HandlerFunc{"GET /api/apps/web/events": canned(200, tt.body)})
			runOK(t, tt.args, tt.wants...)
		})
	}
}

func TestAppsInfo(t *testing.T) {
	newFake(t, nil)
	runOK(t, []string{"apps:info", "web"},
		"name:", "web", "release:       v3", "git sha:       abc1234", "image:         0123456789ab",
		"deployed:      3m ago", "health check:  path /up, timeout 2s, deadline 1m", "config keys:   A_KEY, SECRET",
		"replicas:      2", "scale:         min 1, max 3, idle 5m, target 10 (autoscales 1-3)",
	)
}

func TestLongOperations(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantBody   string
		wantOut    string
		wantStderr []string
	}{
		{"config:set", []string{"config:set", "web", "A_KEY=1", "SECRET=x=y"}, `{"set":{"A_KEY":"1","SECRET":"x=y"}}`,
			"web v5 (config) is live\n", []string{"building release v5\n", "starting container plat-web-v5\n", "health check passed\n"}},
		{"config:unset", []string{"config:unset", "web", "A_KEY", "B"}, `{"unset":["A_KEY","B"]}`,
			"web v5 (config) is live\n", []string{"building release v5\n"}},
		{"rollback vN", []string{"rollback", "web", "v3"}, `{"version":3}`,
			"rolled back web to v3 as v6\n", []string{"starting container plat-web-v6\n"}},
		{"rollback default", []string{"rollback", "web"}, `{"version":0}`,
			"rolled back web to v3 as v6\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, nil)
			out, errOut, code := run(tt.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if out != tt.wantOut {
				t.Errorf("stdout %q, want %q", out, tt.wantOut)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			if got := f.lastBody(); got != tt.wantBody {
				t.Errorf("request body %s, want %s", got, tt.wantBody)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]http.HandlerFunc
		token     string // when set, replaces PLAT_TOKEN
		args      []string
		wantCode  int
		wantErr   string
	}{
		{"streamed error", map[string]http.HandlerFunc{"POST /api/apps/web/config": ndjson(
			`{"progress":"starting container plat-web-v5"}`,
			`{"error":"health check failed: GET /up answered 500 after 60s"}`)},
			"", []string{"config:set", "web", "A=1"}, 1, "plat: health check failed: GET /up answered 500 after 60s\n"},
		{"stream cut short", map[string]http.HandlerFunc{"POST /api/apps/web/rollback": ndjson(`{"progress":"starting"}`)},
			"", []string{"rollback", "web"}, 1, "closed the connection before the operation finished"},
		{"error before stream", map[string]http.HandlerFunc{"POST /api/apps/web/config": canned(400, `{"error":"bad key \"1X\""}`)},
			"", []string{"config:set", "web", "A=1"}, 1, "plat: bad key \"1X\"\n"},
		{"daemon message verbatim", nil, "", []string{"apps:info", "nope"}, 1, "plat: no app named \"nope\": see plat apps\n"},
		{"401", nil, "wrong", []string{"apps"}, 1, "plat: " + loginHint + "\n"},
		{"non-JSON 502", map[string]http.HandlerFunc{"GET /api/apps": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream down", 502)
		}}, "", []string{"apps"}, 1, "the daemon answered 502 Bad Gateway: upstream down"},
		{"build log of unknown release", nil, "", []string{"releases:log", "web", "7"}, 1, "plat: web has no release v7\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newFake(t, tt.overrides)
			if tt.token != "" {
				t.Setenv("PLAT_TOKEN", tt.token)
			}
			_, errOut, code := run(tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, errOut, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	t.Setenv("PLAT_URL", u)
	t.Setenv("PLAT_TOKEN", testToken)
	t.Setenv("PLAT_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	for _, args := range [][]string{{"apps"}, {"config:set", "web", "A=1"}, {"logs", "web", "-f"}} {
		_, errOut, code := run(args...)
		want := "plat: cannot reach the plat daemon at " + u + ": is it running?\n"
		if code != 1 || errOut != want {
			t.Errorf("%v: exit %d, stderr %q; want 1, %q", args, code, errOut, want)
		}
	}
}

func TestNotLoggedIn(t *testing.T) {
	t.Setenv("PLAT_URL", "")
	t.Setenv("PLAT_TOKEN", "")
	t.Setenv("PLAT_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	_, errOut, code := run("apps")
	if code != 1 || !strings.Contains(errOut, "plat login URL --token TOKEN") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestRejectedLocally(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"config:set", "web", "1BAD=x"}, 2, `invalid config key "1BAD"`},
		{[]string{"config:set", "web", "BAD-KEY=x"}, 2, `invalid config key "BAD-KEY"`},
		{[]string{"config:set", "web", "=x"}, 2, `invalid config key ""`},
		{[]string{"config:set", "web", "NOVALUE"}, 2, `"NOVALUE" is not KEY=VALUE`},
		{[]string{"config:unset", "web", "A.B"}, 2, `invalid config key "A.B"`},
		{[]string{"config:set", "web"}, 2, "usage: plat config:set NAME KEY=VALUE..."},
		{[]string{"apps:destroy", "web"}, 1, "refusing to destroy web without --confirm; to destroy it with its releases, config and containers, run: plat apps:destroy web --confirm web"},
		{[]string{"apps:destroy", "web", "--confirm", "api"}, 1, "--confirm api does not match"},
		{[]string{"apps:info"}, 2, "usage: plat apps:info NAME"},
		{[]string{"apps:info", "a", "b"}, 2, `unexpected argument "b"`},
		{[]string{"apps", "--nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"logs", "web", "-n"}, 2, "flag needs an argument: -n"},
		{[]string{"releases:log", "web", "vx"}, 2, `bad release version "vx"`},
		{[]string{"rollback", "web", "0"}, 2, `bad release version "0"`},
		{[]string{"health:set", "web"}, 2, "nothing to change"},
		{[]string{"health:set", "web", "--timeout", "soon"}, 2, `--timeout "soon"`},
		{[]string{"health:set", "web", "--path", "up"}, 2, "must start with /"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFake(t, nil)
			out, errOut, code := run(tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, errOut, tt.wantCode, tt.wantErr)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if reqs := f.requests(); len(reqs) != 0 {
				t.Errorf("sent requests %v, want none", reqs)
			}
		})
	}
}

func TestDestroyConfirmed(t *testing.T) {
	f := newFake(t, nil)
	out, errOut, code := run("apps:destroy", "--confirm", "web", "web")
	if code != 0 || out != "Destroyed web\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if reqs := f.requests(); len(reqs) != 1 || reqs[0] != "DELETE /api/apps/web?confirm=web" {
		t.Errorf("requests %v", reqs)
	}
}

func TestLogs(t *testing.T) {
	tests := []struct {
		args    []string
		wantReq string
		wantOut string
	}{
		{[]string{"logs", "-n=7", "web"}, "GET /api/apps/web/logs?tail=7", "line one\nline two tail=7 follow=\n"},
		{[]string{"logs", "web"}, "GET /api/apps/web/logs?tail=100", "line one\nline two tail=100 follow=\n"},
		{[]string{"logs", "web", "--json"}, "GET /api/apps/web/logs?tail=100",
			`{"app":"web","line":"line one"}` + "\n" + `{"app":"web","line":"line two tail=100 follow="}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFake(t, nil)
			out, errOut, code := run(tt.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if out != tt.wantOut {
				t.Errorf("stdout %q, want %q", out, tt.wantOut)
			}
			if reqs := f.requests(); len(reqs) != 1 || reqs[0] != tt.wantReq {
				t.Errorf("requests %v, want %s", reqs, tt.wantReq)
			}
		})
	}
}

func TestSimpleOutputs(t *testing.T) {
	tests := []struct {
		args    []string
		wantOut string
	}{
		{[]string{"config", "web"}, "A_KEY=1\nSECRET=x=y\n"},
		{[]string{"releases:log", "web", "v2"}, "Step 1/3 : FROM alpine\nbuild ok\n"},
		{[]string{"health:set", "web", "--timeout", "2s"}, "web health check: path /up, timeout 2s, deadline 1m\n"},
		{[]string{"apps:create", "newapp"}, "Created newapp: http://api.plat.test\n\nNext, in your app's git repo:\n" +
			"  git remote add platform http://daemon.test/git/api.git\nor, to also let git use your plat token:\n  plat git:remote newapp\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			newFake(t, nil)
			out, errOut, code := run(tt.args...)
			if code != 0 || out != tt.wantOut {
				t.Errorf("exit %d, stdout %q, stderr %q; want stdout %q", code, out, errOut, tt.wantOut)
			}
		})
	}
}

// TestHealthSetSendsOnlyGivenSettings: the daemon merges the body into the
// settings it has, so the CLI sends what was given, with no GET first.
func TestHealthSetSendsOnlyGivenSettings(t *testing.T) {
	f := newFake(t, nil)
	if _, errOut, code := run("health:set", "web", "--interval", "250ms"); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(f.lastBody()), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"interval": "250ms"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("PUT body %v, want %v", got, want)
	}
	if reqs := f.requests(); len(reqs) != 1 {
		t.Errorf("requests %v; want only the PUT (the daemon merges)", reqs)
	}
}

func TestLogin(t *testing.T) {
	f := newFake(t, nil)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "plat", "config.json")
	t.Setenv("PLAT_CONFIG", cfgPath)
	t.Setenv("PLAT_URL", "")
	t.Setenv("PLAT_TOKEN", "")

	// A refused token saves nothing.
	_, errOut, code := run("login", f.URL, "--token", "wrong")
	if code != 1 || !strings.Contains(errOut, "refused that token") {
		t.Errorf("bad token: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(cfgPath); !os.IsNotExist(err) {
		t.Errorf("config written after a refused token: %v", err)
	}

	out, errOut, code := run("login", f.URL+"/", "--token", testToken)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "Logged in to "+f.URL) {
		t.Errorf("stdout %q", out)
	}
	st, err := os.Stat(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v, want 0600", st.Mode().Perm())
	}
	if dst, _ := os.Stat(filepath.Dir(cfgPath)); dst.Mode().Perm() != 0o700 {
		t.Errorf("config dir mode %v, want 0700", dst.Mode().Perm())
	}
	var c config
	b, _ := os.ReadFile(cfgPath)
	if err := json.Unmarshal(b, &c); err != nil || c.URL != f.URL || c.Token != testToken {
		t.Errorf("config %s (%v)", b, err)
	}

	// The saved login is used.
	if _, errOut, code := run("apps"); code != 0 {
		t.Errorf("apps after login: exit %d, stderr %q", code, errOut)
	}

	// Token from stdin.
	if _, errOut, code := runIn(testToken+"\n", "login", f.URL); code != 0 {
		t.Errorf("login with token on stdin: exit %d, stderr %q", code, errOut)
	}

	out, _, code = run("logout")
	if code != 0 || !strings.Contains(out, "Logged out") {
		t.Errorf("logout: exit %d, stdout %q", code, out)
	}
	if _, err := os.Stat(cfgPath); !os.IsNotExist(err) {
		t.Errorf("config still there after logout")
	}
}

func TestGitCredential(t *testing.T) {
	t.Setenv("PLAT_URL", "http://plat.example.com:8700")
	t.Setenv("PLAT_TOKEN", testToken)
	t.Setenv("PLAT_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	match := "username=plat\npassword=" + testToken + "\n"
	tests := []struct {
		name  string
		op    string
		input string
		want  string
	}{
		{"match", "get", "protocol=http\nhost=plat.example.com:8700\npath=git/web.git\n\n", match},
		{"match no blank line", "get", "protocol=http\nhost=PLAT.example.com:8700", match},
		{"match url form", "get", "url=http://plat.example.com:8700/git/web.git\n", match},
		{"other host", "get", "protocol=http\nhost=github.com\n\n", ""},
		{"other port", "get", "protocol=http\nhost=plat.example.com\n\n", ""},
		{"other protocol", "get", "protocol=https\nhost=plat.example.com:8700\n\n", ""},
		{"store is a no-op", "store", "protocol=http\nhost=plat.example.com:8700\nusername=plat\npassword=x\n\n", ""},
		{"erase is a no-op", "erase", "protocol=http\nhost=plat.example.com:8700\n\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runIn(tt.input, "git-credential", tt.op)
			if code != 0 || out != tt.want || errOut != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want stdout %q", code, out, errOut, tt.want)
			}
		})
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{nil, {"help"}, {"--help"}} {
		out, _, code := run(args...)
		if code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
		for _, c := range commands {
			if !strings.Contains(out, "  "+c.usage()+" ") {
				t.Errorf("%v: help lacks %q", args, c.usage())
			}
		}
	}
	out, _, code := run("logs", "-h")
	if code != 0 || !strings.Contains(out, "usage: plat logs NAME [-f] [-n 100]") || !strings.Contains(out, "-f") {
		t.Errorf("logs -h: exit %d\n%s", code, out)
	}
	out2, _, _ := run("help", "logs")
	if out2 != out {
		t.Errorf("help logs differs from logs -h:\n%s", out2)
	}
}

func TestAgo(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"},
		{-time.Minute, "just now"},
		{45 * time.Second, "45s ago"},
		{3*time.Minute + 20*time.Second, "3m ago"},
		{5 * time.Hour, "5h ago"},
		{72 * time.Hour, "3d ago"},
		{400 * 24 * time.Hour, fixedNow.Add(-400 * 24 * time.Hour).Local().Format("2006-01-02")},
	}
	for _, tt := range tests {
		if got := ago(fixedNow.Add(-tt.d)); got != tt.want {
			t.Errorf("ago(-%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := ago(time.Time{}); got != "-" {
		t.Errorf("ago(zero) = %q", got)
	}
}

func TestTableTrimsTrailingSpace(t *testing.T) {
	var b bytes.Buffer
	table(&b, [][]string{{"A", "B", "REASON"}, {"x", "yy", ""}})
	if got, want := b.String(), "A  B   REASON\nx  yy\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
