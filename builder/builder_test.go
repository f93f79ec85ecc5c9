package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/plat-paas/plat/engine"
)

// fakeEngine records Build calls; everything else is unused here.
type fakeEngine struct {
	engine.Engine // nil: calling anything but Build panics

	calls   int
	context []byte
	opts    engine.BuildOptions
	err     error
}

func (f *fakeEngine) Build(ctx context.Context, buildContext io.Reader, opts engine.BuildOptions, out io.Writer) (string, error) {
	f.calls++
	b, err := io.ReadAll(buildContext)
	if err != nil {
		return "", err
	}
	f.context, f.opts = b, opts
	io.WriteString(out, "Step 1/1 : FROM scratch\n")
	if f.err != nil {
		return "", f.err
	}
	return "sha256:fake", nil
}

type entry struct {
	name string
	typ  byte
	data string
}

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}
		switch e.typ {
		case tar.TypeReg:
			hdr.Size = int64(len(e.data))
		case tar.TypeDir:
			hdr.Mode = 0o755
		case tar.TypeSymlink:
			hdr.Linkname = e.data
		case tar.TypeXGlobalHeader:
			hdr = &tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: e.name, PAXRecords: map[string]string{"comment": e.data}}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBuildDockerfileCheck(t *testing.T) {
	const df = "FROM scratch\n"
	reg := func(name, data string) entry { return entry{name, tar.TypeReg, data} }
	dir := func(name string) entry { return entry{name, tar.TypeDir, ""} }
	for _, tc := range []struct {
		name    string
		source  func(t *testing.T) []byte
		wantErr error // nil: the build must reach the engine
		anyErr  bool  // some other error
	}{
		{"Dockerfile", func(t *testing.T) []byte { return tarOf(t, reg("Dockerfile", df), reg("main.go", "package main")) }, nil, false},
		{"./Dockerfile", func(t *testing.T) []byte { return tarOf(t, dir("./"), reg("./main.go", "x"), reg("./Dockerfile", df)) }, nil, false},
		{"git archive pax header", func(t *testing.T) []byte {
			return tarOf(t, entry{"pax_global_header", tar.TypeXGlobalHeader, "0123abcd"}, dir("src/"), reg("src/a.go", "x"), reg("Dockerfile", df))
		}, nil, false},
		{"symlinked Dockerfile", func(t *testing.T) []byte {
			return tarOf(t, reg("build/Dockerfile", df), entry{"Dockerfile", tar.TypeSymlink, "build/Dockerfile"})
		}, nil, false},
		{"gzip", func(t *testing.T) []byte { return gz(t, tarOf(t, reg("Dockerfile", df))) }, nil, false},
		{"only in a subdirectory", func(t *testing.T) []byte { return tarOf(t, dir("app/"), reg("app/Dockerfile", df)) }, ErrNoDockerfile, false},
		{"lower case", func(t *testing.T) []byte { return tarOf(t, reg("dockerfile", df)) }, ErrNoDockerfile, false},
		{"Dockerfile is a directory", func(t *testing.T) []byte { return tarOf(t, dir("Dockerfile/"), reg("Dockerfile/x", "")) }, ErrNoDockerfile, false},
		{"other name", func(t *testing.T) []byte { return tarOf(t, reg("Dockerfile.prod", df), reg("README", "")) }, ErrNoDockerfile, false},
		{"empty tar", func(t *testing.T) []byte { return tarOf(t) }, ErrNoDockerfile, false},
		{"empty input", func(t *testing.T) []byte { return nil }, ErrNoDockerfile, false},
		{"not a tar", func(t *testing.T) []byte { return bytes.Repeat([]byte("not a tar archive "), 64) }, nil, true},
		{"truncated tar", func(t *testing.T) []byte {
			return tarOf(t, reg("README", strings.Repeat("x", 4096)), reg("Dockerfile", df))[:1000]
		}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fe := &fakeEngine{}
			src := tc.source(t)
			var out bytes.Buffer
			id, err := New(fe).Build(context.Background(), Request{App: "web", Version: 7, GitSHA: "abc123", Source: bytes.NewReader(src)}, &out)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if fe.calls != 0 {
					t.Errorf("the engine was called")
				}
			case tc.anyErr:
				if err == nil || errors.Is(err, ErrNoDockerfile) {
					t.Fatalf("err = %v, want a tar error", err)
				}
				if fe.calls != 0 {
					t.Errorf("the engine was called")
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if id != "sha256:fake" || fe.calls != 1 {
					t.Errorf("id %q, %d calls", id, fe.calls)
				}
				if !bytes.Equal(fe.context, src) {
					t.Errorf("the engine got %d bytes, not the %d of the source", len(fe.context), len(src))
				}
				if len(fe.opts.Tags) != 1 || fe.opts.Tags[0] != "plat/web:v7" {
					t.Errorf("tags %v", fe.opts.Tags)
				}
				want := map[string]string{engine.LabelInstance: "plat"}
				if len(fe.opts.Labels) != len(want) {
					t.Errorf("labels %v", fe.opts.Labels)
				}
				for k, v := range want {
					if fe.opts.Labels[k] != v {
						t.Errorf("label %s = %q, want %q", k, fe.opts.Labels[k], v)
					}
				}
				// An engine without BuildKit builds classic, and says so.
				if !strings.HasSuffix(out.String(), "Step 1/1 : FROM scratch\n") || !strings.Contains(out.String(), "no BuildKit: building with the classic builder") {
					t.Errorf("output not streamed: %q", out.String())
				}
			}
		})
	}
}

// TestUnknownStackMessage: a push plat cannot build says what plat looked
// for and how to add a Dockerfile.
func TestUnknownStackMessage(t *testing.T) {
	_, err := New(&fakeEngine{}).Build(context.Background(), Request{App: "web", Version: 1, Source: bytes.NewReader(tarOf(t, entry{"README", tar.TypeReg, "hi"}))}, io.Discard)
	if !errors.Is(err, ErrNoDockerfile) || !errors.Is(err, ErrUnknownStack) {
		t.Fatalf("err = %v, want ErrNoDockerfile and ErrUnknownStack", err)
	}
	for _, want := range []string{"no Dockerfile at the root of the repository", "$PORT", "go.mod", "Gemfile", "package.json", "requirements.txt", "pyproject.toml", "index.html", "Add a Dockerfile"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

func TestBuildRequestValidation(t *testing.T) {
	src := func() io.Reader { return bytes.NewReader(tarOf(t, entry{"Dockerfile", tar.TypeReg, "FROM scratch\n"})) }
	for _, req := range []Request{
		{App: "", Version: 1, Source: src()},
		{App: "Web", Version: 1, Source: src()},
		{App: "we b", Version: 1, Source: src()},
		{App: "web", Version: 0, Source: src()},
		{App: "web", Version: 1},
	} {
		fe := &fakeEngine{}
		if _, err := New(fe).Build(context.Background(), req, io.Discard); err == nil || fe.calls != 0 {
			t.Errorf("%+v: err %v, %d engine calls", req, err, fe.calls)
		}
	}
}

func TestBuildEngineError(t *testing.T) {
	boom := errors.New("build failed: boom")
	fe := &fakeEngine{err: boom}
	_, err := New(fe).Build(context.Background(), Request{App: "web", Version: 1, Source: bytes.NewReader(tarOf(t, entry{"Dockerfile", tar.TypeReg, "FROM scratch\n"}))}, io.Discard)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func TestBuildWithDocker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := engine.NewDocker(ctx)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Docker Engine required under CI: %v", err)
		}
		t.Skipf("no Docker Engine: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })

	b := make([]byte, 4)
	rand.Read(b)
	app := "plat-test-" + hex.EncodeToString(b)
	tag := Tag(app, 1)
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true})
	})

	src := tarOf(t,
		entry{"pax_global_header", tar.TypeXGlobalHeader, "deadbeef"},
		entry{"./", tar.TypeDir, ""},
		entry{"./Dockerfile", tar.TypeReg, "FROM scratch\nCOPY hello.txt /hello.txt\n"},
		entry{"./hello.txt", tar.TypeReg, "hello " + app + "\n"},
	)
	var out bytes.Buffer
	id, err := New(d).Build(ctx, Request{App: app, Version: 1, GitSHA: "deadbeef", Source: bytes.NewReader(src)}, &out)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "COPY hello.txt /hello.txt") {
		t.Errorf("build output not streamed:\n%s", out.String())
	}
	if ok, err := d.ImageExists(ctx, tag); !ok || err != nil {
		t.Fatalf("ImageExists(%s) = %v, %v", tag, ok, err)
	}
	img, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != id {
		t.Errorf("%s is %s, Build returned %s", tag, img.ID, id)
	}
	want := map[string]string{engine.LabelInstance: "plat"}
	for k, v := range want {
		if img.Config == nil || img.Config.Labels[k] != v {
			t.Errorf("label %s: got %+v, want %q", k, img.Config, v)
		}
	}

	if err := d.RemoveImage(ctx, id); err != nil {
		t.Errorf("RemoveImage: %v", err)
	}
	if ok, err := d.ImageExists(ctx, tag); ok || err != nil {
		t.Errorf("after RemoveImage: ImageExists = %v, %v", ok, err)
	}
}

// TestBuildGitArchive feeds the check real `git archive` output (pax global
// header first, ./-less names), with and without a Dockerfile.
func TestBuildGitArchive(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("git is not installed; under CI=true this test may not skip (./test.sh --setup installs it)")
		}
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	git := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return out
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write("deploy/Dockerfile", "FROM scratch\n")
	write("main.go", "package main\n")
	git("add", ".")
	git("commit", "-qm", "no root Dockerfile")
	if _, err := New(&fakeEngine{}).Build(context.Background(), Request{App: "web", Version: 1, Source: bytes.NewReader(git("archive", "HEAD"))}, io.Discard); !errors.Is(err, ErrNoDockerfile) {
		t.Fatalf("without a root Dockerfile: %v", err)
	}
	write("Dockerfile", "FROM scratch\n")
	git("add", ".")
	git("commit", "-qm", "root Dockerfile")
	fe := &fakeEngine{}
	if _, err := New(fe).Build(context.Background(), Request{App: "web", Version: 2, Source: bytes.NewReader(git("archive", "HEAD"))}, io.Discard); err != nil || fe.calls != 1 {
		t.Fatalf("with a root Dockerfile: %v, %d calls", err, fe.calls)
	}
}
