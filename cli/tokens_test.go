package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func tsFuture(d time.Duration) string { return fixedNow.Add(d).Format(time.RFC3339) }

var tokensJSON = `[
	{"name":"admin","created_at":"` + ts(30*24*time.Hour) + `","last_used":"` + ts(3*time.Minute) + `","expired":false,"current":true},
	{"name":"ci","created_at":"` + ts(2*time.Hour) + `","expires_at":"` + tsFuture(90*24*time.Hour) + `","expired":false,"current":false},
	{"name":"old","created_at":"` + ts(10*24*time.Hour) + `","expires_at":"` + ts(2*time.Hour) + `","last_used":"` + ts(3*time.Hour) + `","expired":true,"current":false}]`

func TestTokensTable(t *testing.T) {
	newFake(t, map[string]http.HandlerFunc{"GET /api/tokens": canned(200, tokensJSON)})
	out := runOK(t, []string{"tokens"})
	want := [][]string{
		{"NAME", "CREATED", "LAST USED", "EXPIRES"},
		{"admin (this one)", "30d ago", "3m ago", "never"},
		{"ci", "2h ago", "-", "in 90d"},
		{"old", "10d ago", "3h ago", "expired 2h ago"},
	}
	ls := lines(out)
	if len(ls) != len(want) {
		t.Fatalf("tokens table:\n%s", out)
	}
	for i, w := range want {
		if got := fields(ls[i]); strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("row %d = %q, want %q", i, got, w)
		}
	}
	if j := runOK(t, []string{"tokens", "--json"}); !strings.Contains(j, `"name": "ci"`) {
		t.Errorf("--json:\n%s", j)
	}
}

func TestTokensCreate(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"POST /api/tokens": canned(201, `{"name":"ci","token":"0123abcd","created_at":"`+ts(0)+`","expires_at":"`+tsFuture(90*24*time.Hour)+`"}`),
	})
	runOK(t, []string{"tokens:create", "ci", "--expires", "90d"}, "Created token ci", "\n    0123abcd\n", "in 90d", "not shown again")
	if body := f.lastBody(); body != `{"expires_in":"90d","name":"ci"}` {
		t.Errorf("request body %s", body)
	}
	runOK(t, []string{"tokens:create", "ci"})
	if body := f.lastBody(); body != `{"name":"ci"}` {
		t.Errorf("request body without --expires: %s", body)
	}
}

func TestTokensRevoke(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"DELETE /api/tokens/ci":    canned(200, `{"revoked":"ci","current":false,"sessions_ended":1,"requests_ended":2}`),
		"DELETE /api/tokens/admin": canned(409, `{"error":"\"admin\" is the last token that has not expired: ... --force"}`),
		"DELETE /api/tokens/me":    canned(200, `{"revoked":"me","current":true,"sessions_ended":0,"requests_ended":0}`),
	})
	runOK(t, []string{"tokens:revoke", "ci"}, "Revoked token ci", "1 dashboard session and 2 open connections ended")
	runOK(t, []string{"tokens:revoke", "me"}, "this CLI uses: log in with another")
	_, errOut, code := run("tokens:revoke", "admin")
	if code != 1 || !strings.Contains(errOut, "last token") {
		t.Errorf("revoking the last token: exit %d, %q", code, errOut)
	}
	runOK(t, []string{"tokens:revoke", "--force", "ci"})
	reqs := f.requests()
	if last := reqs[len(reqs)-1]; last != "DELETE /api/tokens/ci?force=true" {
		t.Errorf("--force sent %q", last)
	}
}

// TestExpiredTokenMessage: a 401 for an expired token shows the daemon's
// message (which token, how to get a new one), not the generic hint.
func TestExpiredTokenMessage(t *testing.T) {
	newFake(t, map[string]http.HandlerFunc{
		"GET /api/apps": canned(401, `{"error":"token \"ci\" expired at 2025-01-01T00:00:00Z: create a new one","expired":true}`),
	})
	_, errOut, code := run("apps")
	if code != 1 || !strings.Contains(errOut, `token "ci" expired at`) {
		t.Errorf("expired token: exit %d, %q", code, errOut)
	}
}
