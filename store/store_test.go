package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "plat.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Tests don't need durability; skipping fsync keeps them fast.
	s.db.NoSync = true
	t.Cleanup(func() { s.Close() })
	return s, path
}

func mustCreateApp(t *testing.T, s *Store, name string) {
	t.Helper()
	if err := s.CreateApp(App{Name: name}); err != nil {
		t.Fatalf("CreateApp(%q): %v", name, err)
	}
}

func mustCreateRelease(t *testing.T, s *Store, app string) Release {
	t.Helper()
	r, err := s.CreateRelease(Release{App: app, Cause: CausePush})
	if err != nil {
		t.Fatalf("CreateRelease(%q): %v", app, err)
	}
	return r
}

func TestApps(t *testing.T) {
	s, _ := newStore(t)

	for _, name := range []string{"web", "api", "worker"} {
		mustCreateApp(t, s, name)
	}

	tests := []struct {
		name    string
		app     App
		wantErr error
	}{
		{"duplicate", App{Name: "web"}, ErrExists},
		{"new", App{Name: "blog", Env: map[string]string{"A": "1"}}, nil},
	}
	for _, tt := range tests {
		t.Run("create/"+tt.name, func(t *testing.T) {
			err := s.CreateApp(tt.app)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("CreateApp(%q) = %v, want %v", tt.app.Name, err, tt.wantErr)
			}
		})
	}
	if err := s.CreateApp(App{}); err == nil {
		t.Error("CreateApp with empty name succeeded")
	}

	a, err := s.GetApp("blog")
	if err != nil {
		t.Fatalf("GetApp: %v", err)
	}
	if a.Env["A"] != "1" || a.CreatedAt.IsZero() {
		t.Errorf("GetApp = %+v, want env A=1 and CreatedAt set", a)
	}
	if _, err := s.GetApp("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetApp(nope) = %v, want ErrNotFound", err)
	}

	apps, err := s.ListApps()
	if err != nil {
		t.Fatalf("ListApps: %v", err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	if got, want := strings.Join(names, ","), "api,blog,web,worker"; got != want {
		t.Errorf("ListApps = %s, want %s", got, want)
	}

	// Update: success, fn error aborts, forbidden changes, missing app.
	errBoom := errors.New("boom")
	updates := []struct {
		name    string
		app     string
		fn      func(*App) error
		wantErr error
		wantEnv string
	}{
		{"ok", "blog", func(a *App) error { a.Env = map[string]string{"A": "2"}; return nil }, nil, "2"},
		{"abort", "blog", func(a *App) error { a.Env = map[string]string{"A": "3"}; return errBoom }, errBoom, "2"},
		{"rename", "blog", func(a *App) error { a.Name = "other"; return nil }, errAny, "2"},
		{"set active", "blog", func(a *App) error { a.Active = 7; return nil }, errAny, "2"},
		{"missing", "nope", func(a *App) error { return nil }, ErrNotFound, ""},
	}
	for _, tt := range updates {
		t.Run("update/"+tt.name, func(t *testing.T) {
			err := s.UpdateApp(tt.app, tt.fn)
			checkErr(t, err, tt.wantErr)
			if tt.wantEnv == "" {
				return
			}
			a, err := s.GetApp(tt.app)
			if err != nil {
				t.Fatalf("GetApp: %v", err)
			}
			if a.Env["A"] != tt.wantEnv {
				t.Errorf("env A = %q, want %q", a.Env["A"], tt.wantEnv)
			}
		})
	}

	if err := s.DeleteApp("blog"); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}
	if _, err := s.GetApp("blog"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetApp after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteApp("blog"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteApp = %v, want ErrNotFound", err)
	}
}

// errAny marks test cases that expect some error, whatever it is.
var errAny = errors.New("any error")

func checkErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want == errAny && err == nil:
		t.Fatal("expected an error, got nil")
	case want != nil && want != errAny && !errors.Is(err, want):
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func TestReleaseVersions(t *testing.T) {
	s, _ := newStore(t)
	mustCreateApp(t, s, "web")
	mustCreateApp(t, s, "api")

	if _, err := s.CreateRelease(Release{App: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("CreateRelease for missing app = %v, want ErrNotFound", err)
	}
	if _, err := s.CreateRelease(Release{App: "web", Status: StatusActive}); !errors.Is(err, ErrInvalidState) {
		t.Errorf("CreateRelease active = %v, want ErrInvalidState", err)
	}

	// Failures in between must not free up a version number, and apps
	// count independently.
	steps := []struct {
		app     string
		fail    bool
		wantVer int
	}{
		{"web", true, 1},
		{"web", false, 2},
		{"api", true, 1},
		{"web", true, 3},
		{"web", false, 4},
		{"api", false, 2},
	}
	for _, st := range steps {
		r := mustCreateRelease(t, s, st.app)
		if r.Version != st.wantVer {
			t.Fatalf("%s release version = %d, want %d", st.app, r.Version, st.wantVer)
		}
		if r.Status != StatusDeploying || r.CreatedAt.IsZero() {
			t.Errorf("new release = %+v, want deploying with CreatedAt", r)
		}
		if st.fail {
			if err := s.FailRelease(st.app, r.Version, "build failed"); err != nil {
				t.Fatalf("FailRelease: %v", err)
			}
		}
	}

	rels, err := s.ListReleases("web")
	if err != nil {
		t.Fatalf("ListReleases: %v", err)
	}
	for i, r := range rels {
		if r.Version != i+1 || r.App != "web" {
			t.Errorf("ListReleases[%d] = v%d %s, want v%d web", i, r.Version, r.App, i+1)
		}
	}
	if len(rels) != 4 {
		t.Errorf("ListReleases len = %d, want 4", len(rels))
	}

	got, err := s.GetRelease("web", 3)
	if err != nil {
		t.Fatalf("GetRelease: %v", err)
	}
	if got.Status != StatusFailed || got.Reason != "build failed" || got.FinishedAt.IsZero() {
		t.Errorf("failed release = %+v", got)
	}

	notFound := []struct {
		app     string
		version int
	}{{"web", 99}, {"web", 0}, {"web", -1}, {"nope", 1}}
	for _, tt := range notFound {
		if _, err := s.GetRelease(tt.app, tt.version); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetRelease(%s, %d) = %v, want ErrNotFound", tt.app, tt.version, err)
		}
	}
	if _, err := s.ListReleases("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ListReleases(nope) = %v, want ErrNotFound", err)
	}
}

func TestUpdateRelease(t *testing.T) {
	s, _ := newStore(t)
	mustCreateApp(t, s, "web")
	r := mustCreateRelease(t, s, "web")

	tests := []struct {
		name    string
		version int
		fn      func(*Release) error
		wantErr error
	}{
		{"set image", r.Version, func(r *Release) error { r.ImageID = "sha256:abc"; return nil }, nil},
		{"abort", r.Version, func(r *Release) error { r.ImageID = "x"; return errors.New("no") }, errAny},
		{"change version", r.Version, func(r *Release) error { r.Version = 5; return nil }, errAny},
		{"make active", r.Version, func(r *Release) error { r.Status = StatusActive; return nil }, ErrInvalidState},
		{"missing", 42, func(r *Release) error { return nil }, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, s.UpdateRelease("web", tt.version, tt.fn), tt.wantErr)
		})
	}
	got, err := s.GetRelease("web", r.Version)
	if err != nil {
		t.Fatalf("GetRelease: %v", err)
	}
	if got.ImageID != "sha256:abc" || got.Status != StatusDeploying {
		t.Errorf("release = %+v, want image sha256:abc, deploying", got)
	}
}

func TestActivateRelease(t *testing.T) {
	s, _ := newStore(t)
	mustCreateApp(t, s, "web")
	for range 4 {
		mustCreateRelease(t, s, "web")
	}
	if err := s.FailRelease("web", 3, "unhealthy"); err != nil {
		t.Fatalf("FailRelease: %v", err)
	}

	steps := []struct {
		activate   int
		wantErr    error
		wantActive int
		wantStatus map[int]Status
	}{
		{1, nil, 1, map[int]Status{1: StatusActive, 2: StatusDeploying, 3: StatusFailed, 4: StatusDeploying}},
		{2, nil, 2, map[int]Status{1: StatusSuperseded, 2: StatusActive, 3: StatusFailed, 4: StatusDeploying}},
		{2, nil, 2, map[int]Status{1: StatusSuperseded, 2: StatusActive}}, // idempotent
		{3, ErrInvalidState, 2, map[int]Status{2: StatusActive, 3: StatusFailed}},
		{99, ErrNotFound, 2, map[int]Status{2: StatusActive}},
		{4, nil, 4, map[int]Status{1: StatusSuperseded, 2: StatusSuperseded, 3: StatusFailed, 4: StatusActive}},
		{1, nil, 1, map[int]Status{1: StatusActive, 2: StatusSuperseded, 4: StatusSuperseded}}, // back to an old one
	}
	for i, st := range steps {
		t.Run(fmt.Sprintf("%d/v%d", i, st.activate), func(t *testing.T) {
			checkErr(t, s.ActivateRelease("web", st.activate), st.wantErr)
			a, err := s.GetApp("web")
			if err != nil {
				t.Fatalf("GetApp: %v", err)
			}
			if a.Active != st.wantActive {
				t.Errorf("App.Active = %d, want %d", a.Active, st.wantActive)
			}
			rels, err := s.ListReleases("web")
			if err != nil {
				t.Fatalf("ListReleases: %v", err)
			}
			active := 0
			for _, r := range rels {
				if r.Status == StatusActive {
					active++
					if r.FinishedAt.IsZero() {
						t.Errorf("active v%d has no FinishedAt", r.Version)
					}
				}
				if want, ok := st.wantStatus[r.Version]; ok && r.Status != want {
					t.Errorf("v%d status = %s, want %s", r.Version, r.Status, want)
				}
			}
			if active != 1 {
				t.Errorf("%d active releases, want exactly 1", active)
			}
		})
	}

	if err := s.ActivateRelease("nope", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("ActivateRelease(nope) = %v, want ErrNotFound", err)
	}
}

func TestActivateConcurrent(t *testing.T) {
	s, _ := newStore(t)
	mustCreateApp(t, s, "web")
	const n = 20
	for range n {
		mustCreateRelease(t, s, "web")
	}
	var wg sync.WaitGroup
	for v := 1; v <= n; v++ {
		wg.Go(func() {
			if err := s.ActivateRelease("web", v); err != nil {
				t.Errorf("ActivateRelease(%d): %v", v, err)
			}
		})
	}
	wg.Wait()
	rels, err := s.ListReleases("web")
	if err != nil {
		t.Fatalf("ListReleases: %v", err)
	}
	a, err := s.GetApp("web")
	if err != nil {
		t.Fatalf("GetApp: %v", err)
	}
	var active []int
	for _, r := range rels {
		if r.Status == StatusActive {
			active = append(active, r.Version)
		}
	}
	if len(active) != 1 || active[0] != a.Active {
		t.Errorf("active releases %v, App.Active %d: want exactly one, matching", active, a.Active)
	}
}

func TestFailRelease(t *testing.T) {
	s, _ := newStore(t)
	mustCreateApp(t, s, "web")
	for range 3 {
		mustCreateRelease(t, s, "web")
	}
	if err := s.ActivateRelease("web", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.ActivateRelease("web", 2); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		app     string
		version int
		wantErr error
	}{
		{"deploying", "web", 3, nil},
		{"already failed", "web", 3, nil},
		{"active", "web", 2, ErrInvalidState},
		{"superseded", "web", 1, ErrInvalidState},
		{"missing release", "web", 9, ErrNotFound},
		{"missing app", "nope", 1, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, s.FailRelease(tt.app, tt.version, "reason: "+tt.name), tt.wantErr)
		})
	}

	r, err := s.GetRelease("web", 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusFailed || r.Reason != "reason: already failed" || r.FinishedAt.IsZero() {
		t.Errorf("v3 = %+v, want failed with reason and FinishedAt", r)
	}
	r, err = s.GetRelease("web", 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusActive {
		t.Errorf("v2 status = %s after refused FailRelease, want active", r.Status)
	}
}

func TestDeployingReleases(t *testing.T) {
	s, _ := newStore(t)
	mustCreateApp(t, s, "web")
	mustCreateApp(t, s, "api")
	mustCreateApp(t, s, "idle") // no releases at all

	got, err := s.DeployingReleases()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("DeployingReleases on fresh store = %v, want none", got)
	}

	for range 3 {
		mustCreateRelease(t, s, "web")
	}
	mustCreateRelease(t, s, "api")
	if err := s.ActivateRelease("web", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.FailRelease("web", 2, "x"); err != nil {
		t.Fatal(err)
	}

	got, err = s.DeployingReleases()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range got {
		keys = append(keys, fmt.Sprintf("%s/v%d", r.App, r.Version))
	}
	if got, want := strings.Join(keys, ","), "api/v1,web/v3"; got != want {
		t.Errorf("DeployingReleases = %s, want %s", got, want)
	}
}

func TestBuildLog(t *testing.T) {
	s, _ := newStore(t)
	mustCreateApp(t, s, "web")
	mustCreateRelease(t, s, "web")
	mustCreateRelease(t, s, "web")

	// A big log whose last line is unique, so we can check the tail is kept.
	big := bytes.Repeat([]byte("step output line\n"), 2*MaxBuildLog/17)
	big = append(big, "FINAL LINE\n"...)
	exact := bytes.Repeat([]byte("x"), MaxBuildLog)

	tests := []struct {
		name      string
		version   int
		log       []byte
		truncated bool
	}{
		{"small", 1, []byte("hello\nworld\n"), false},
		{"empty", 1, []byte{}, false},
		{"exactly max", 1, exact, false},
		{"big", 2, big, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.SetBuildLog("web", tt.version, tt.log); err != nil {
				t.Fatalf("SetBuildLog: %v", err)
			}
			got, err := s.BuildLog("web", tt.version)
			if err != nil {
				t.Fatalf("BuildLog: %v", err)
			}
			if len(got) > MaxBuildLog {
				t.Errorf("stored %d bytes, want at most %d", len(got), MaxBuildLog)
			}
			if !tt.truncated {
				if !bytes.Equal(got, tt.log) {
					t.Errorf("log changed: got %d bytes, want %d", len(got), len(tt.log))
				}
				return
			}
			if !bytes.HasPrefix(got, []byte(truncatedPrefix)) {
				t.Errorf("truncated log does not start with the marker: %q", got[:40])
			}
			if !bytes.HasSuffix(got, []byte("FINAL LINE\n")) {
				t.Errorf("truncated log lost its tail")
			}
			rest := got[len(truncatedPrefix):]
			if !bytes.HasSuffix(tt.log, rest) {
				t.Errorf("kept bytes are not the tail of the input")
			}
		})
	}

	notFound := []struct {
		name    string
		app     string
		version int
	}{
		{"version zero", "web", 0},
		{"missing release", "web", 7},
		{"missing app", "nope", 1},
	}
	for _, tt := range notFound {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.BuildLog(tt.app, tt.version); !errors.Is(err, ErrNotFound) {
				t.Errorf("BuildLog = %v, want ErrNotFound", err)
			}
		})
	}
	if err := s.SetBuildLog("web", 9, []byte("x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetBuildLog for missing release = %v, want ErrNotFound", err)
	}
	mustCreateRelease(t, s, "web")
	if _, err := s.BuildLog("web", 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("BuildLog for release without log = %v, want ErrNotFound", err)
	}
}

func TestTruncateLogUTF8(t *testing.T) {
	// "é" is two bytes; an odd cut would land inside one.
	log := bytes.Repeat([]byte("é"), MaxBuildLog)
	got := truncateLog(log)
	if len(got) > MaxBuildLog {
		t.Fatalf("len = %d, want <= %d", len(got), MaxBuildLog)
	}
	if rest := got[len(truncatedPrefix):]; !bytes.HasPrefix(rest, []byte("é")) {
		t.Errorf("tail starts mid-rune: % x", rest[:4])
	}
}

func TestDeleteAppRemovesEverything(t *testing.T) {
	s, _ := newStore(t)
	mustCreateApp(t, s, "web")
	mustCreateApp(t, s, "api")
	for range 3 {
		mustCreateRelease(t, s, "web")
	}
	mustCreateRelease(t, s, "api")
	if err := s.SetBuildLog("web", 1, []byte("log")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEvent(Event{App: "web", Kind: "deploy", Message: "hi"}); err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteApp("web"); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}
	if _, err := s.ListReleases("web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ListReleases after delete = %v, want ErrNotFound", err)
	}
	if _, err := s.BuildLog("web", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("BuildLog after delete = %v, want ErrNotFound", err)
	}
	got, err := s.DeployingReleases()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].App != "api" {
		t.Errorf("DeployingReleases after delete = %+v, want only api", got)
	}

	// A recreated app starts with a clean slate.
	mustCreateApp(t, s, "web")
	rels, err := s.ListReleases("web")
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.ListEvents("web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 0 || len(events) != 0 {
		t.Errorf("recreated app has %d releases and %d events, want none", len(rels), len(events))
	}
	// The other app is untouched.
	if rels, err := s.ListReleases("api"); err != nil || len(rels) != 1 {
		t.Errorf("api releases = %v, %v; want 1", rels, err)
	}
}

func TestTokens(t *testing.T) {
	s, path := newStore(t)

	has, err := s.HasTokens()
	if err != nil || has {
		t.Fatalf("HasTokens on fresh store = %v, %v; want false", has, err)
	}
	admin, err := s.CreateToken("admin")
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	ci, err := s.CreateToken("ci")
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	if admin == ci || len(admin) != 64 {
		t.Fatalf("tokens %q, %q: want two distinct 64-char hex tokens", admin, ci)
	}
	if _, err := s.CreateToken(""); err == nil {
		t.Error("CreateToken with empty name succeeded")
	}
	has, err = s.HasTokens()
	if err != nil || !has {
		t.Fatalf("HasTokens = %v, %v; want true", has, err)
	}

	tests := []struct {
		name     string
		token    string
		wantName string
		wantOK   bool
	}{
		{"admin", admin, "admin", true},
		{"ci", ci, "ci", true},
		{"wrong", strings.Repeat("0", 64), "", false},
		{"prefix", admin[:32], "", false},
		{"extra char", admin + "0", "", false},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, ok := s.VerifyToken(tt.token)
			if name != tt.wantName || ok != tt.wantOK {
				t.Errorf("VerifyToken = %q, %v; want %q, %v", name, ok, tt.wantName, tt.wantOK)
			}
		})
	}

	// Only hashes may reach the disk.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{admin, ci} {
		if bytes.Contains(data, []byte(tok)) {
			t.Errorf("plaintext token found in the database file")
		}
	}
	if !bytes.Contains(data, []byte(fmt.Sprintf("%x", hashToken(admin)))) {
		t.Errorf("token hash not found in the database file")
	}

	// Tokens survive a restart.
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if name, ok := s2.VerifyToken(ci); !ok || name != "ci" {
		t.Errorf("VerifyToken after reopen = %q, %v", name, ok)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plat.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	start := time.Now()
	s2, err := open(path, 50*time.Millisecond)
	if err == nil {
		s2.Close()
		t.Fatal("second open of a locked data file succeeded")
	}
	if !strings.Contains(err.Error(), "in use by another plat daemon") {
		t.Errorf("error = %q, want it to say the data dir is in use", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second open took %v, want it to give up quickly", d)
	}

	// Once the first store is closed, the file opens again with data intact.
	mustCreateApp(t, s, "web")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(path)
	if err != nil {
		t.Fatalf("Open after close: %v", err)
	}
	defer s3.Close()
	if _, err := s3.GetApp("web"); err != nil {
		t.Errorf("GetApp after reopen: %v", err)
	}
}

func TestEvents(t *testing.T) {
	s, _ := newStore(t)
	mustCreateApp(t, s, "web")
	mustCreateApp(t, s, "api")

	if err := s.AddEvent(Event{App: "nope", Kind: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddEvent for missing app = %v, want ErrNotFound", err)
	}
	if _, err := s.ListEvents("nope", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("ListEvents for missing app = %v, want ErrNotFound", err)
	}
	if got, err := s.ListEvents("web", 0); err != nil || len(got) != 0 {
		t.Errorf("ListEvents with no events = %v, %v; want empty", got, err)
	}

	const total = MaxEvents + 20
	for i := 1; i <= total; i++ {
		if err := s.AddEvent(Event{App: "web", Kind: "deploy", Release: i, Message: fmt.Sprint("event ", i)}); err != nil {
			t.Fatalf("AddEvent %d: %v", i, err)
		}
	}
	fixed := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.AddEvent(Event{App: "api", Kind: "create", Time: fixed}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		limit     int
		wantLen   int
		wantFirst int // Release of the oldest returned event
	}{
		{"all", 0, MaxEvents, total - MaxEvents + 1},
		{"negative", -1, MaxEvents, total - MaxEvents + 1},
		{"limit 10", 10, 10, total - 9},
		{"limit 1", 1, 1, total},
		{"limit above cap", 10000, MaxEvents, total - MaxEvents + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListEvents("web", tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.wantLen {
				t.Fatalf("len = %d, want %d", len(got), tt.wantLen)
			}
			for i, e := range got {
				if e.Release != tt.wantFirst+i {
					t.Fatalf("event[%d].Release = %d, want %d (oldest first, newest last)", i, e.Release, tt.wantFirst+i)
				}
				if e.Time.IsZero() || e.App != "web" {
					t.Fatalf("event[%d] = %+v, want App web and Time set", i, e)
				}
			}
		})
	}

	got, err := s.ListEvents("api", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Time.Equal(fixed) {
		t.Errorf("api events = %+v, want one at %v", got, fixed)
	}
}
