package store

import (
	"bytes"
	"strings"
	"testing"
)

// TestDeployLog: a release's deploy output is kept, bounded to its tail,
// read back after the store is reopened, and removed with the app.
func TestDeployLog(t *testing.T) {
	s, path := newStore(t)
	mustCreateApp(t, s, "web")
	rel := mustCreateRelease(t, s, "web")
	if _, err := s.DeployLog("web", rel.Version); !strings.Contains(errString(err), ErrNotFound.Error()) {
		t.Fatalf("deploy log before any was kept: %v, want not found", err)
	}
	if err := s.SetDeployLog("web", 99, []byte("x")); err == nil {
		t.Error("deploy log of a missing release was stored")
	}
	big := bytes.Repeat([]byte("é line\n"), MaxDeployLog/4)
	big = append(big, "-----> v1 failed: health check\n"...)
	if err := s.SetDeployLog("web", rel.Version, big); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.DeployLog("web", rel.Version)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > MaxDeployLog || !bytes.HasPrefix(got, []byte(truncatedPrefix)) || !bytes.HasSuffix(got, []byte("v1 failed: health check\n")) {
		t.Errorf("kept %d bytes starting %.40q ending %q", len(got), got, got[max(0, len(got)-30):])
	}
	if err := s.DeleteApp("web"); err != nil {
		t.Fatal(err)
	}
	mustCreateApp(t, s, "web")
	mustCreateRelease(t, s, "web")
	if _, err := s.DeployLog("web", 1); err == nil {
		t.Error("a new app of the same name shows the deleted app's deploy output")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
