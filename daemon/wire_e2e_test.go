package daemon_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/plat-paas/plat/api"
)

// apiDo sends an authenticated request to the daemon's API and returns
// the status, content type and body.
func (d *daemon) apiDo(method, path, body string) (int, string, []byte) {
	d.t.Helper()
	req, _ := http.NewRequest(method, "http://"+d.apiAddr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// commitAt commits the version file with the given committer time, the
// time plat reads as the change's commit time.
func (r *repo) commitAt(version string, at time.Time) {
	r.d.t.Helper()
	r.write("version", version)
	r.git("add", "-A")
	cmd := exec.Command("git", "commit", "-q", "-m", "version "+version)
	cmd.Dir = r.dir
	cmd.Env = append(r.d.env(), "GIT_COMMITTER_DATE="+at.Format(time.RFC3339), "GIT_AUTHOR_DATE="+at.Format(time.RFC3339))
	if out, err := cmd.CombinedOutput(); err != nil {
		r.d.t.Fatalf("git commit: %v\n%s", err, out)
	}
}

// TestWireAndDORA checks, through the real daemon and CLI, what clients of
// the API rely on: durations are strings, a rollback release names its
// target in rolled_back_to (which `plat rollback` prints), pushed
// releases carry their commit time, and a rollback to a version that does
// not exist is a JSON 404 before any stream starts.
//
// Its history then measures DORA metrics through `plat dora`: v1 and v2
// are pushes committed 3h and 2h before they went live; v2 replaced v1
// within the fix window (v1 failed) and was rolled back by v3 (v2 failed).
func TestWireAndDORA(t *testing.T) {
	d := startDaemon(t)
	d.createApp("wire")
	r := d.newRepo("wire")
	// Committed in another time zone, whole seconds (git's resolution).
	start := time.Now()
	c1 := start.Add(-3 * time.Hour).Truncate(time.Second).In(time.FixedZone("CET", 3600))
	r.write("mode", "")
	r.commitAt("one", c1)
	r.mustPush("main")
	r.commitAt("two", c1.Add(time.Hour))
	r.mustPush("main")
	d.mustServe("wire", "version=two")

	t.Run("health durations are strings", func(t *testing.T) {
		d.mustPlat("health:set", "wire", "--timeout", "2s")
		code, ctype, b := d.apiDo(http.MethodGet, "/api/apps/wire", "")
		if code != http.StatusOK || !strings.HasPrefix(ctype, "application/json") {
			t.Fatalf("GET app: %d %s %s", code, ctype, b)
		}
		var raw struct {
			Health map[string]any `json:"health"`
			Scale  map[string]any `json:"scale"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		if raw.Health["timeout"] != "2s" {
			t.Errorf("health.timeout = %#v, want \"2s\"", raw.Health["timeout"])
		}
		if _, ok := raw.Scale["idle"].(string); !ok {
			t.Errorf("scale.idle = %#v, want a string", raw.Scale["idle"])
		}
		// PATCH merges like PUT: the timeout set above stays.
		code, _, b = d.apiDo(http.MethodPatch, "/api/apps/wire/health", `{"interval":"250ms"}`)
		var a api.App
		if err := json.Unmarshal(b, &a); err != nil || code != http.StatusOK {
			t.Fatalf("PATCH health: %d %s", code, b)
		}
		if a.Health.Timeout.D() != 2*time.Second || a.Health.Interval.D() != 250*time.Millisecond {
			t.Errorf("health after PATCH: %+v", a.Health)
		}
		// A client from before package api sent nanoseconds: still read.
		code, _, b = d.apiDo(http.MethodPut, "/api/apps/wire/health", `{"deadline":30000000000}`)
		if err := json.Unmarshal(b, &a); err != nil || code != http.StatusOK || a.Health.Deadline.D() != 30*time.Second || a.Health.Timeout.D() != 2*time.Second {
			t.Errorf("PUT nanoseconds: %d %s", code, b)
		}
		code, _, b = d.apiDo(http.MethodPatch, "/api/apps/wire/health", `{"timeout":"soon"}`)
		if code != http.StatusBadRequest || !bytes.Contains(b, []byte(`health check timeout \"soon\" is not a positive duration`)) {
			t.Errorf("bad duration: %d %s", code, b)
		}
	})

	t.Run("pushed releases carry their commit time", func(t *testing.T) {
		var rels []api.Release
		d.apiGet("/api/apps/wire/releases", &rels)
		if len(rels) != 2 || !rels[0].CommittedAt.Equal(c1) || !rels[1].CommittedAt.Equal(c1.Add(time.Hour)) {
			t.Errorf("releases: %+v; want committed_at %v and %v", rels, c1, c1.Add(time.Hour))
		}
	})

	t.Run("rollback to an unknown version is a 404 before any stream", func(t *testing.T) {
		code, ctype, b := d.apiDo(http.MethodPost, "/api/apps/wire/rollback", `{"version":99}`)
		var e api.Error
		if code != http.StatusNotFound || !strings.HasPrefix(ctype, "application/json") || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, "no release v99") {
			t.Errorf("rollback v99: %d %s %s; want a JSON 404 naming v99", code, ctype, b)
		}
		code, _, b = d.apiDo(http.MethodPost, "/api/apps/wire/rollback", `{"version":2}`)
		if code != http.StatusConflict || !bytes.Contains(b, []byte("already the active release")) {
			t.Errorf("rollback to the active release: %d %s; want 409", code, b)
		}
		out, err := d.plat("rollback", "wire", "v99")
		if err == nil || !strings.Contains(out, "has no release v99") {
			t.Errorf("plat rollback v99: %v\n%s", err, out)
		}
	})

	t.Run("rollback names its target in rolled_back_to", func(t *testing.T) {
		out := d.mustPlat("rollback", "wire")
		if !strings.Contains(out, "rolled back wire to v1 as v3") {
			t.Errorf("plat rollback printed %q", out)
		}
		d.mustServe("wire", "version=one")
		var rels []api.Release
		d.apiGet("/api/apps/wire/releases", &rels)
		last := rels[len(rels)-1]
		if last.Version != 3 || last.Cause != api.CauseRollback || last.RolledBackTo != 1 || !last.CommittedAt.Equal(c1) {
			t.Errorf("rollback release %+v; want v3 rolled_back_to 1 with v1's commit time", last)
		}
		if rels[0].RolledBackTo != 0 {
			t.Errorf("push release has rolled_back_to %d", rels[0].RolledBackTo)
		}
	})

	t.Run("plat dora", func(t *testing.T) {
		var app, host api.DORA
		if err := json.Unmarshal([]byte(d.mustPlat("dora", "wire", "--json")), &app); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(d.mustPlat("dora", "--json", "--days", "7")), &host); err != nil {
			t.Fatal(err)
		}
		df, lt, cf, tr := app.DeploymentFrequency, app.LeadTime, app.ChangeFailureRate, app.TimeToRestore
		if app.App != "wire" || app.Days != 30 || df.Deploys != 2 || df.Band != api.BandMedium {
			t.Errorf("deployment frequency %+v of %q over %d days; want 2 deploys, medium", df, app.App, app.Days)
		}
		// Lead times: 3h and 2h, each plus the time until it went live
		// (and up to 1s of truncation): their median is 2.5h and a bit.
		if lt.Samples != 2 || lt.Median == nil || lt.Median.D() < 150*time.Minute || lt.Median.D() > 150*time.Minute+time.Since(start)+2*time.Second || lt.Band != api.BandHigh {
			t.Errorf("lead time %+v; want the median of 3h and 2h plus deploy time, high", lt)
		}
		if cf.Failed != 2 || cf.Deploys != 2 || cf.Rate == nil || *cf.Rate != 1 || cf.Band != api.BandLow {
			t.Errorf("change failure rate %+v; want 2 of 2, low", cf)
		}
		if tr.Samples != 1 || tr.Median == nil || tr.Median.D() > 5*time.Minute || tr.Band != api.BandElite {
			t.Errorf("time to restore %+v; want one incident of a few seconds, elite", tr)
		}
		if len(app.Trend) != 5 || app.Trend[4].DeploymentFrequency.Deploys != 2 {
			t.Errorf("trend %+v; want 5 periods, the last with both deploys", app.Trend)
		}
		if host.App != "" || host.Days != 7 || len(host.Trend) != 1 || host.ChangeFailureRate.Failed != 2 || host.DeploymentFrequency.Deploys != 2 || host.DeploymentFrequency.Band != api.BandHigh {
			t.Errorf("host: %+v", host)
		}
		out := d.mustPlat("dora", "wire")
		for _, want := range []string{"DORA metrics of wire, last 30 days", "2 deploys", "medium", "(median of 2)", "100% (2 of 2)", "low", "elite", "FAILURE RATE"} {
			if !strings.Contains(out, want) {
				t.Errorf("plat dora output lacks %q:\n%s", want, out)
			}
		}
		if out, err := d.plat("dora", "--days", "0"); err == nil || !strings.Contains(out, "give 1 to 365") {
			t.Errorf("--days 0: %v\n%s", err, out)
		}
		if code, _, b := d.apiDo(http.MethodGet, "/api/dora?days=400", ""); code != http.StatusBadRequest {
			t.Errorf("days=400: %d %s", code, b)
		}
		if code, _, _ := d.apiDo(http.MethodGet, "/api/apps/nope/dora", ""); code != http.StatusNotFound {
			t.Errorf("unknown app: %d", code)
		}
	})
}
