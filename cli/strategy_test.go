package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// strategy:set sends only the flags given, as the API's JSON types (the
// daemon fills in the defaults and checks the ranges); flags it cannot
// convert never reach the daemon.
func TestStrategySetBody(t *testing.T) {
	answer := func(w http.ResponseWriter, r *http.Request) {
		writeJSONString(w, 200, `{"name":"canary","steps":[10,50,100],"step_time":"5s","max_error_rate":0.5,"max_p99":"0s","min_requests":50,"description":"canary (...)"}`)
	}
	tests := []struct {
		args     []string
		wantBody string // "" means nothing is sent
		wantErr  string
	}{
		{[]string{"canary"}, `{"name":"canary"}`, ""},
		{[]string{"canary", "--steps", "10, 50%,100", "--step-time", "5s", "--max-error-rate", "0.5%", "--max-p99", "800ms", "--min-requests", "0"},
			`{"max_error_rate":0.5,"max_p99":"800ms","min_requests":0,"name":"canary","step_time":"5s","steps":[10,50,100]}`, ""},
		{[]string{"rolling", "--batch", "2"}, `{"batch":2,"name":"rolling"}`, ""},
		{[]string{"in-place", "--hold=5s"}, `{"hold":"5s","name":"in-place"}`, ""},
		{[]string{"canary", "--batch", "2"}, `{"batch":2,"name":"canary"}`, ""}, // the daemon says batch is not canary's
		{[]string{"canary", "--steps", "10,,100"}, "", "--steps \"10,,100\": give whole percentages"},
		{[]string{"canary", "--max-error-rate", "low"}, "", "--max-error-rate \"low\": give a percentage"},
		{[]string{"rolling", "--batch", "two"}, "", "--batch \"two\": give a whole number"},
		{[]string{"rolling", "--surge", "2"}, "", "flag provided but not defined: -surge"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{"PUT /api/apps/web/strategy": answer})
			out, errOut, code := run(append([]string{"strategy:set", "web"}, tt.args...)...)
			if tt.wantErr != "" {
				if code != 2 || !strings.Contains(errOut, tt.wantErr) || len(f.requests()) != 0 {
					t.Fatalf("exit %d, stderr %q, sent %v; want exit 2, %q, nothing sent", code, errOut, f.requests(), tt.wantErr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(f.lastBody()), &body); err != nil {
				t.Fatal(err)
			}
			if got, _ := json.Marshal(body); string(got) != tt.wantBody {
				t.Errorf("sent %s, want %s", got, tt.wantBody)
			}
			if !strings.Contains(out, "web strategy set to canary") || !strings.Contains(out, "max error rate:  0.5%") {
				t.Errorf("output:\n%s", out)
			}
		})
	}
}
