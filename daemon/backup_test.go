package daemon

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBackupEntryPath(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"plat.db", true},
		{"ca/root.pem", true},
		{"certs/certificates/local/web.localhost/web.localhost.crt", true},
		{"repos/web.bundle", true},
		{"ssh/host_ed25519_key", true},
		{"ssh", false},
		{"repos/my-app2.bundle", true},
		{"manifest.json", false}, // only as the first entry
		{"", false},
		{"/etc/passwd", false},
		{"../plat.db", false},
		{"..", false},
		{"ca/../../outside", false},
		{"repos/../plat.db", false},
		{"./plat.db", false},
		{"ca//root.pem", false},
		{"ca", false},
		{"ca/", false},
		{`ca\..\..\x`, false},
		{"plat.db/x", false},
		{"repos/web.git/HEAD", false},
		{"repos/Web.bundle", false},
		{"repos/a/b.bundle", false},
		{"repos/plat.bundle", false}, // a reserved name is no app
		{"repos/web", false},
		{"other.txt", false},
	}
	for _, tt := range tests {
		got, err := backupEntryPath(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("backupEntryPath(%q) = %q, %v; want ok=%v", tt.name, got, err, tt.ok)
		}
		if err == nil && got != tt.name {
			t.Errorf("backupEntryPath(%q) = %q", tt.name, got)
		}
	}
}

func TestParseInterleaved(t *testing.T) {
	for _, args := range [][]string{
		{"FILE", "--force", "--data", "/d"},
		{"--force", "FILE", "--data=/d"},
		{"--data", "/d", "--force", "FILE"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		force := fs.Bool("force", false, "")
		data := fs.String("data", "", "")
		pos, err := parseInterleaved(fs, args)
		if err != nil || !slices.Equal(pos, []string{"FILE"}) || !*force || *data != "/d" {
			t.Errorf("parseInterleaved(%q) = %q, %v; force %v data %q", args, pos, err, *force, *data)
		}
	}
}

// git runs git in dir (a checkout) or fails the test.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// A release's commit that no branch reaches any more (main was force-pushed
// after it, then the app rolled back to it) is still in the bundle, and the
// app's repository is not written to.
func TestBundleRepoKeepsReleaseCommits(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs git; under CI=true it may not skip")
		}
		t.Skip("needs git")
	}
	dir := t.TempDir()
	live := filepath.Join(dir, "web.git")
	work := filepath.Join(dir, "work")
	git(t, dir, "init", "-q", "--bare", "--initial-branch=main", live)
	git(t, dir, "init", "-q", "-b", "main", work)
	git(t, work, "commit", "-q", "--allow-empty", "-m", "one")
	one := git(t, work, "rev-parse", "HEAD")
	git(t, work, "push", "-q", live, "main")
	git(t, work, "checkout", "-q", "--orphan", "other")
	git(t, work, "commit", "-q", "--allow-empty", "-m", "rewritten")
	two := git(t, work, "rev-parse", "HEAD")
	git(t, work, "push", "-q", "--force", live, "other:main")
	refsBefore := git(t, live, "for-each-ref")

	bundle := filepath.Join(dir, "web.bundle")
	ok, warnings, err := bundleRepo(context.Background(), live, bundle, []string{one}, []string{one, two}, 0)
	if err != nil || !ok || len(warnings) > 0 {
		t.Fatalf("bundleRepo = %v, %v, %v", ok, warnings, err)
	}
	if got := git(t, live, "for-each-ref"); got != refsBefore {
		t.Errorf("bundleRepo changed the app's refs:\n%s\nwas:\n%s", got, refsBefore)
	}
	restored := filepath.Join(dir, "restored.git")
	git(t, dir, "init", "-q", "--bare", restored)
	git(t, dir, "--git-dir", restored, "fetch", "-q", bundle, "refs/*:refs/*")
	for _, sha := range []string{one, two} {
		if !hasCommit(context.Background(), restored, sha) {
			t.Errorf("commit %s is not in the bundle", sha)
		}
	}
	if got := git(t, dir, "--git-dir", restored, "rev-parse", "main"); got != two {
		t.Errorf("main in the bundle = %s, want %s", got, two)
	}

	// A repository with no commit yet has nothing to bundle, without error.
	empty := filepath.Join(dir, "empty.git")
	git(t, dir, "init", "-q", "--bare", empty)
	if ok, _, err := bundleRepo(context.Background(), empty, filepath.Join(dir, "empty.bundle"), nil, nil, 0); ok || err != nil {
		t.Errorf("bundleRepo of an empty repository = %v, %v; want false, nil", ok, err)
	}
	// A commit that is missing is reported, not fatal.
	_, warnings, err = bundleRepo(context.Background(), live, filepath.Join(dir, "w.bundle"), []string{strings.Repeat("ab", 20)}, nil, 0)
	if err != nil || len(warnings) != 1 {
		t.Errorf("bundleRepo with a missing commit = %v, %v; want one warning", warnings, err)
	}
}
