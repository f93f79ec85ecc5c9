package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A copy written while the store is in use opens as a store with the same
// apps, releases and tokens, and passes Check.
func TestWriteToCopiesEverything(t *testing.T) {
	s, _ := newStore(t)
	mustCreateApp(t, s, "web")
	rel := mustCreateRelease(t, s, "web")
	if err := s.ActivateRelease("web", rel.Version); err != nil {
		t.Fatal(err)
	}
	token, err := s.CreateToken("ci")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	// Writes after the copy are not in it.
	mustCreateApp(t, s, "later")

	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path)
	if err != nil {
		t.Fatalf("open copy: %v", err)
	}
	defer c.Close()
	if err := c.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	apps, err := c.ListApps()
	if err != nil || len(apps) != 1 || apps[0].Name != "web" || apps[0].Active != rel.Version {
		t.Fatalf("apps in copy = %+v, %v; want web with v%d active", apps, err, rel.Version)
	}
	if _, ok := c.VerifyToken(token); !ok {
		t.Fatal("token does not verify against the copy")
	}
	// The version counter came along: the next release is v2, not v1 again.
	next, err := c.CreateRelease(Release{App: "web", Cause: CausePush})
	if err != nil || next.Version != rel.Version+1 {
		t.Fatalf("next release in copy = v%d, %v; want v%d", next.Version, err, rel.Version+1)
	}
}
