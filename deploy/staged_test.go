package deploy

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/plat-paas/plat/store"
)

func TestPreviewKey(t *testing.T) {
	for _, tc := range []struct {
		key     string
		app     string
		release int
		ok      bool
	}{
		{PreviewKey("web", 8), "web", 8, true},
		{"web", "", 0, false},
		{"web@v", "", 0, false},
		{"web@v0", "", 0, false},
		{"web@x8", "", 0, false},
		{"@v8", "", 0, false},
	} {
		app, v, ok := ParsePreviewKey(tc.key)
		if app != tc.app || v != tc.release || ok != tc.ok {
			t.Errorf("ParsePreviewKey(%q) = %q, %d, %v; want %q, %d, %v", tc.key, app, v, ok, tc.app, tc.release, tc.ok)
		}
	}
}

// TestPromoteStaged: a staged release runs one replica beside production;
// blue-green promotes it taking that replica as it runs, the other
// strategies start their own; a newer staged release stops the older one.
func TestPromoteStaged(t *testing.T) {
	for _, tc := range []struct {
		name     string
		strategy store.Strategy
		reuse    bool
	}{
		{"blue-green", store.Strategy{}, true},
		{"rolling", store.Strategy{Name: store.StrategyRolling, Batch: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnit(t)
			u.app(t, "web", 2)
			if err := u.st.UpdateApp("web", func(a *store.App) error {
				a.Strategy, a.ReleaseMode = tc.strategy, store.ReleaseManual
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := u.deploy(t, "web", u.push(t, "web", "img1")); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			var out bytes.Buffer
			for _, img := range []string{"img2", "img3"} {
				if _, err := u.d.stage(ctx, u.get(t, "web"), u.push(t, "web", img), newTimings(), &out); err != nil {
					t.Fatalf("stage %s: %v\n%s", img, err, out.String())
				}
			}
			if got := len(u.running("web", 2)); got != 0 {
				t.Errorf("%d containers of v2 run after v3 was staged; want 0", got)
			}
			staged := u.running("web", 3)
			if len(staged) != stagedReplicas || len(u.running("web", 1)) != 2 {
				t.Fatalf("v3 runs %d, v1 %d; want %d staged beside 2 live", len(staged), len(u.running("web", 1)), stagedReplicas)
			}
			if v, addrs, ok := u.d.StagedReplicas("web"); !ok || v != 3 || len(addrs) != 1 || addrs[0] != staged[0].HostAddr {
				t.Errorf("StagedReplicas = %d, %v, %v; want v3 at %s", v, addrs, ok, staged[0].HostAddr)
			}
			rel, err := u.d.Promote(ctx, "web", 3, &out)
			if err != nil || rel.Status != store.StatusActive {
				t.Fatalf("promote: %v, status %s\n%s", err, rel.Status, out.String())
			}
			live := u.running("web", 3)
			kept := len(live) == 2 && (live[0].ID == staged[0].ID || live[1].ID == staged[0].ID)
			if len(live) != 2 || kept != tc.reuse {
				t.Errorf("v3 runs %d replicas after the promotion, staged one kept: %v; want 2, %v", len(live), kept, tc.reuse)
			}
			if n := len(u.running("web", 1)); n != 0 {
				t.Errorf("v1 still runs %d replicas", n)
			}
			if _, _, ok := u.d.StagedReplicas("web"); ok {
				t.Error("a release is still staged after the promotion")
			}
		})
	}
}

// TestPromoteRefuses: promoting a release that is not staged names why
// and changes nothing.
func TestPromoteRefuses(t *testing.T) {
	u := newUnit(t)
	u.app(t, "web", 1)
	if _, _, err := u.deploy(t, "web", u.push(t, "web", "img1")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.deploy(t, "web", u.push(t, "web", "img2")); err != nil {
		t.Fatal(err)
	}
	failed := u.push(t, "web", "img3")
	if err := u.st.FailRelease("web", failed.Version, "build failed"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		version int
		want    error
	}{
		{99, ErrUnknownRelease},
		{0, ErrUnknownRelease},
		{1, ErrNotStaged}, // superseded
		{2, ErrNotStaged}, // active
		{3, ErrNotStaged}, // failed
	} {
		_, err := u.d.Promote(context.Background(), "web", tc.version, &bytes.Buffer{})
		if !errors.Is(err, tc.want) {
			t.Errorf("promote v%d: %v; want %v", tc.version, err, tc.want)
		}
		if _, err := u.d.Unstage(context.Background(), "web", tc.version, &bytes.Buffer{}); !errors.Is(err, tc.want) {
			t.Errorf("unstage v%d: %v; want %v", tc.version, err, tc.want)
		}
	}
	if a := u.get(t, "web"); a.Active != 2 || len(u.running("web", 2)) != 1 {
		t.Errorf("active v%d with %d replicas after the refusals; want v2 with 1", a.Active, len(u.running("web", 2)))
	}
}
