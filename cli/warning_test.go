package cli

import (
	"net/http"
	"strings"
	"testing"
)

// TestAppsWarning: an app whose last deploy failed but that still serves
// is listed as running, with the failure as a warning line, not as its
// status; apps:info says the same.
func TestAppsWarning(t *testing.T) {
	warned := strings.Replace(appWeb, `"status":"running",`, `"status":"running","warning":"deploy of v4 failed: health check failed: /up answered 500; still serving v3","last_failed":{"version":4,"reason":"health check failed: /up answered 500"},`, 1)
	newFake(t, map[string]http.HandlerFunc{
		"GET /api/apps":     canned(200, "["+warned+","+appAPI+"]"),
		"GET /api/apps/web": canned(200, warned),
	})
	out, errOut, code := run("apps")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	ls := lines(out)
	if len(ls) != 4 || fields(ls[2])[1] != "running" || ls[3] != "warning: web: deploy of v4 failed: health check failed: /up answered 500; still serving v3" {
		t.Errorf("plat apps:\n%s", out)
	}
	runOK(t, []string{"apps:info", "web"}, "status:        running", "warning:       deploy of v4 failed: health check failed: /up answered 500; still serving v3")
	newFake(t, nil)
	if out, _, _ := run("apps:info", "web"); strings.Contains(out, "warning") {
		t.Errorf("apps:info of an app without a failed deploy:\n%s", out)
	}
}
