package cli

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const rolloutJSON = `{"app":"web","strategy":"canary","from":7,"to":8,"state":"step","step":2,"steps":[10,50,100],"weight":50,` +
	`"started":"2026-01-02T03:04:05Z","step_started":"2026-01-02T03:05:05Z","step_ends":"2026-01-02T03:06:05Z",` +
	`"releases":[{"version":7,"role":"stable","weight":50,"requests":400,"errors":0,"error_rate":0,"p50":"1ms","p99":"8ms","total_requests":900},` +
	`{"version":8,"role":"canary","weight":50,"requests":212,"errors":2,"error_rate":0.94,"p50":"2ms","p99":"12ms","total_requests":230}]}`

func TestRollout(t *testing.T) {
	newFake(t, map[string]http.HandlerFunc{
		"GET /api/apps/web/rollout":          canned(200, rolloutJSON),
		"POST /api/apps/web/rollout/promote": canned(200, `{"app":"web","release":8,"action":"promoted"}`),
		"POST /api/apps/web/rollout/abort":   canned(200, `{"app":"web","release":8,"action":"aborted"}`),
		"GET /api/apps/other/rollout":        canned(404, `{"error":"no rollout in progress for other"}`),
		"POST /api/apps/other/rollout/abort": canned(404, `{"error":"no rollout in progress for other; see `+"`plat releases other`"+`"}`),
		"GET /api/apps/{app}":                canned(404, `{"error":"no app"}`),
	})
	runOK(t, []string{"rollout", "web"}, "web: canary rollout of v8 (stable v7)", "step:   2 of 3 (10%, 50%, 100%), step",
		"RELEASE", "v7       stable  50%", "v8       canary  50%     212", "0.9%", "12ms")
	if out := runOK(t, []string{"rollout", "web", "--json"}); !strings.Contains(out, `"weight": 50`) {
		t.Errorf("--json: %s", out)
	}
	runOK(t, []string{"rollout:promote", "web"}, "v8 of web is now the active release")
	runOK(t, []string{"rollout:abort", "web"}, "Aborted the rollout of v8 of web: all traffic is back on the stable release.")
	for _, args := range [][]string{{"rollout", "other"}, {"rollout:abort", "other"}} {
		if _, errOut, code := run(args...); code != 1 || !strings.Contains(errOut, "no rollout in progress for other") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
}

// TestRolloutFollow: -f prints a line when the rollout changes and ends
// when it is over.
func TestRolloutFollow(t *testing.T) {
	old := rolloutFollowInterval
	rolloutFollowInterval = time.Millisecond
	t.Cleanup(func() { rolloutFollowInterval = old })
	var n atomic.Int32
	newFake(t, map[string]http.HandlerFunc{
		"GET /api/apps/web/rollout": func(w http.ResponseWriter, r *http.Request) {
			switch n.Add(1) {
			case 1, 2:
				writeJSONString(w, 200, strings.Replace(rolloutJSON, `"step":2`, `"step":1`, 1))
			case 3:
				writeJSONString(w, 200, rolloutJSON)
			default:
				writeJSONString(w, 404, `{"error":"no rollout in progress for web"}`)
			}
		},
	})
	out := runOK(t, []string{"rollout", "web", "-f"}, "step 1/3", "step 2/3", "v8 50%: 212 req, 5xx 0.9%, p99 12ms", "The rollout ended; see `plat releases web`.")
	if lines := strings.Count(out, "\n"); lines != 3 {
		t.Errorf("%d lines, want 3 (one per change, one at the end):\n%s", lines, out)
	}
}
