package daemon_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// platDaemon runs `plat daemon ARGS...` (backup, restore, token) as the
// operator would on the host.
func platDaemon(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(platBin, append([]string{"daemon"}, args...)...).CombinedOutput()
	return string(out), err
}

// releaseHistory is `plat releases --json` without what a rebuild may
// change (the image ID and the container).
func (d *daemon) releaseHistory(app string) []map[string]any {
	d.t.Helper()
	var rels []map[string]any
	if err := json.Unmarshal([]byte(d.mustPlat("releases", app, "--json")), &rels); err != nil {
		d.t.Fatal(err)
	}
	for _, r := range rels {
		delete(r, "image_id")
		delete(r, "container_id")
	}
	return rels
}

var hostField = regexp.MustCompile(`host=\S+ `)

// Backup → wipe everything (containers, images, data dir) → restore →
// start: the app serves the same response with the same config at its own
// host and its custom domain, the release history is the same, an old token
// works, and the restored repository takes the next push.
func TestBackupRestore(t *testing.T) {
	d := startDaemon(t)
	r := d.deployedApp("web", "one")
	d.mustPlat("config:set", "web", "GREETING=hello")
	r.commit("two", "")
	r.mustPush("main")
	d.mustPlat("domains:add", "web", "www.example.com")
	out, err := platDaemon(t, "token", "--data", d.data, "--name", "ci")
	if err != nil {
		t.Fatalf("plat daemon token: %v\n%s", err, out)
	}
	ciToken := strings.TrimSpace(out)
	code, before := d.getHost("www.example.com", "/")
	if code != 200 || !strings.Contains(before, "version=two greeting=hello") {
		t.Fatalf("before the backup: %d %q", code, before)
	}
	history := d.releaseHistory("web")
	config := d.mustPlat("config", "web")
	// A second app is asleep when the backup is taken.
	d.deployedApp("nap", "v1")
	d.mustPlat("scale", "nap", "--min", "0", "--idle", "1s")
	waitFor(t, 30*time.Second, "nap to sleep", func() bool { return d.appState("nap").Status == "sleeping" })

	file := filepath.Join(t.TempDir(), "plat-backup.tar.gz")
	out, err = platDaemon(t, "backup", file, "--data", d.data)
	if err != nil || !strings.Contains(out, "Backed up 2 apps (nap, web)") || !strings.Contains(out, "from the running daemon") {
		t.Fatalf("plat daemon backup: %v\n%s", err, out)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600: it holds token hashes and the CA key", fi.Mode().Perm())
	}
	if !strings.Contains(d.log.String(), "backup written") {
		t.Errorf("daemon log has no line about the backup")
	}

	d.stop(syscall.SIGTERM)
	// With the daemon stopped, backup reads the data dir itself.
	offline := filepath.Join(t.TempDir(), "offline.tar.gz")
	if out, err := platDaemon(t, "backup", offline, "--data", d.data); err != nil || !strings.Contains(out, "no daemon is running") || !strings.Contains(out, "(nap, web)") {
		t.Fatalf("offline backup: %v\n%s", err, out)
	}

	// A new host: no containers, no images, no data.
	d.cleanupDocker()
	if imgs, _ := exec.Command("docker", "images", "-q", "--filter", "reference="+d.instance+"/web").Output(); len(strings.TrimSpace(string(imgs))) > 0 {
		t.Fatalf("images of web are still there: %s", imgs)
	}
	if err := os.RemoveAll(d.data); err != nil {
		t.Fatal(err)
	}
	out, err = platDaemon(t, "restore", file, "--data", d.data)
	if err != nil || !strings.Contains(out, "Restored 2 apps (nap, web)") {
		t.Fatalf("plat daemon restore: %v\n%s", err, out)
	}
	d.start()

	deadline := time.Now().Add(3 * time.Minute)
	var after string
	for time.Now().Before(deadline) {
		if code, after = d.getHost("www.example.com", "/"); code == 200 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if hostField.ReplaceAllString(after, "") != hostField.ReplaceAllString(before, "") {
		t.Fatalf("after the restore www.example.com answers %q, want %q (apart from the container)", after, before)
	}
	d.mustServe("web", "version=two greeting=hello")
	if got := d.releaseHistory("web"); !jsonEqual(got, history) {
		t.Errorf("release history after the restore:\n%v\nwant:\n%v", got, history)
	}
	if got := d.mustPlat("config", "web"); got != config {
		t.Errorf("config after the restore %q, want %q", got, config)
	}
	if got := d.mustPlat("domains", "web"); !strings.Contains(got, "www.example.com") {
		t.Errorf("domains after the restore: %s", got)
	}
	events := d.mustPlat("events", "web")
	if !strings.Contains(events, "rebuilt") {
		t.Errorf("no rebuilt event:\n%s", events)
	}
	if !strings.Contains(d.log.String(), "rebuilding") {
		t.Errorf("daemon log does not say it rebuilds web")
	}
	// The sleeping app was rebuilt too, stays asleep, and wakes on a request.
	waitFor(t, 3*time.Minute, "nap to be rebuilt", func() bool { return d.eventCount("nap", "rebuilt") == 1 })
	if got := d.appState("nap").Status; got != "sleeping" {
		t.Errorf("after the restore nap is %q, want sleeping", got)
	}
	d.mustServe("nap", "version=v1")
	// The token made before the backup still works.
	cmd := exec.Command(platBin, "apps")
	cmd.Env = append(d.env(), "PLAT_TOKEN="+ciToken)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "web") {
		t.Errorf("plat apps with the token made before the backup: %v\n%s", err, out)
	}
	// The repository came back: the next commit is a fast-forward.
	r.commit("three", "")
	r.mustPush("main")
	d.mustServe("web", "version=three greeting=hello")
	if rels := d.releaseHistory("web"); len(rels) != len(history)+1 {
		t.Errorf("%d releases after the next push, want %d", len(rels), len(history)+1)
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// A damaged, truncated or foreign file is refused with a clear message and
// nothing changes; a data dir that is not empty needs --force; a running
// daemon's dir is never restored over; backup never replaces a file without
// --force.
func TestRestoreRefusesBadInput(t *testing.T) {
	d := startDaemon(t)
	d.createApp("shop")
	file := filepath.Join(t.TempDir(), "backup.tar.gz")
	if out, err := platDaemon(t, "backup", file, "--data", d.data); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out, err := platDaemon(t, "backup", file, "--data", d.data)
	if err == nil || !strings.Contains(out, "already exists") || !strings.Contains(out, "--force") {
		t.Fatalf("backup over an existing file: %v\n%s", err, out)
	}
	if out, err := platDaemon(t, "backup", file, "--data", d.data, "--force"); err != nil {
		t.Fatalf("backup --force over an existing file: %v\n%s", err, out)
	}
	out, err = platDaemon(t, "restore", file, "--data", d.data, "--force")
	if err == nil || !strings.Contains(out, "daemon is running") {
		t.Fatalf("restore over a running daemon's dir: %v\n%s", err, out)
	}
	d.stop(syscall.SIGTERM)

	dir := t.TempDir()
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-6] ^= 0xff // in gzip's CRC-32 of the data
	bad := map[string][]byte{
		"truncated": good[:len(good)/2],
		"damaged":   flipped,
		"foreign":   []byte("not a backup at all\n"),
		"empty":     nil,
	}
	want := map[string]string{
		"truncated": "is truncated",
		"damaged":   "is damaged",
		"foreign":   "is not a plat backup",
		"empty":     "is not a plat backup",
	}
	storeBefore, err := os.ReadFile(filepath.Join(d.data, "plat.db"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(dir, name+".tar.gz")
			if err := os.WriteFile(f, data, 0o600); err != nil {
				t.Fatal(err)
			}
			fresh := filepath.Join(t.TempDir(), "data")
			out, err := platDaemon(t, "restore", f, "--data", fresh)
			if err == nil || !strings.Contains(out, want[name]) || !strings.Contains(out, "nothing was changed") {
				t.Fatalf("restore of a %s file: %v\n%s\nwant an error saying %q and that nothing changed", name, err, out, want[name])
			}
			if _, err := os.Stat(fresh); !os.IsNotExist(err) {
				t.Errorf("restore of a %s file left %s behind (%v)", name, fresh, err)
			}
			// Over an existing data dir, even with --force, nothing moves.
			if out, err := platDaemon(t, "restore", f, "--data", d.data, "--force"); err == nil {
				t.Fatalf("restore --force of a %s file succeeded:\n%s", name, out)
			}
			after, err := os.ReadFile(filepath.Join(d.data, "plat.db"))
			if err != nil || string(after) != string(storeBefore) {
				t.Fatalf("restore of a %s file changed the store (%v)", name, err)
			}
			if leftovers, _ := filepath.Glob(filepath.Join(d.data, ".restore-*")); len(leftovers) > 0 {
				t.Errorf("staging dirs left behind: %v", leftovers)
			}
		})
	}

	out, err = platDaemon(t, "restore", file, "--data", d.data)
	if err == nil || !strings.Contains(out, "is not empty") || !strings.Contains(out, "--force") {
		t.Fatalf("restore into a non-empty dir: %v\n%s", err, out)
	}
	if out, err := platDaemon(t, "restore", file, "--data", d.data, "--force"); err != nil || !strings.Contains(out, "Restored 1 app (shop)") {
		t.Fatalf("restore --force: %v\n%s", err, out)
	}
	d.start()
	if out := d.mustPlat("apps"); !strings.Contains(out, "shop") {
		t.Fatalf("apps after restore --force:\n%s", out)
	}
}

// A backup taken after a push went live but before git recorded it (the
// deploy is still draining the old version) waits for the commit, so the
// backup's repository holds the commit its store says is active.
func TestBackupDuringPush(t *testing.T) {
	d := startDaemon(t)
	r := d.deployedApp("web", "one")
	r.commit("two", "")
	// A slow request keeps the old version draining after the switch. It
	// starts right before the push (a commit can take seconds on a busy
	// machine) and outlasts a slow build.
	slow := make(chan int, 1)
	go func() { code, _, _ := d.get("web", "/?sleep=8s"); slow <- code }()
	time.Sleep(300 * time.Millisecond)
	pushed := make(chan string, 1)
	go func() { out, _ := r.push("main"); pushed <- out }()

	// Wait for v2 to go live while the push is still running.
	var sha string
	deadline := time.Now().Add(time.Minute)
	for sha == "" && time.Now().Before(deadline) {
		for _, rel := range d.releases("web") {
			if rel.Version == 2 && rel.Status == "active" {
				sha = rel.GitSHA
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case out := <-pushed:
		t.Fatalf("the push finished before the test could back up during its drain:\n%s", out)
	default:
	}
	if sha == "" {
		t.Fatal("v2 never went live")
	}
	file := filepath.Join(t.TempDir(), "backup.tar.gz")
	out, err := platDaemon(t, "backup", file, "--data", d.data)
	if err != nil || strings.Contains(out, "warning") {
		t.Fatalf("backup during a push: %v\n%s", err, out)
	}
	<-pushed
	<-slow

	restored := filepath.Join(t.TempDir(), "data")
	if out, err := platDaemon(t, "restore", file, "--data", restored); err != nil || strings.Contains(out, "warning") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	repo := filepath.Join(restored, "repos", "web.git")
	if out, err := exec.Command("git", "--git-dir", repo, "cat-file", "-e", sha+"^{commit}").CombinedOutput(); err != nil {
		t.Fatalf("the restored repository lacks the active commit %s: %v %s", sha, err, out)
	}
	if out, _ := exec.Command("git", "--git-dir", repo, "rev-parse", "refs/heads/main").Output(); strings.TrimSpace(string(out)) != sha {
		t.Errorf("restored main = %s, want %s", out, sha)
	}
}
