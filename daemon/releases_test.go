package daemon

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/plat-paas/plat/store"
)

func TestRolledBackTo(t *testing.T) {
	for _, tc := range []struct {
		name string
		rel  store.Release
		want int
	}{
		{"rollback", store.Release{Cause: store.CauseRollback, RolledBackTo: 3, Reason: "rollback to v3"}, 3},
		{"rollback recorded before the field", store.Release{Cause: store.CauseRollback, Reason: "rollback to v12"}, 12},
		{"rollback with an unreadable reason", store.Release{Cause: store.CauseRollback, Reason: "restored"}, 0},
		{"push", store.Release{Cause: store.CausePush, Reason: "rollback to v3"}, 0},
	} {
		if got := apiRelease(tc.rel).RolledBackTo; got != tc.want {
			t.Errorf("%s: rolled_back_to %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestAPIReleaseHasNoConfigValues: a release's wire form names its config
// keys and never their values, and its durations and times are strings.
func TestAPIReleaseHasNoConfigValues(t *testing.T) {
	b, err := json.Marshal(apiRelease(store.Release{
		App: "web", Version: 2, Cause: store.CausePush, Status: store.StatusActive,
		Env: map[string]string{"SECRET": "hunter2"}, CommittedAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, "hunter2") || !strings.Contains(s, `"config_keys":["SECRET"]`) || !strings.Contains(s, `"committed_at":"2026-03-01T09:00:00Z"`) {
		t.Errorf("release JSON: %s", s)
	}
	if strings.Contains(s, "finished_at") || strings.Contains(s, "rolled_back_to") {
		t.Errorf("zero fields present: %s", s)
	}
}
