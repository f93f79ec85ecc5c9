package engine

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// shellImage builds an image whose /bin/sh is the host's busybox-static.
func shellImage(t *testing.T, d *Docker, ctx context.Context, tag string) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static is needed (apt-get install busybox-static): %v", err)
	}
	cleanupImage(t, d, tag)
	var out bytes.Buffer
	id, err := d.Build(ctx, makeTar(t,
		tarFile{name: "Dockerfile", data: []byte("FROM scratch\nCOPY sh /bin/sh\n")},
		tarFile{name: "sh", data: bb, mode: 0o755},
	), BuildOptions{Tags: []string{tag}}, &out)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	return id
}

// TestRunOnce runs one-off containers on the real engine: the exit code
// and the two streams come back apart, stdin reaches the command, the
// hardening of Run applies, a cancelled context stops the container, and
// none is left behind.
func TestRunOnce(t *testing.T) {
	d := testDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	suffix := randSuffix(t)
	netName := "plat-test-net-" + suffix
	cleanupLabelled(t, d, suffix, netName)
	sh := shellImage(t, d, ctx, "plat-test/sh:"+suffix)
	hello := "plat-test/hello:" + suffix
	cleanupImage(t, d, hello)
	if _, err := d.Build(ctx, makeTar(t,
		tarFile{name: "Dockerfile", data: []byte(helloDockerfile)},
		tarFile{name: "app", data: helloBinary(t), mode: 0o755},
		tarFile{name: "note.txt", data: []byte("x")},
	), BuildOptions{Tags: []string{hello}}, nil); err != nil {
		t.Fatal(err)
	}
	spec := func(image string, cmd ...string) ContainerSpec {
		return ContainerSpec{
			Image: image, Cmd: cmd, Env: []string{"GREETING=hi there"},
			Labels: map[string]string{"plat.test": suffix}, MemoryBytes: 64 << 20, ReadOnly: true,
			Network: netName, NetworkLabels: map[string]string{"plat.test": suffix},
		}
	}
	leftovers := func() int {
		cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "plat.test="+suffix))})
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}

	t.Run("ExitCodeAndStreams", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code, err := d.RunOnce(ctx, spec(sh, "/bin/sh", "-c", `echo "out $GREETING"; echo err >&2; touch /x 2>/dev/null || echo read-only; touch /tmp/x && echo tmp-ok; exit 7`), OneOff{Stdout: &stdout, Stderr: &stderr})
		if err != nil {
			t.Fatal(err)
		}
		if code != 7 {
			t.Errorf("exit code %d, want 7", code)
		}
		if got := stdout.String(); got != "out hi there\nread-only\ntmp-ok\n" {
			t.Errorf("stdout %q", got)
		}
		if got := stderr.String(); got != "err\n" {
			t.Errorf("stderr %q", got)
		}
		if n := leftovers(); n != 0 {
			t.Errorf("%d containers left after the run", n)
		}
	})
	t.Run("ImageCMDReplaced", func(t *testing.T) {
		// The hello image's ENTRYPOINT is /app: Cmd becomes its arguments.
		var stdout bytes.Buffer
		code, err := d.RunOnce(ctx, spec(hello, "-exit", "4"), OneOff{Stdout: &stdout})
		if err != nil || code != 4 {
			t.Errorf("code %d err %v, want 4", code, err)
		}
	})
	t.Run("Stdin", func(t *testing.T) {
		var stdout bytes.Buffer
		code, err := d.RunOnce(ctx, spec(sh, "/bin/sh", "-c", "read a; read b; echo got $a $b"), OneOff{Stdin: strings.NewReader("one\ntwo\n"), Stdout: &stdout})
		if err != nil || code != 0 || stdout.String() != "got one two\n" {
			t.Errorf("code %d err %v stdout %q", code, err, stdout.String())
		}
	})
	t.Run("Tty", func(t *testing.T) {
		var stdout bytes.Buffer
		code, err := d.RunOnce(ctx, spec(sh, "/bin/sh", "-c", "test -t 0 && test -t 1 && echo tty; echo err >&2; exit 3"), OneOff{Tty: true, Stdin: strings.NewReader(""), Stdout: &stdout})
		if err != nil || code != 3 {
			t.Errorf("code %d err %v", code, err)
		}
		if got := strings.ReplaceAll(stdout.String(), "\r", ""); got != "tty\nerr\n" {
			t.Errorf("tty output %q, want both streams on stdout", got)
		}
	})
	t.Run("CancelStops", func(t *testing.T) {
		cctx, ccancel := context.WithCancel(ctx)
		var stdout bytes.Buffer
		go func() { time.Sleep(time.Second); ccancel() }()
		start := time.Now()
		_, err := d.RunOnce(cctx, spec(sh, "/bin/sh", "-c", "echo started; exec sleep 60"), OneOff{Stdout: &stdout})
		if err == nil {
			t.Fatal("no error after the context was cancelled")
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("cancel took %s", took)
		}
		if n := leftovers(); n != 0 {
			t.Errorf("%d containers left after the cancelled run", n)
		}
	})
	t.Run("HasFile", func(t *testing.T) {
		if ok, err := d.HasFile(ctx, sh, "/bin/sh"); err != nil || !ok {
			t.Errorf("busybox image: has /bin/sh %v, %v; want true", ok, err)
		}
		if ok, err := d.HasFile(ctx, hello, "/bin/sh"); err != nil || ok {
			t.Errorf("FROM scratch image: has /bin/sh %v, %v; want false", ok, err)
		}
		if _, err := d.HasFile(ctx, "plat-test/none:"+suffix, "/bin/sh"); err == nil {
			t.Error("no error for a missing image")
		}
	})
}
