package daemon_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Apps without a Dockerfile are built on real Debian base images: no
// registry can be pulled from, so the tests make a Debian root file system
// with debootstrap (Debian's mirror is reachable) and import it, once per
// machine: the image keeps a stable name and a label, and later test runs
// reuse it. The per-stack bases (Debian's nodejs and npm, python3,
// golang-go) are derived from it the same way, named after a hash of what
// they are built from. `docker rmi $(docker images -q -f
// label=plat.test.base)` removes them all.
const (
	debianImage     = "plat-test-debian:bookworm"
	testBaseLabel   = "plat.test.base"
	debianBaseLabel = "debian-bookworm-minbase"
	debianSuite     = "bookworm"
	debianMirror    = "http://deb.debian.org/debian"
)

// stackBases are the derived base images, by stack, for the generated
// Dockerfiles. Each installs Debian's packages of the stack; the host's CA
// bundle replaces the image's so that a build trusts what the host trusts
// (a TLS-inspecting egress proxy on the npm registry's path, for one).
var stackBases = map[string]string{
	"node":   "RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm ca-certificates && rm -rf /var/lib/apt/lists/*\nENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt\n",
	"python": "RUN apt-get update && apt-get install -y --no-install-recommends python3 ca-certificates && rm -rf /var/lib/apt/lists/*\n",
	// The Go base compiles what the Go app imports once, with the flags of
	// the generated Dockerfile, so that the app's build does not.
	"go": "RUN apt-get update && apt-get install -y --no-install-recommends golang-go ca-certificates && rm -rf /var/lib/apt/lists/*\n" +
		"RUN CGO_ENABLED=0 go build -trimpath fmt net/http os\n",
}

var (
	basesOnce sync.Once
	basesErr  error
	baseTags  map[string]string // stack → image
)

// requireStackBases makes (or reuses) the Debian image and the stack bases
// derived from it, and returns the --base-image flags for them; the static
// stack uses the harness's busybox image. Without debootstrap, root or the
// network to Debian the test fails under CI=true and is skipped elsewhere.
func requireStackBases(t *testing.T) []string {
	t.Helper()
	requireTools(t)
	requireBusyboxImage(t)
	basesOnce.Do(func() { baseTags, basesErr = makeStackBases(t) })
	if basesErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("base images for apps without a Dockerfile (under CI=true this may not skip): %v", basesErr)
		}
		t.Skipf("base images for apps without a Dockerfile: %v", basesErr)
	}
	flags := []string{"--base-image", "static=" + busyboxImage}
	for stack, tag := range baseTags {
		flags = append(flags, "--base-image", stack+"="+tag)
	}
	return flags
}

func imageExists(name string) bool {
	out, err := exec.Command("docker", "image", "inspect", "--format", "{{index .Config.Labels \""+testBaseLabel+"\"}}", name).Output()
	return err == nil && strings.TrimSpace(string(out)) != ""
}

func makeStackBases(t *testing.T) (map[string]string, error) {
	if !imageExists(debianImage) {
		started := time.Now()
		if err := importDebian(); err != nil {
			return nil, err
		}
		t.Logf("made %s with debootstrap in %s", debianImage, time.Since(started).Round(time.Second))
	}
	hostCA, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return nil, fmt.Errorf("the host's CA bundle (apt-get install ca-certificates): %w", err)
	}
	imageID, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", debianImage).Output()
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", debianImage, err)
	}
	tags := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(stackBases))
	for stack, steps := range stackBases {
		dockerfile := "FROM " + debianImage + "\n" + steps + "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
		sum := sha256.Sum256([]byte(string(imageID) + dockerfile + string(hostCA)))
		tag := fmt.Sprintf("%s-%s-%s", debianImage, stack, hex.EncodeToString(sum[:6]))
		mu.Lock()
		tags[stack] = tag
		mu.Unlock()
		if imageExists(tag) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			started := time.Now()
			dir, err := os.MkdirTemp("", "plat-test-base-")
			if err != nil {
				errs <- err
				return
			}
			defer os.RemoveAll(dir)
			os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644)
			os.WriteFile(filepath.Join(dir, "ca-certificates.crt"), hostCA, 0o644)
			out, err := exec.Command("docker", "build", "-q", "--label", testBaseLabel+"="+debianBaseLabel+"-"+stack, "-t", tag, dir).CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("build the %s base (apt-get from Debian's mirror on the default bridge network): %v\n%s", stack, err, out)
				return
			}
			t.Logf("made %s in %s", tag, time.Since(started).Round(time.Second))
			// Older bases of the stack (another Dockerfile, CA bundle or
			// Debian image) are not used again.
			old, _ := exec.Command("docker", "images", "-q", "--filter", "label="+testBaseLabel+"="+debianBaseLabel+"-"+stack).Output()
			newID, _ := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", tag).Output()
			for _, id := range strings.Fields(string(old)) {
				if !strings.Contains(string(newID), id) {
					exec.Command("docker", "rmi", id).Run()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return tags, <-errs
}

// importDebian makes debianImage: debootstrap a minimal bookworm and
// docker import it with the label that marks it reusable.
func importDebian() error {
	if os.Getuid() != 0 {
		return fmt.Errorf("debootstrap needs root")
	}
	bin, err := exec.LookPath("debootstrap")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/debootstrap"); statErr != nil {
			return fmt.Errorf("debootstrap is not installed (apt-get install debootstrap; ./test.sh --setup does it)")
		}
		bin = "/usr/sbin/debootstrap"
	}
	dir, err := os.MkdirTemp("", "plat-test-debootstrap-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "root")
	if out, err := exec.Command(bin, "--variant=minbase", debianSuite, root, debianMirror).CombinedOutput(); err != nil {
		return fmt.Errorf("debootstrap from %s (is Debian's mirror reachable?): %v\n%s", debianMirror, err, lastLines(string(out), 20))
	}
	// docker import tags the image only once it is complete: a parallel
	// test run never finds half of it under the shared name.
	tar := exec.Command("tar", "-C", root, "-c", ".")
	imp := exec.Command("docker", "import", "--change", "LABEL "+testBaseLabel+"="+debianBaseLabel, "-", debianImage)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		return err
	}
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		return fmt.Errorf("tar the root file system: %w", err)
	}
	out, err := imp.CombinedOutput()
	if werr := tar.Wait(); err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("docker import %s: %v\n%s", debianImage, err, out)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestPushWithoutDockerfile pushes real apps from repositories without a
// Dockerfile: plat detects each stack, shows and keeps the Dockerfile it
// generated, builds it on the configured base image and the router serves
// the app. A Node app installs a dependency from the npm registry with npm
// ci; a Python app runs on the standard library; a Go app is built to a
// static binary; a static site, and one made by a package.json build
// script, are served by busybox httpd.
func TestPushWithoutDockerfile(t *testing.T) {
	flags := requireStackBases(t)
	d := startDaemon(t, flags...)
	// The classic builder keeps the build stage of a multi-stage build (the
	// Go app's) as untagged images; they inherit the stack base's label.
	t.Cleanup(func() {
		ids, _ := exec.Command("docker", "images", "-q", "--filter", "dangling=true", "--filter", "label="+testBaseLabel).Output()
		if f := strings.Fields(string(ids)); len(f) > 0 {
			exec.Command("docker", append([]string{"rmi"}, f...)...).Run()
		}
	})

	for _, tc := range []struct {
		app, heading, serves string
		files                map[string]string
		dockerfile           []string // lines the kept Dockerfile has
	}{
		{
			app:     "nodeapp",
			heading: "-----> No Dockerfile: detected Node.js (package-lock.json); using this Dockerfile:",
			serves:  "hello from node: 1m",
			files: map[string]string{
				"package.json":      nodePackageJSON,
				"package-lock.json": nodePackageLock,
				"server.js":         nodeServer,
			},
			dockerfile: []string{"FROM " + baseTags["node"], "RUN npm ci", `CMD ["npm","start"]`},
		},
		{
			app:     "pyapp",
			heading: "-----> No Dockerfile: detected Python (requirements.txt); using this Dockerfile:",
			serves:  "hello from python",
			files: map[string]string{
				"requirements.txt": "# the standard library is enough\n",
				"app.py":           pythonApp,
			},
			dockerfile: []string{"FROM " + baseTags["python"], `CMD ["python3","app.py"]`},
		},
		{
			app:     "goapp",
			heading: "-----> No Dockerfile: detected Go (go.mod, main package ./cmd/hello); using this Dockerfile:",
			serves:  "hello from go",
			files: map[string]string{
				"go.mod":            "module example.com/hello\n\ngo 1.19\n",
				"cmd/hello/main.go": goApp,
				"hello.go":          "package hello\n",
			},
			dockerfile: []string{"FROM " + baseTags["go"] + " AS build", "FROM scratch", `CMD ["/app"]`},
		},
		{
			app:     "site",
			heading: "-----> No Dockerfile: detected a static site (index.html); using this Dockerfile:",
			serves:  "<h1>hello from a static site</h1>",
			files: map[string]string{
				"index.html":  "<!doctype html>\n<h1>hello from a static site</h1>\n",
				"css/app.css": "h1 { color: teal }\n",
			},
			dockerfile: []string{"FROM " + busyboxImage, "CMD busybox httpd -f -v -p $PORT -h /www"},
		},
		{
			app:     "built",
			heading: "-----> No Dockerfile: detected a static site (package.json build script, no start command); using this Dockerfile:",
			serves:  "<h1>built by npm run build</h1>",
			files: map[string]string{
				"package.json":      `{"name":"built","version":"1.0.0","private":true,"scripts":{"build":"node build.js"}}` + "\n",
				"package-lock.json": `{"name":"built","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"built","version":"1.0.0"}}}` + "\n",
				"build.js":          "const fs = require(\"fs\");\nfs.mkdirSync(\"dist\");\nfs.writeFileSync(\"dist/index.html\", \"<h1>built by npm run build</h1>\\n\");\n",
			},
			dockerfile: []string{"FROM " + baseTags["node"] + " AS build", "RUN npm ci", "FROM " + busyboxImage, "COPY --from=build /site /www"},
		},
	} {
		t.Run(tc.app, func(t *testing.T) {
			t.Parallel()
			d.createApp(tc.app)
			r := d.newBareRepo(tc.app)
			for name, content := range tc.files {
				r.writeAll(name, content)
			}
			r.git("add", "-A")
			r.git("commit", "-qm", "first")
			started := time.Now()
			out := r.mustPush("main")
			d.mustServe(tc.app, tc.serves)
			t.Logf("%s: first push served after %s", tc.app, time.Since(started).Round(100*time.Millisecond))
			if !strings.Contains(out, tc.heading) {
				t.Fatalf("push output lacks %q:\n%s", tc.heading, out)
			}

			kept := d.mustPlat("releases:dockerfile", tc.app, "v1")
			for _, want := range append([]string{"# Generated by plat", "commit this file as Dockerfile"}, tc.dockerfile...) {
				if !strings.Contains(kept, want) {
					t.Errorf("releases:dockerfile lacks %q:\n%s", want, kept)
				}
			}
			// The push output showed the same Dockerfile.
			for _, line := range strings.Split(strings.TrimSpace(kept), "\n") {
				if !strings.Contains(out, line) {
					t.Errorf("push output lacks the Dockerfile line %q", line)
				}
			}
			if log := d.mustPlat("releases:log", tc.app, "v1"); !strings.Contains(log, "No Dockerfile: detected") {
				t.Errorf("build log lacks the generated Dockerfile:\n%s", log)
			}

			if tc.app == "nodeapp" {
				// A code change rebuilds without running npm ci again:
				// the dependencies are a layer of their own.
				r.writeAll("server.js", strings.Replace(nodeServer, "hello from node", "hello again from node", 1))
				r.git("commit", "-qam", "second")
				started := time.Now()
				out := r.mustPush("main")
				d.mustServe(tc.app, "hello again from node: 1m")
				t.Logf("%s: second push served after %s", tc.app, time.Since(started).Round(100*time.Millisecond))
				if !cachedAfter(out, "RUN npm ci") {
					t.Errorf("second push ran npm ci again:\n%s", out)
				}
				// A config release keeps the Dockerfile of its image.
				d.mustPlat("config:set", tc.app, "GREETING=hi")
				if got := d.mustPlat("releases:dockerfile", tc.app, "v3"); got != d.mustPlat("releases:dockerfile", tc.app, "v2") {
					t.Errorf("config release v3 has another Dockerfile than v2:\n%s", got)
				}
			}
		})
	}
}

// TestPushWithoutDockerfileRejections: a bad --base-image stops the daemon;
// an app plat cannot tell is rejected with what plat looked for, and a
// release built from the repository's own Dockerfile has no generated one
// to print.
func TestPushWithoutDockerfileRejections(t *testing.T) {
	requireTools(t)
	// A bad --base-image stops the daemon before it starts, naming the stacks.
	for _, bad := range []string{"java=eclipse-temurin", "node", "node="} {
		cmd := exec.Command(platBin, "daemon", "--base-image", bad, "--data", t.TempDir())
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "base image") {
			t.Errorf("plat daemon --base-image %s: exit %d, output:\n%s", bad, code, out)
		}
	}
	if out, _ := exec.Command(platBin, "daemon", "--base-image", "java=x", "--data", t.TempDir()).CombinedOutput(); !strings.Contains(string(out), "node, go, python, ruby, static") {
		t.Errorf("unknown stack: the error does not list the stacks:\n%s", out)
	}

	d := startDaemon(t)
	d.createApp("mystery")
	r := d.newBareRepo("mystery")
	r.writeAll("main.c", "int main(void) { return 0; }\n")
	r.writeAll("README.md", "# mystery\n")
	r.git("add", "-A")
	r.git("commit", "-qm", "c")
	out, err := r.push("main")
	if err == nil {
		t.Fatalf("push of an unknown stack succeeded:\n%s", out)
	}
	for _, want := range []string{"no Dockerfile at the root of the repository", "go.mod (Go)", "Gemfile (Ruby)", "package.json (Node.js)", "requirements.txt or pyproject.toml (Python)", "index.html (a static site)", "Add a Dockerfile at the root", "$PORT"} {
		if !strings.Contains(out, want) {
			t.Errorf("rejection lacks %q:\n%s", want, out)
		}
	}
	if got, err := d.plat("releases:dockerfile", "mystery", "v1"); err == nil || !strings.Contains(got, "its build failed before plat made one") {
		t.Errorf("releases:dockerfile of the failed build: %v\n%s", err, got)
	}

	d.deployedApp("own", "one")
	got, err := d.plat("releases:dockerfile", "own", "v1")
	if err == nil || !strings.Contains(got, "own v1 was built from the repository's own Dockerfile") {
		t.Errorf("releases:dockerfile of a release with its own Dockerfile: %v\n%s", err, got)
	}
	if got, err := d.plat("releases:dockerfile", "own", "v9"); err == nil || !strings.Contains(got, "own has no release v9") {
		t.Errorf("releases:dockerfile of no such release: %v\n%s", err, got)
	}
}

// cachedAfter reports whether the build output shows the step that runs
// cmd as taken from the cache (classic builder: "Using cache"; BuildKit:
// "CACHED").
func cachedAfter(out, cmd string) bool {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.Contains(l, cmd) && i+1 < len(lines) && !strings.Contains(l, "using this Dockerfile") {
			if strings.Contains(lines[i+1], "Using cache") || strings.Contains(l+lines[i+1], "CACHED") {
				return true
			}
		}
	}
	return false
}

// newBareRepo is a checkout with nothing in it but a `platform` remote.
func (d *daemon) newBareRepo(app string) *repo {
	d.t.Helper()
	r := &repo{d: d, dir: d.t.TempDir(), app: app}
	r.git("init", "-q", "-b", "main")
	cmd := exec.Command(platBin, "git:remote", app)
	cmd.Dir, cmd.Env = r.dir, d.env()
	if out, err := cmd.CombinedOutput(); err != nil {
		d.t.Fatalf("plat git:remote: %v\n%s", err, out)
	}
	return r
}

// writeAll writes a file, making its directories.
func (r *repo) writeAll(name, content string) {
	r.d.t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(r.dir, name)), 0o755); err != nil {
		r.d.t.Fatal(err)
	}
	r.write(name, content)
}

const nodePackageJSON = `{
  "name": "hello",
  "version": "1.0.0",
  "private": true,
  "scripts": {
    "start": "node server.js"
  },
  "dependencies": {
    "ms": "2.1.3"
  }
}
`

// nodePackageLock is what npm install --package-lock-only wrote for
// nodePackageJSON.
const nodePackageLock = `{
  "name": "hello",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "hello",
      "version": "1.0.0",
      "dependencies": {
        "ms": "2.1.3"
      }
    },
    "node_modules/ms": {
      "version": "2.1.3",
      "resolved": "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz",
      "integrity": "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==",
      "license": "MIT"
    }
  }
}
`

const nodeServer = `const http = require("http");
const ms = require("ms");
http.createServer((req, res) => res.end("hello from node: " + ms(60000) + "\n"))
  .listen(process.env.PORT);
`

const pythonApp = `import http.server, os

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from python\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), Hello).serve_forever()
`

const goApp = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello from go") })
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		panic(err)
	}
}
`
