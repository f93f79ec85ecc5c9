package daemon_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/plat-paas/plat/internal/browsertest"
)

// TestInstallCLI: `curl -fsSL DAEMON/install-cli | sh` installs a working
// plat from the daemon's --cli-dir, verified against its checksum, with no
// token; a tampered binary is refused; missing builds say how to make them.
func TestInstallCLI(t *testing.T) {
	cliDir := t.TempDir()
	d := startDaemon(t, "--cli-dir", cliDir)
	base := "http://" + d.apiAddr
	target := runtime.GOOS + "-" + runtime.GOARCH
	bin, err := os.ReadFile(platBin)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(content []byte, sum []byte) {
		t.Helper()
		must(t, os.WriteFile(filepath.Join(cliDir, "plat-"+target), content, 0o755))
		must(t, os.WriteFile(filepath.Join(cliDir, "plat-"+target+".sha256"), fmt.Appendf(nil, "%x  plat-%s\n", sum, target), 0o644))
	}
	sum := sha256.Sum256(bin)
	publish(bin, sum[:])

	// install runs the documented pipeline with POSIX sh (dash on Debian).
	install := func(dir string) (string, error) {
		cmd := exec.Command("sh", "-c", `curl -fsSL "$1/install-cli" | sh`, "sh", base)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "PLAT_INSTALL_DIR="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	dir := filepath.Join(t.TempDir(), "bin")
	out, err := install(dir)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	for _, want := range []string{"Installed plat", "plat login " + base + " --token YOUR_TOKEN", "is not on your PATH"} {
		if !strings.Contains(out, want) {
			t.Errorf("install output lacks %q:\n%s", want, out)
		}
	}
	ver, err := exec.Command(filepath.Join(dir, "plat"), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(ver), "plat ") {
		t.Fatalf("installed plat version: %v %q", err, ver)
	}

	// A binary that does not match its checksum is not installed.
	publish(append(slices.Clone(bin), 0), sum[:])
	dir2 := filepath.Join(t.TempDir(), "bin")
	out, err = install(dir2)
	if err == nil || !strings.Contains(out, "does not match its checksum") {
		t.Fatalf("tampered binary: err %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir2, "plat")); err == nil {
		t.Fatal("a tampered binary was installed")
	}

	// Downloads need no token; names outside the four targets are 404.
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/cli/plat-" + target + ".sha256"); code != 200 || !strings.HasPrefix(body, fmt.Sprintf("%x", sum)) {
		t.Errorf("checksum: %d %q", code, body)
	}
	other := "darwin-arm64"
	if target == other {
		other = "linux-arm64"
	}
	if code, body := get("/cli/plat-" + other); code != 404 || !strings.Contains(body, "install.sh") || !strings.Contains(body, "go build") {
		t.Errorf("missing build: %d %q, want 404 saying how to build it", code, body)
	}
	for _, p := range []string{"/cli/plat-windows-amd64", "/cli/..%2fplat.db", "/cli/plat-" + target + ".exe"} {
		if code, _ := get(p); code != 404 {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}

	// Nothing built at all: the script says so before downloading.
	os.Remove(filepath.Join(cliDir, "plat-"+target+".sha256"))
	out, err = install(filepath.Join(t.TempDir(), "bin"))
	if err == nil || !strings.Contains(out, "no CLI build for "+target+" (it has: none)") || !strings.Contains(out, "install.sh") {
		t.Fatalf("no builds: err %v\n%s", err, out)
	}
}

// TestCLIDashboardOpenCompletion: `plat dashboard` gives a one-time link
// (never the token) that logs a browser in; `plat open` knows the app's
// URL; bash completion lists the daemon's apps and releases.
func TestCLIDashboardOpenCompletion(t *testing.T) {
	d := startDaemon(t)
	d.deployedApp("web", "v1")
	d.mustPlat("config:set", "web", "A=1") // v2
	d.createApp("worker")

	t.Run("dashboard login link", func(t *testing.T) {
		link := strings.TrimSpace(d.mustPlat("dashboard", "--print"))
		if !strings.HasPrefix(link, "http://"+d.apiAddr+"/login/once?n=") || strings.Contains(link, d.token) {
			t.Fatalf("link %q: want the daemon's /login/once, never the token", link)
		}
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar}
		resp, err := browser.Get(link)
		must(t, err)
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Request.URL.Path != "/" || !strings.Contains(string(page), "csrf-token") {
			t.Fatalf("following the link: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		resp, err = browser.Get("http://" + d.apiAddr + "/api/apps") // the session works for the API
		must(t, err)
		apps, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(apps), `"web"`) {
			t.Fatalf("API with the link's session: %d %s", resp.StatusCode, apps)
		}
		other, _ := cookiejar.New(nil)
		resp, err = (&http.Client{Jar: other}).Get(link)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusGone {
			t.Fatalf("the link used a second time: %d, want 410", resp.StatusCode)
		}
	})

	// A browser opening the link lands logged in on the apps page, whose
	// "Use the CLI" panel shows this daemon's install and login lines.
	t.Run("browser", func(t *testing.T) {
		chromium := browsertest.Require(t)
		link := strings.TrimSpace(d.mustPlat("dashboard", "--print"))
		ctx := browsertest.New(t, chromium)
		must(t, chromedp.Do(ctx,
			chromedp.Navigate(link),
			chromedp.WaitVisible(chromedp.CSS(`.app-card[data-app="web"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#cli`)),
		))
		loc, err := chromedp.Run(ctx, chromedp.Location())
		must(t, err)
		panel, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#cli`)))
		must(t, err)
		base := "http://" + d.apiAddr
		if loc != base+"/" {
			t.Errorf("landed at %q, want %s/", loc, base)
		}
		for _, want := range []string{"curl -fsSL " + base + "/install-cli | sh", "plat login " + base + " --token YOUR_TOKEN"} {
			if !strings.Contains(panel, want) {
				t.Errorf("CLI panel %q lacks %q", panel, want)
			}
		}
		if strings.Contains(panel, d.token) || strings.Contains(loc, d.token) {
			t.Error("the token is on the page or in the URL")
		}
		screenshot(t, ctx, filepath.Join(testOutDir(t), "dashboard-cli.png"))
	})

	t.Run("open", func(t *testing.T) {
		_, port, _ := strings.Cut(d.httpAddr, ":")
		if got, want := strings.TrimSpace(d.mustPlat("open", "web", "--print")), "http://web.localhost:"+port+"/"; got != want {
			t.Fatalf("plat open --print: %q, want %q", got, want)
		}
	})

	t.Run("bash completion", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), "plat.bash")
		must(t, os.WriteFile(script, []byte(d.mustPlat("completion", "bash")), 0o644))
		for line, want := range map[string]string{
			"plat apps:info ":      "web worker",
			"plat rollback web ":   "v1 v2",
			"plat releases:log we": "web",
		} {
			cmd := exec.Command("bash", "--norc", "--noprofile", "-c", `source "$1"; COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}; _plat; printf '%s\n' "${COMPREPLY[@]}"`, "bash", script, line)
			cmd.Env = append(d.env(), "PATH="+filepath.Dir(platBin)+":"+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			must(t, err)
			got := strings.Fields(string(out))
			slices.Sort(got)
			if !slices.Equal(got, strings.Fields(want)) { // sorted
				t.Errorf("%q: %q, want %q", line, got, want)
			}
		}
	})
}
