package deploy

import (
	"path/filepath"
	"testing"

	"github.com/plat-paas/plat/store"
)

// A rebuilt image replaces the missing one in the release it was built for
// and in every release that shared it (config releases), not in others.
func TestReplaceImage(t *testing.T) {
	tests := []struct {
		name    string
		old     string
		version int
		want    []string // image of v1, v2, v3 afterwards
	}{
		{"shared image", "sha256:a", 2, []string{"sha256:new", "sha256:new", "sha256:b"}},
		{"own image", "sha256:b", 3, []string{"sha256:a", "sha256:a", "sha256:new"}},
		{"no image recorded", "", 3, []string{"sha256:a", "sha256:a", "sha256:new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := store.Open(filepath.Join(t.TempDir(), "plat.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.CreateApp(store.App{Name: "web"}); err != nil {
				t.Fatal(err)
			}
			for _, img := range []string{"sha256:a", "sha256:a", "sha256:b"} {
				if _, err := st.CreateRelease(store.Release{App: "web", Cause: store.CausePush, ImageID: img}); err != nil {
					t.Fatal(err)
				}
			}
			d := New(st, nil, nil, Config{}, nil)
			if err := d.replaceImage("web", tt.old, tt.version, "sha256:new"); err != nil {
				t.Fatal(err)
			}
			rels, err := st.ListReleases("web")
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rels {
				if r.ImageID != tt.want[i] {
					t.Errorf("v%d image %q, want %q", r.Version, r.ImageID, tt.want[i])
				}
			}
		})
	}
}

func TestLastLines(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb", 5, "a\nb"},
		{"", 3, ""},
	}
	for _, tt := range tests {
		if got := lastLines(tt.in, tt.n); got != tt.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
