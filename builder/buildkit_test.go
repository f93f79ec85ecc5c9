package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
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
