package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plat-paas/plat/engine"
)

// testDocker connects to the real engine (required under CI=true).
func testDocker(t *testing.T) *engine.Docker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := engine.NewDocker(ctx)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Docker Engine required under CI: %v", err)
		}
		t.Skipf("no Docker Engine: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

var (
	busyboxOnce  sync.Once
	busyboxImage = fmt.Sprintf("plat-test-busybox-builder:%d", os.Getpid())
	busyboxErr   error
)

// requireBusybox makes (once per test process) a base image from the
// host's busybox-static, so test builds can RUN without pulling.
func requireBusybox(t *testing.T) string {
	t.Helper()
	busyboxOnce.Do(func() {
		bin, err := os.ReadFile("/bin/busybox")
		if err != nil {
			busyboxErr = fmt.Errorf("busybox-static is needed (apt-get install busybox-static): %w", err)
			return
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
		tw.WriteHeader(&tar.Header{Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin))})
		tw.Write(bin)
		for _, l := range []string{"sh", "cat", "ls", "echo", "test", "sleep", "stat", "wc", "tr"} {
			tw.WriteHeader(&tar.Header{Name: "bin/" + l, Typeflag: tar.TypeSymlink, Linkname: "busybox"})
		}
		tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777})
		tw.Close()
		cmd := exec.Command("docker", "import", "-", busyboxImage)
		cmd.Stdin = &buf
		if out, err := cmd.CombinedOutput(); err != nil {
			busyboxErr = fmt.Errorf("docker import: %v\n%s", err, out)
		}
	})
	if busyboxErr != nil {
		t.Fatal(busyboxErr)
	}
	return busyboxImage
}

func TestMain(m *testing.M) {
	code := m.Run()
	exec.Command("docker", "rmi", "-f", busyboxImage).Run()
	os.Exit(code)
}

func testApp(t *testing.T) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "plat-test-" + hex.EncodeToString(b)
}

func removeTags(t *testing.T, tags ...string) {
	t.Cleanup(func() {
		for _, tag := range tags {
			exec.Command("docker", "rmi", "-f", tag).Run()
		}
	})
}

// TestBuildKitFeatures builds a Dockerfile in today's style on the real
// engine: COPY --link --chmod, a heredoc, a build arg, a target stage, a
// secret and a "# syntax=" line that must not cause a pull.
func TestBuildKitFeatures(t *testing.T) {
	d := testDocker(t)
	base := requireBusybox(t)
	app := testApp(t)
	removeTags(t, Tag(app, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const secret = "s3cr3t-value-42"
	df := "# syntax=docker/dockerfile:1.7\n" +
		"FROM " + base + " AS base\n" +
		"ARG GREETING=unset\n" +
		"COPY --link --chmod=755 run.sh /app/run.sh\n" +
		"RUN <<EOF\necho \"greeting=$GREETING\" > /app/greeting\necho heredoc-ran\nEOF\n" +
		"RUN --mount=type=secret,id=token sh -c 'wc -c < /run/secrets/token | tr -d \" \" > /app/secret-len && cat /run/secrets/token'\n" +
		"FROM base AS final\n" +
		"RUN echo wrong-target > /app/target\n"
	src := tarOf(t,
		entry{"Dockerfile", tar.TypeReg, df},
		entry{"run.sh", tar.TypeReg, "#!/bin/sh\necho " + app + "\n"}, // unique: no step is cached
	)
	var out bytes.Buffer
	id, err := New(d).Build(ctx, Request{
		App: app, Version: 1, Source: bytes.NewReader(src),
		BuildArgs: map[string]string{"GREETING": "hello"},
		Secrets:   map[string]string{"token": secret},
		Target:    "base",
	}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if id == "" {
		t.Fatal("no image ID")
	}
	for _, want := range []string{"ignoring the Dockerfile's \"# syntax=docker/dockerfile:1.7\" line", "heredoc-ran", "DONE", "] RUN --mount=type=secret"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), secret) {
		t.Errorf("the secret's value is in the output")
	}
	run := func(cmd string) string {
		t.Helper()
		b, err := exec.Command("docker", "run", "--rm", "--network=none", Tag(app, 1), "sh", "-c", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("docker run %s: %v\n%s", cmd, err, b)
		}
		return strings.TrimSpace(string(b))
	}
	if got := run("stat -c %a /app/run.sh; cat /app/greeting /app/secret-len; ls /app"); got != fmt.Sprintf("755\ngreeting=hello\n%d\ngreeting\nrun.sh\nsecret-len", len(secret)) {
		t.Errorf("image content:\n%s", got)
	}
	save, err := exec.Command("docker", "save", Tag(app, 1)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(save, []byte(secret)) {
		t.Error("the secret's value is in the image")
	}
}

// TestBuildKitCacheMount: a cache mount keeps what the app's first build
// wrote for its second build, and another app does not see it.
func TestBuildKitCacheMount(t *testing.T) {
	d := testDocker(t)
	base := requireBusybox(t)
	app, other := testApp(t), testApp(t)
	removeTags(t, Tag(app, 1), Tag(app, 2), Tag(other, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	build := func(app string, version int, stamp string) string {
		t.Helper()
		df := "FROM " + base + "\n" +
			"COPY stamp /stamp\n" +
			"RUN --mount=type=cache,target=/cache sh -c 'echo seen: $(cat /cache/* 2>/dev/null | tr \"\\n\" \" \"); cp /stamp /cache/$(cat /stamp)'\n"
		var out bytes.Buffer
		_, err := New(d).Build(ctx, Request{App: app, Version: version, Source: bytes.NewReader(tarOf(t,
			entry{"Dockerfile", tar.TypeReg, df}, entry{"stamp", tar.TypeReg, stamp + "\n"}))}, &out)
		if err != nil {
			t.Fatalf("build %s v%d: %v\n%s", app, version, err, out.String())
		}
		return out.String()
	}
	build(app, 1, "first-"+app)
	if out := build(app, 2, "second-"+app); !strings.Contains(out, "seen: first-"+app) {
		t.Errorf("the second build did not see the first one's cache:\n%s", out)
	}
	if out := build(other, 1, "other-"+other); strings.Contains(out, "first-"+app) {
		t.Errorf("another app saw this app's cache:\n%s", out)
	}
}

// TestBuildKitFailedStep: the error names the failing step and carries its
// last output; no image is tagged.
func TestBuildKitFailedStep(t *testing.T) {
	d := testDocker(t)
	base := requireBusybox(t)
	app := testApp(t)
	removeTags(t, Tag(app, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	df := "FROM " + base + "\nRUN echo " + app + "\nRUN echo compiling && echo 'main.c:3: syntax error' && exit 3\nRUN echo never\n"
	var out bytes.Buffer
	_, err := New(d).Build(ctx, Request{App: app, Version: 1, Source: bytes.NewReader(tarOf(t, entry{"Dockerfile", tar.TypeReg, df}))}, &out)
	if err == nil {
		t.Fatalf("the build succeeded:\n%s", out.String())
	}
	for _, want := range []string{"exit code: 3", "[3/4] RUN echo compiling", "main.c:3: syntax error"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	t.Logf("error: %v", err)
	if !strings.Contains(out.String(), "ERROR: ") {
		t.Errorf("output shows no error:\n%s", out.String())
	}
	if ok, _ := d.ImageExists(ctx, Tag(app, 1)); ok {
		t.Error("a failed build tagged an image")
	}
}

// TestBuildLimits: with one build slot a second build waits and says so;
// a build over the timeout is stopped with ErrBuildTimeout.
func TestBuildLimits(t *testing.T) {
	d := testDocker(t)
	base := requireBusybox(t)
	a1, a2, a3 := testApp(t), testApp(t), testApp(t)
	removeTags(t, Tag(a1, 1), Tag(a2, 1), Tag(a3, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := New(d, WithMaxBuilds(1))
	src := func(app, cmd string) *bytes.Reader {
		return bytes.NewReader(tarOf(t, entry{"Dockerfile", tar.TypeReg, "FROM " + base + "\nRUN echo " + app + " && " + cmd + "\n"}))
	}
	slow := make(chan error, 1)
	go func() {
		_, err := b.Build(ctx, Request{App: a1, Version: 1, Source: src(a1, "sleep 1")}, io.Discard)
		slow <- err
	}()
	for len(b.slots) == 0 { // until a1 holds the slot
		time.Sleep(10 * time.Millisecond)
	}
	var out bytes.Buffer
	if _, err := b.Build(ctx, Request{App: a2, Version: 1, Source: src(a2, "true")}, &out); err != nil {
		t.Fatalf("second build: %v", err)
	}
	if !strings.Contains(out.String(), "waiting for a build slot (1 builds running)") {
		t.Errorf("the queued build did not say so:\n%s", out.String())
	}
	if err := <-slow; err != nil {
		t.Fatalf("first build: %v", err)
	}
	start := time.Now()
	built, sawStep := make(chan struct{}), make(chan bool, 1)
	go func() {
		for {
			select {
			case <-built:
				sawStep <- false
				return
			case <-time.After(100 * time.Millisecond):
				if stepRunning(a3) {
					sawStep <- true
					return
				}
			}
		}
	}()
	_, err := New(d, WithTimeout(5*time.Second)).Build(ctx, Request{App: a3, Version: 1, Source: src(a3, "sleep 30 && echo done")}, io.Discard)
	close(built)
	if !<-sawStep {
		t.Error("the slow step was not seen running")
	}
	// The engine stops the step: a timed-out build holds no CPU or memory.
	stopped := time.Now().Add(5 * time.Second)
	for stepRunning(a3) && time.Now().Before(stopped) {
		time.Sleep(100 * time.Millisecond)
	}
	if stepRunning(a3) {
		t.Error("the timed-out build's step still runs")
	}
	if !errors.Is(err, ErrBuildTimeout) || !strings.Contains(err.Error(), "--build-timeout") {
		t.Fatalf("over the timeout: %v", err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the timed-out build took %s", took)
	}
	// The next build does not wait for the stopped one's step.
	a4 := testApp(t)
	removeTags(t, Tag(a4, 1))
	start = time.Now()
	out.Reset()
	if _, err := b.Build(ctx, Request{App: a4, Version: 1, Source: src(a4, "true")}, &out); err != nil {
		t.Fatalf("build after a timeout: %v\n%s", err, out.String())
	}
}

// stepRunning reports whether a process whose command line holds marker runs.
func stepRunning(marker string) bool {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), marker) {
			return true
		}
	}
	return false
}

// classicOnly hides the engine's BuildKit.
type classicOnly struct{ engine.Engine }

// TestClassicFallback: an engine without BuildKit builds with the classic
// builder, says so, and still gets the build args and target.
func TestClassicFallback(t *testing.T) {
	d := testDocker(t)
	base := requireBusybox(t)
	app := testApp(t)
	removeTags(t, Tag(app, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	df := "FROM " + base + " AS app\nARG GREETING\nRUN echo " + app + " && echo \"greeting=$GREETING\" > /greeting\nFROM app AS debug\nRUN exit 1\n"
	var out bytes.Buffer
	_, err := New(classicOnly{d}).Build(ctx, Request{App: app, Version: 1, Source: bytes.NewReader(tarOf(t, entry{"Dockerfile", tar.TypeReg, df})),
		BuildArgs: map[string]string{"GREETING": "classic"}, Target: "app", Secrets: map[string]string{"x": "y"}}, &out)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	for _, want := range []string{"no BuildKit: building with the classic builder", "cannot pass build secrets", "Step 1/4"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	got, err := exec.Command("docker", "run", "--rm", "--network=none", Tag(app, 1), "cat", "/greeting").CombinedOutput()
	if err != nil || string(got) != "greeting=classic\n" {
		t.Errorf("image: %q %v", got, err)
	}
}

// TestBuildKitSameSizeSameTime: a file whose content changed but whose size
// and mtime did not (two commits in one second: git archive gives files
// the commit's time, in seconds) is sent again, not taken from the
// engine's copy of the app's last context.
func TestBuildKitSameSizeSameTime(t *testing.T) {
	d := testDocker(t)
	base := requireBusybox(t)
	app := testApp(t)
	removeTags(t, Tag(app, 1), Tag(app, 2))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for v, content := range []string{"one", "two"} {
		var out bytes.Buffer
		src := tarOf(t, entry{"Dockerfile", tar.TypeReg, "FROM " + base + "\nCOPY version /\n"}, entry{"version", tar.TypeReg, content})
		if _, err := New(d).Build(ctx, Request{App: app, Version: v + 1, Source: bytes.NewReader(src)}, &out); err != nil {
			t.Fatalf("build %d: %v\n%s", v+1, err, out.String())
		}
		got, err := exec.Command("docker", "run", "--rm", "--network=none", Tag(app, v+1), "cat", "/version").CombinedOutput()
		if err != nil || string(got) != content {
			t.Errorf("v%d has /version %q (%v), want %q", v+1, got, err, content)
		}
	}
}
