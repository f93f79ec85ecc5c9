package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func gitOut(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("git %v: %v %s", args, err, stderr)
	}
	return strings.TrimRight(string(out), "\n")
}

func TestGitRemote(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	f := newFake(t, nil)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("GIT_CONFIG_GLOBAL", filepath.Join(home, "gitconfig"))
	t.Setenv("GIT_TERMINAL_PROMPT", "0")

	repo := t.TempDir()
	t.Chdir(repo)

	// Outside a repository: a clear error.
	if _, errOut, code := run("git:remote", "web"); code != 1 || !strings.Contains(errOut, "not inside a git repository") {
		t.Errorf("outside a repo: exit %d, stderr %q", code, errOut)
	}

	gitOut(t, "", "init", "-q")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wantURL := f.URL + "/git/web.git"
	wantHelper := "!" + shellQuote(exe) + " git-credential"
	section := "credential." + f.URL

	// Twice: the second run takes the set-url path and must not pile up helpers.
	for i := range 2 {
		out, errOut, code := run("git:remote", "web")
		if code != 0 {
			t.Fatalf("run %d: exit %d, stderr %q", i, code, errOut)
		}
		if !strings.Contains(out, wantURL) {
			t.Errorf("stdout %q lacks %s", out, wantURL)
		}
		if got := gitOut(t, "", "remote", "get-url", "platform"); got != wantURL {
			t.Errorf("remote url %q, want %q", got, wantURL)
		}
		helpers := strings.Split(gitOut(t, "", "config", "--get-all", section+".helper"), "\n")
		if len(helpers) != 2 || helpers[0] != "" || helpers[1] != wantHelper {
			t.Errorf("helpers %q, want [\"\" %q]", helpers, wantHelper)
		}
		if got := gitOut(t, "", "config", "--get", section+".helper"); got != wantHelper {
			t.Errorf("effective helper %q, want %q", got, wantHelper)
		}
		if got := gitOut(t, "", "config", "--get", section+".username"); got != "plat" {
			t.Errorf("username %q", got)
		}
	}

	// An existing remote with another name and URL is re-pointed.
	gitOut(t, "", "remote", "add", "deploy", "http://elsewhere.test/x.git")
	if _, errOut, code := run("git:remote", "web", "--remote", "deploy"); code != 0 {
		t.Fatalf("--remote deploy: exit %d, stderr %q", code, errOut)
	}
	if got := gitOut(t, "", "remote", "get-url", "deploy"); got != wantURL {
		t.Errorf("deploy url %q, want %q", got, wantURL)
	}

	b, err := os.ReadFile(filepath.Join(repo, ".git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), testToken) {
		t.Errorf(".git/config contains the token:\n%s", b)
	}

	// End to end: git asks the helper (this test binary, see TestMain) and gets the token.
	t.Setenv("PLAT_CLI_TEST_MAIN", "1")
	got := gitOut(t, "url="+wantURL+"\n\n", "credential", "fill")
	if !strings.Contains(got, "username=plat") || !strings.Contains(got, "password="+testToken) {
		t.Errorf("git credential fill gave %q", got)
	}

	// Unknown app: the daemon's message, nothing changed.
	t.Setenv("PLAT_CLI_TEST_MAIN", "")
	if _, errOut, code := run("git:remote", "nope", "--remote", "other"); code != 1 || !strings.Contains(errOut, `no app named "nope"`) {
		t.Errorf("unknown app: exit %d, stderr %q", code, errOut)
	}
}

func TestShellQuote(t *testing.T) {
	tests := map[string]string{
		"/usr/local/bin/plat": "/usr/local/bin/plat",
		"/opt/my apps/plat":   "'/opt/my apps/plat'",
		"/tmp/it's/plat":      `'/tmp/it'\''s/plat'`,
	}
	for in, want := range tests {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
