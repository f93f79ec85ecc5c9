package daemon

import (
	"reflect"
	"testing"

	"github.com/plat-paas/plat/store"
)

// TestAppStatus: an app's status is what it serves; a failed last deploy
// is a separate warning, never the status.
func TestAppStatus(t *testing.T) {
	rel := func(v int, st store.Status, reason string) store.Release {
		return store.Release{Version: v, Status: st, Reason: reason}
	}
	live, failed := rel(3, store.StatusActive, ""), rel(4, store.StatusFailed, "health check: GET / answered 500")
	for _, tc := range []struct {
		name     string
		app      store.App
		replicas int
		releases []store.Release
		status   string
		warning  string
	}{
		{"never deployed", store.App{}, 0, nil, "new", ""},
		{"first deploy failed", store.App{}, 0, []store.Release{rel(1, store.StatusFailed, "build failed")}, "new", "deploy of v1 failed: build failed; nothing is serving yet"},
		{"serving", store.App{Active: 3}, 2, []store.Release{live}, "running", ""},
		{"serving after a failed push", store.App{Active: 3}, 1, []store.Release{live, failed}, "running", "deploy of v4 failed: health check: GET / answered 500; still serving v3"},
		{"asleep after a failed push", store.App{Active: 3, Asleep: true}, 0, []store.Release{live, failed}, "sleeping", "deploy of v4 failed: health check: GET / answered 500; still serving v3"},
		{"no replica", store.App{Active: 3}, 0, []store.Release{live}, "down", ""},
		{"deploying", store.App{Active: 3}, 1, []store.Release{live, rel(4, store.StatusDeploying, "")}, "deploying", ""},
		{"a fix after a failure", store.App{Active: 5}, 1, []store.Release{live, failed, rel(5, store.StatusActive, "")}, "running", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := appStatus(tc.app, tc.replicas, tc.releases); got != tc.status {
				t.Errorf("status %q, want %q", got, tc.status)
			}
			lf, warning := lastFailed(tc.app, tc.releases)
			if warning != tc.warning || (lf != nil) != (tc.warning != "") {
				t.Errorf("warning %q (%+v), want %q", warning, lf, tc.warning)
			}
		})
	}
}

// TestPublicBase: the Git URL is one a remote client can use.
func TestPublicBase(t *testing.T) {
	for _, tc := range []struct {
		name      string
		given     bool
		publicURL string
		tlsHost   string
		origin    string
		want      string
	}{
		{"--public-url wins", true, "https://paas.example.com/", "plat.example.com", "http://127.0.0.1:7070", "https://paas.example.com"},
		{"the HTTPS API host", false, "http://127.0.0.1:7070", "plat.example.com", "http://127.0.0.1:7070", "https://plat.example.com"},
		{"the HTTPS API host on its port", false, "http://127.0.0.1:7070", "plat.localhost:8443", "http://127.0.0.1:7070", "https://plat.localhost:8443"},
		{"where the browser reached it", false, "http://127.0.0.1:7070", "", "http://203.0.113.7:7070", "http://203.0.113.7:7070"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := publicBase(tc.given, tc.publicURL, tc.tlsHost, tc.origin); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPreviewRollback: the confirmation says which image and which config
// keys a rollback changes, by name only.
func TestPreviewRollback(t *testing.T) {
	from := store.Release{Version: 5, ImageID: "sha256:bbb", GitSHA: "2222", Env: map[string]string{"A": "1", "B": "2", "GONE": "x"}}
	to := store.Release{Version: 2, ImageID: "sha256:aaa", GitSHA: "1111", Env: map[string]string{"A": "1", "B": "3", "NEW": "y"}}
	got := previewRollback(from, to)
	want := rollbackPreview{From: 5, To: 2, ImageFrom: "sha256:bbb", ImageTo: "sha256:aaa", GitSHAFrom: "2222", GitSHATo: "1111",
		Added: []string{"NEW"}, Removed: []string{"GONE"}, Changed: []string{"B"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if same := previewRollback(from, from); !same.SameImage || len(same.Added)+len(same.Removed)+len(same.Changed) != 0 {
		t.Errorf("a rollback to the same release changes %+v", same)
	}
}
