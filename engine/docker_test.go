package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// helloSource is the test app: an HTTP server on $PORT answering
// "hello $GREETING", printing one line to stdout and one to stderr at start.
// With EXIT_CODE set it exits at once with that code; "-exit N" as arguments
// does the same (for RUN steps).
const helloSource = `package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	if c := os.Getenv("EXIT_CODE"); c != "" {
		n, _ := strconv.Atoi(c)
		fmt.Println("exiting with", n)
		os.Exit(n)
	}
	if len(os.Args) == 3 && os.Args[1] == "-exit" {
		n, _ := strconv.Atoi(os.Args[2])
		os.Exit(n)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	fmt.Println("hello-stdout listening on", port)
	fmt.Fprintln(os.Stderr, "hello-stderr ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() { <-sig; fmt.Println("bye"); os.Exit(0) }()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s\n", os.Getenv("GREETING"))
	})
	// /write?path=P writes a file, to tell a read-only root filesystem.
	http.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		if err := os.WriteFile(r.URL.Query().Get("path"), []byte("x"), 0o644); err != nil {
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

const helloDockerfile = `FROM scratch
COPY app /app
COPY note.txt /note.txt
ENV PORT=8080
ENTRYPOINT ["/app"]
`

// testDocker connects to the engine. Under CI=true an unreachable engine
// fails the test; otherwise the test is skipped.
func testDocker(t *testing.T) *Docker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := NewDocker(ctx)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Docker Engine required under CI: %v", err)
		}
		t.Skipf("no Docker Engine: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func randSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

var (
	helloOnce sync.Once
	helloBin  []byte
	helloErr  error
)

// helloBinary compiles helloSource into a static Linux binary (once per run).
func helloBinary(t *testing.T) []byte {
	t.Helper()
	helloOnce.Do(func() {
		dir, err := os.MkdirTemp("", "plat-hello-")
		if err != nil {
			helloErr = err
			return
		}
		defer os.RemoveAll(dir)
		files := map[string]string{
			"main.go": helloSource,
			"go.mod":  "module hello\n\ngo 1.22\n",
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				helloErr = err
				return
			}
		}
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", "app", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			helloErr = errors.New("go build: " + err.Error() + "\n" + string(out))
			return
		}
		helloBin, helloErr = os.ReadFile(filepath.Join(dir, "app"))
	})
	if helloErr != nil {
		t.Fatal(helloErr)
	}
	return helloBin
}

type tarFile struct {
	name string
	data []byte
	mode int64
}

// makeTar builds an in-memory tar of files with a fixed mtime.
func makeTar(t *testing.T, files ...tarFile) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: f.name, Mode: mode, Size: int64(len(f.data)), ModTime: mtime, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// cleanupImage force-removes an image (and its untagged parents) at the end of the test.
func cleanupImage(t *testing.T, d *Docker, ref string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = d.cli.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})
}

// cleanupLabelled removes all containers carrying label plat.test=id, and
// then the network, at the end of the test.
func cleanupLabelled(t *testing.T, d *Docker, id, networkName string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "plat.test="+id))})
		if err != nil {
			t.Errorf("cleanup: list containers: %v", err)
		}
		for _, c := range cs {
			if err := d.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				t.Errorf("cleanup: remove container %s: %v", c.ID, err)
			}
		}
		if networkName != "" {
			removeNetworks(d, networkName)
		}
	})
}

func TestNewDockerAndPing(t *testing.T) {
	d := testDocker(t)
	if err := d.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNewDockerUnreachable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "nope.sock"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := NewDocker(ctx)
	if err == nil {
		t.Fatal("NewDocker with a dead socket: want an error")
	}
	if !strings.Contains(err.Error(), "cannot reach the Docker Engine at unix://") || !strings.Contains(err.Error(), "is dockerd running?") {
		t.Fatalf("unhelpful error: %v", err)
	}
}

func TestDockerNotFound(t *testing.T) {
	d := testDocker(t)
	ctx := context.Background()
	unknown := "plat-test-does-not-exist-" + randSuffix(t)
	if _, err := d.Inspect(ctx, unknown); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect unknown: got %v, want ErrNotFound", err)
	}
	if err := d.Remove(ctx, unknown); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove unknown: got %v, want ErrNotFound", err)
	}
	if err := d.Start(ctx, unknown); !errors.Is(err, ErrNotFound) {
		t.Errorf("Start unknown: got %v, want ErrNotFound", err)
	}
	if err := d.Stop(ctx, unknown, time.Second); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stop unknown: got %v, want ErrNotFound", err)
	}
	if err := d.Logs(ctx, unknown, -1, false, io.Discard); !errors.Is(err, ErrNotFound) {
		t.Errorf("Logs unknown: got %v, want ErrNotFound", err)
	}
	if ok, err := d.ImageExists(ctx, "plat-test/none:"+unknown); ok || err != nil {
		t.Errorf("ImageExists unknown = %v, %v; want false, nil", ok, err)
	}
	if err := d.RemoveImage(ctx, "plat-test/none:"+unknown); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveImage unknown: got %v, want ErrNotFound", err)
	}
}

func TestDockerBuildFailure(t *testing.T) {
	d := testDocker(t)
	ctx := context.Background()
	tag := "plat-test/fail:" + randSuffix(t)
	cleanupImage(t, d, tag)
	var out bytes.Buffer
	id, err := d.Build(ctx, makeTar(t, tarFile{name: "Dockerfile", data: []byte("FROM scratch\nCOPY missing /x\n")}), BuildOptions{Tags: []string{tag}}, &out)
	if err == nil {
		t.Fatalf("build with COPY of a missing file succeeded (image %s); output:\n%s", id, out.String())
	}
	if !strings.HasPrefix(err.Error(), "build failed: ") || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("error does not carry the engine's message: %v", err)
	}
	if !strings.Contains(out.String(), "COPY missing /x") {
		t.Errorf("build output lacks the step:\n%s", out.String())
	}
	t.Logf("error: %v", err)
}

func TestDocker(t *testing.T) {
	d := testDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	suffix := randSuffix(t)
	bin := helloBinary(t)
	tagA := "plat-test/hello:" + suffix + "-a"
	tagB := "plat-test/hello:" + suffix + "-b"
	// Registered first, so it runs last: images go after the containers.
	cleanupImage(t, d, tagA)
	cleanupImage(t, d, tagB)
	netName := "plat-test-net-" + suffix
	cleanupLabelled(t, d, suffix, netName)

	helloTar := func(note string) *bytes.Buffer {
		return makeTar(t,
			tarFile{name: "Dockerfile", data: []byte(helloDockerfile)},
			tarFile{name: "app", data: bin, mode: 0o755},
			tarFile{name: "note.txt", data: []byte(note)},
		)
	}

	var imageID string
	t.Run("Build", func(t *testing.T) {
		var out bytes.Buffer
		id, err := d.Build(ctx, helloTar("first "+suffix), BuildOptions{
			Tags:   []string{tagA},
			Labels: map[string]string{LabelManaged: "true", "plat.test": suffix},
		}, &out)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, out.String())
		}
		if !strings.HasPrefix(id, "sha256:") {
			t.Fatalf("image ID %q", id)
		}
		if !strings.Contains(out.String(), "Step 1/") {
			t.Errorf("build output lacks the steps:\n%s", out.String())
		}
		imageID = id
		img, err := d.cli.ImageInspect(ctx, tagA)
		if err != nil {
			t.Fatal(err)
		}
		if img.ID != id {
			t.Errorf("tag %s is %s, Build returned %s", tagA, img.ID, id)
		}
		if img.Config == nil || img.Config.Labels["plat.test"] != suffix || img.Config.Labels[LabelManaged] != "true" {
			t.Errorf("image labels: %+v", img.Config)
		}
		if ok, err := d.ImageExists(ctx, tagA); !ok || err != nil {
			t.Errorf("ImageExists(%s) = %v, %v", tagA, ok, err)
		}
	})
	if imageID == "" {
		t.FailNow()
	}

	t.Run("BuildUsesCache", func(t *testing.T) {
		var out bytes.Buffer
		id, err := d.Build(ctx, helloTar("second "+suffix), BuildOptions{Tags: []string{tagB}}, &out)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, out.String())
		}
		if id == imageID {
			t.Errorf("a changed note.txt gave the same image %s", id)
		}
		// Step 2 (COPY app /app) is unchanged and must come from the cache.
		o := out.String()
		i := strings.Index(o, "Step 2/")
		j := strings.Index(o, "Step 3/")
		if i < 0 || j < i || !strings.Contains(o[i:j], "Using cache") {
			t.Errorf("second build did not reuse the cache for COPY app:\n%s", o)
		}
	})

	t.Run("BuildRunStepFails", func(t *testing.T) {
		// A file unique to this run makes the COPY step a new layer, not
		// a cache hit, so the failed build has a layer of its own.
		df := "FROM scratch\nCOPY app /app\nCOPY note /note\nRUN [\"/app\", \"-exit\", \"3\"]\n"
		var out bytes.Buffer
		_, err := d.Build(ctx, makeTar(t,
			tarFile{name: "Dockerfile", data: []byte(df)},
			tarFile{name: "app", data: bin, mode: 0o755},
			tarFile{name: "note", data: []byte(suffix)},
		), BuildOptions{}, &out)
		if err == nil {
			t.Fatal("a RUN step exiting 3 built fine")
		}
		if !strings.Contains(err.Error(), "returned a non-zero code: 3") {
			t.Errorf("error: %v", err)
		}
		// The failed build's own layers are gone; the cached COPY app
		// layer that the successful builds above build on stays.
		o := out.String()
		i := strings.Index(o, "Step 3/")
		m := regexp.MustCompile(`---> ([0-9a-f]{12})`).FindStringSubmatch(o[i:])
		if i < 0 || m == nil {
			t.Fatalf("no layer for COPY note in the output:\n%s", o)
		}
		if _, err := d.cli.ImageInspect(ctx, m[1]); err == nil {
			t.Errorf("the failed build left its layer %s behind", m[1])
		}
		if _, err := d.cli.ImageInspect(ctx, imageID); err != nil {
			t.Errorf("the successful build's image went with the failed one: %v", err)
		}
	})

	labels := map[string]string{LabelManaged: "true", LabelApp: "hello", "plat.test": suffix}
	netLabels := map[string]string{LabelApp: "hello", "plat.test": suffix}
	var info ContainerInfo
	t.Run("Run", func(t *testing.T) {
		var err error
		info, err = d.Run(ctx, ContainerSpec{
			Name:          "plat-test-hello-" + suffix,
			Image:         imageID,
			Env:           []string{"GREETING=howdy"},
			Labels:        labels,
			Port:          8080,
			MemoryBytes:   64 << 20,
			NanoCPUs:      5e8,
			Network:       netName,
			NetworkLabels: netLabels,
		})
		if err != nil {
			t.Fatal(err)
		}
		if !info.Running || info.State != "running" {
			t.Errorf("not running: %+v", info)
		}
		if !strings.HasPrefix(info.HostAddr, "127.0.0.1:") {
			t.Fatalf("HostAddr %q", info.HostAddr)
		}
		if info.Name != "plat-test-hello-"+suffix || info.Image != imageID || info.Labels["plat.test"] != suffix || info.StartedAt.IsZero() {
			t.Errorf("info: %+v", info)
		}
		if !slices.Equal(info.Networks, []string{netName}) {
			t.Errorf("Networks %v, want [%s]", info.Networks, netName)
		}

		body := httpGet(t, ctx, "http://"+info.HostAddr+"/")
		if body != "hello howdy\n" {
			t.Errorf("GET answered %q, want the env-driven greeting", body)
		}
	})
	if info.ID == "" {
		t.FailNow()
	}

	t.Run("NameInUse", func(t *testing.T) {
		_, err := d.Run(ctx, ContainerSpec{Name: info.Name, Image: imageID, Labels: labels, Network: netName})
		if !errors.Is(err, ErrNameInUse) {
			t.Errorf("second Run with the same name: %v, want ErrNameInUse", err)
		}
	})

	t.Run("Events", func(t *testing.T) {
		ectx, ecancel := context.WithCancel(ctx)
		evs := make(chan ContainerEvent, 16)
		done := make(chan error, 1)
		go func() { done <- d.Events(ectx, labels, func(e ContainerEvent) { evs <- e }) }()
		time.Sleep(500 * time.Millisecond) // let the subscription reach the engine
		if err := d.Stop(ctx, info.ID, 0); err != nil {
			t.Fatal(err)
		}
		if err := d.Start(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
		// Paused: still running, frozen, its port kept; thawed by Unpause.
		if err := d.Pause(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
		if p, err := d.Inspect(ctx, info.ID); err != nil || !p.Running || !p.Paused || p.State != "paused" || p.HostAddr == "" {
			t.Errorf("paused container: %+v %v; want running, paused, with its address", p, err)
		}
		if err := d.Unpause(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
		if p, err := d.Inspect(ctx, info.ID); err != nil || !p.Running || p.Paused {
			t.Errorf("unpaused container: %+v %v; want running", p, err)
		}
		var got []string
		for len(got) < 4 {
			select {
			case e := <-evs:
				if e.ID != info.ID || e.Labels["plat.test"] != suffix {
					t.Errorf("event for another container: %+v", e)
				}
				got = append(got, e.Action)
			case <-time.After(30 * time.Second):
				t.Fatalf("events so far %v, want die, start, pause and unpause", got)
			}
		}
		if want := []string{ActionDie, ActionStart, ActionPause, ActionUnpause}; !slices.Equal(got, want) {
			t.Errorf("events %v, want %v", got, want)
		}
		ecancel()
		if err := <-done; err != nil {
			t.Errorf("Events after cancel: %v, want nil", err)
		}
		var err error
		if info, err = d.Inspect(ctx, info.ID); err != nil || !info.Running {
			t.Fatalf("after restart: %+v %v", info, err)
		}
	})

	t.Run("Hardening", func(t *testing.T) {
		c, err := d.cli.ContainerInspect(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		hc := c.HostConfig
		if !slices.Equal(hc.CapDrop, []string{"ALL"}) {
			t.Errorf("CapDrop %v", hc.CapDrop)
		}
		if !slices.Contains(hc.SecurityOpt, "no-new-privileges") {
			t.Errorf("SecurityOpt %v", hc.SecurityOpt)
		}
		if hc.Privileged || len(hc.Binds) > 0 || len(hc.Mounts) > 0 || len(c.Mounts) > 0 {
			t.Errorf("privileged or mounts: %v %v %v %v", hc.Privileged, hc.Binds, hc.Mounts, c.Mounts)
		}
		if hc.PidsLimit == nil || *hc.PidsLimit != 512 {
			t.Errorf("PidsLimit %v", hc.PidsLimit)
		}
		if hc.Memory != 64<<20 {
			t.Errorf("Memory %d", hc.Memory)
		}
		if hc.NanoCPUs != 5e8 {
			t.Errorf("NanoCPUs %d, want 5e8", hc.NanoCPUs)
		}
		if hc.ReadonlyRootfs || len(hc.Tmpfs) > 0 {
			t.Errorf("ReadonlyRootfs %v, Tmpfs %v without ReadOnly", hc.ReadonlyRootfs, hc.Tmpfs)
		}
		if hc.RestartPolicy.Name != "no" {
			t.Errorf("RestartPolicy %q", hc.RestartPolicy.Name)
		}
		if hc.LogConfig.Type != "json-file" || hc.LogConfig.Config["max-size"] != "10m" || hc.LogConfig.Config["max-file"] != "3" {
			t.Errorf("LogConfig %+v", hc.LogConfig)
		}
		b := hc.PortBindings["8080/tcp"]
		if len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != "" {
			t.Errorf("PortBindings %+v", hc.PortBindings)
		}
		if _, ok := c.NetworkSettings.Networks[netName]; !ok || len(c.NetworkSettings.Networks) != 1 {
			t.Errorf("not on network %s alone: %v", netName, c.NetworkSettings.Networks)
		}
		nw, err := d.cli.NetworkInspect(ctx, netName, network.InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if nw.Driver != "bridge" || nw.Internal || nw.Labels[LabelManaged] != "true" || nw.Labels[LabelApp] != "hello" || nw.Labels["plat.test"] != suffix {
			t.Errorf("network: driver %s internal %v labels %v", nw.Driver, nw.Internal, nw.Labels)
		}
		if !slices.Contains(c.Config.Env, "GREETING=howdy") {
			t.Errorf("Env %v", c.Config.Env)
		}
	})

	t.Run("SetRestart", func(t *testing.T) {
		if err := d.SetRestart(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
		c, err := d.cli.ContainerInspect(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
			t.Errorf("RestartPolicy %q", c.HostConfig.RestartPolicy.Name)
		}
	})

	t.Run("List", func(t *testing.T) {
		got, err := d.List(ctx, map[string]string{"plat.test": suffix, LabelApp: "hello"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != info.ID || !got[0].Running || got[0].HostAddr != info.HostAddr {
			t.Errorf("List: %+v", got)
		}
		none, err := d.List(ctx, map[string]string{"plat.test": suffix, LabelApp: "other"})
		if err != nil || len(none) != 0 {
			t.Errorf("List with a non-matching label: %+v, %v", none, err)
		}
	})

	t.Run("Logs", func(t *testing.T) {
		var buf bytes.Buffer
		if err := d.Logs(ctx, info.ID, -1, false, &buf); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"hello-stdout listening on 8080\n", "hello-stderr ready\n"} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("logs lack %q:\n%s", want, buf.String())
			}
		}
		buf.Reset()
		if err := d.Logs(ctx, info.ID, 0, false, &buf); err != nil || buf.Len() != 0 {
			t.Errorf("tail 0: %q, %v", buf.String(), err)
		}
	})

	t.Run("WritableRootfs", func(t *testing.T) {
		if body := httpGet(t, ctx, "http://"+info.HostAddr+"/write?path=/written"); body != "ok\n" {
			t.Errorf("write to / of a default container: %q", body)
		}
	})

	t.Run("ReadOnly", func(t *testing.T) {
		ro, err := d.Run(ctx, ContainerSpec{
			Name: "plat-test-ro-" + suffix, Image: imageID, Labels: map[string]string{"plat.test": suffix},
			Port: 8080, ReadOnly: true, Network: netName, NetworkLabels: netLabels,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Remove(ctx, ro.ID)
		if body := httpGet(t, ctx, "http://"+ro.HostAddr+"/write?path=/written"); !strings.Contains(body, "read-only file system") {
			t.Errorf("write to / of a read-only container: %q, want a read-only error", body)
		}
		if body := httpGet(t, ctx, "http://"+ro.HostAddr+"/write?path=/tmp/written"); body != "ok\n" {
			t.Errorf("write to /tmp of a read-only container: %q", body)
		}
		c, err := d.cli.ContainerInspect(ctx, ro.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !c.HostConfig.ReadonlyRootfs || c.HostConfig.Tmpfs["/tmp"] != tmpfsOptions {
			t.Errorf("ReadonlyRootfs %v, Tmpfs %v", c.HostConfig.ReadonlyRootfs, c.HostConfig.Tmpfs)
		}
	})

	t.Run("NetworkNotOurs", func(t *testing.T) {
		name := "plat-test-stranger-" + suffix
		t.Cleanup(func() { removeNetworks(d, name) })
		if _, err := d.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge"}); err != nil {
			t.Fatal(err)
		}
		_, err := d.Run(ctx, ContainerSpec{Name: "plat-test-stranger-" + suffix, Image: imageID, Labels: map[string]string{"plat.test": suffix},
			Network: name, NetworkLabels: netLabels})
		if !errors.Is(err, ErrNetworkNotOurs) {
			t.Errorf("Run on a network plat did not make: %v, want ErrNetworkNotOurs", err)
		}
	})

	t.Run("RemoveNetworkInUse", func(t *testing.T) {
		if err := d.RemoveNetwork(ctx, netName); !errors.Is(err, ErrNetworkInUse) {
			t.Errorf("RemoveNetwork with a container attached: %v, want ErrNetworkInUse", err)
		}
	})

	t.Run("Rename", func(t *testing.T) {
		name := "plat-test-renamed-" + suffix
		if err := d.Rename(ctx, info.ID, name); err != nil {
			t.Fatal(err)
		}
		got, err := d.Inspect(ctx, info.ID)
		if err != nil || got.Name != name || !got.Running || got.HostAddr != info.HostAddr {
			t.Errorf("after Rename: %+v, %v; want name %s, running at %s", got, err, name, info.HostAddr)
		}
		if err := d.Rename(ctx, info.ID, info.Name); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Capacity", func(t *testing.T) {
		c, err := d.Capacity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.CPUs < 1 || c.MemoryBytes < 64<<20 {
			t.Errorf("Capacity %+v", c)
		}
	})

	t.Run("RemoveImageInUse", func(t *testing.T) {
		err := d.RemoveImage(ctx, imageID)
		if !errors.Is(err, ErrImageInUse) {
			t.Errorf("RemoveImage of a running container's image: %v", err)
		}
		if ok, _ := d.ImageExists(ctx, imageID); !ok {
			t.Fatal("the image is gone")
		}
	})

	t.Run("StopStart", func(t *testing.T) {
		// A follower ends when the container stops.
		var logs safeBuffer
		done := make(chan error, 1)
		go func() { done <- d.Logs(ctx, info.ID, 0, true, &logs) }()
		time.Sleep(200 * time.Millisecond)

		if err := d.Stop(ctx, info.ID, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("following logs: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Logs with follow did not return when the container stopped")
		}
		if !strings.Contains(logs.String(), "bye") {
			t.Errorf("followed logs lack the app's last line: %q", logs.String())
		}
		st, err := d.Inspect(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Running || st.State != "exited" || st.ExitCode != 0 || st.HostAddr != "" || st.FinishedAt.IsZero() {
			t.Errorf("after Stop: %+v", st)
		}
		if err := d.Start(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
		st, err = d.Inspect(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Running || st.HostAddr == "" {
			t.Fatalf("after Start: %+v", st)
		}
		if body := httpGet(t, ctx, "http://"+st.HostAddr+"/"); body != "hello howdy\n" {
			t.Errorf("GET after restart: %q", body)
		}
	})

	t.Run("LogsFollowCancel", func(t *testing.T) {
		cctx, ccancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer ccancel()
		start := time.Now()
		if err := d.Logs(cctx, info.ID, 1, true, io.Discard); err != nil {
			t.Errorf("Logs follow ended by ctx: %v", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("Logs follow outlived its ctx")
		}
	})

	t.Run("ExitCode", func(t *testing.T) {
		ci, err := d.Run(ctx, ContainerSpec{
			Name:   "plat-test-exit-" + suffix,
			Image:  imageID,
			Env:    []string{"EXIT_CODE=3"},
			Labels: map[string]string{"plat.test": suffix},
		})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := d.Inspect(ctx, ci.ID)
			if err != nil {
				t.Fatal(err)
			}
			if st.State == "exited" {
				if st.ExitCode != 3 || st.Running || st.HostAddr != "" {
					t.Errorf("exited container: %+v", st)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("container did not exit: %+v", st)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := d.Remove(ctx, ci.ID); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("RunStartFails", func(t *testing.T) {
		// An image whose entrypoint does not exist: create works, start fails.
		tag := "plat-test/broken:" + suffix
		cleanupImage(t, d, tag)
		if _, err := d.Build(ctx, makeTar(t,
			tarFile{name: "Dockerfile", data: []byte("FROM scratch\nCOPY note.txt /note.txt\nENTRYPOINT [\"/nope\"]\n")},
			tarFile{name: "note.txt", data: []byte(suffix)},
		), BuildOptions{Tags: []string{tag}}, io.Discard); err != nil {
			t.Fatal(err)
		}
		lbl := map[string]string{"plat.test": suffix, "plat.case": "broken"}
		if _, err := d.Run(ctx, ContainerSpec{Name: "plat-test-broken-" + suffix, Image: tag, Labels: lbl, Port: 8080}); err == nil {
			t.Fatal("Run of an image with a missing entrypoint succeeded")
		} else {
			t.Logf("Run error: %v", err)
		}
		left, err := d.List(ctx, lbl)
		if err != nil || len(left) != 0 {
			t.Errorf("the failed container was left behind: %+v, %v", left, err)
		}
	})

	t.Run("RunMissingImage", func(t *testing.T) {
		_, err := d.Run(ctx, ContainerSpec{Image: "plat-test/none:" + suffix, Labels: map[string]string{"plat.test": suffix}})
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Run of a missing image: %v", err)
		}
	})

	t.Run("Remove", func(t *testing.T) {
		if err := d.Remove(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Inspect(ctx, info.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Inspect after Remove: %v", err)
		}
		if err := d.Remove(ctx, info.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Remove: %v", err)
		}
		got, err := d.List(ctx, map[string]string{"plat.test": suffix})
		if err != nil || len(got) != 0 {
			t.Errorf("List after Remove: %+v, %v", got, err)
		}
	})

	t.Run("RemoveNetwork", func(t *testing.T) {
		if err := d.RemoveNetwork(ctx, netName); err != nil {
			t.Fatal(err)
		}
		if _, err := d.cli.NetworkInspect(ctx, netName, network.InspectOptions{}); err == nil {
			t.Error("the network is still there")
		}
		if err := d.RemoveNetwork(ctx, netName); !errors.Is(err, ErrNotFound) {
			t.Errorf("second RemoveNetwork: %v, want ErrNotFound", err)
		}
	})

	t.Run("RemoveImage", func(t *testing.T) {
		// One image, two tags: removing one tag keeps the image and the
		// other tag.
		if err := d.cli.ImageTag(ctx, imageID, tagA+"-twin"); err != nil {
			t.Fatal(err)
		}
		if err := d.RemoveImage(ctx, tagA+"-twin"); err != nil {
			t.Fatal(err)
		}
		if ok, err := d.ImageExists(ctx, tagA+"-twin"); ok || err != nil {
			t.Errorf("the removed tag is still there: %v, %v", ok, err)
		}
		if ok, err := d.ImageExists(ctx, tagA); !ok || err != nil {
			t.Errorf("removing a twin tag took the image: %v, %v", ok, err)
		}
		if err := d.RemoveImage(ctx, tagB); err != nil {
			t.Fatal(err)
		}
		if err := d.RemoveImage(ctx, imageID); err != nil {
			t.Fatal(err)
		}
		if ok, err := d.ImageExists(ctx, tagA); ok || err != nil {
			t.Errorf("ImageExists after RemoveImage = %v, %v", ok, err)
		}
		if err := d.RemoveImage(ctx, imageID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second RemoveImage: %v", err)
		}
	})

	t.Run("NetworkCreateRace", func(t *testing.T) {
		name := "plat-test-race-" + suffix
		t.Cleanup(func() { removeNetworks(d, name) })
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = d.ensureNetwork(ctx, name, map[string]string{"plat.test": suffix}) }()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		nets, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, nw := range nets {
			if nw.Name == name {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d networks named %s", n, name)
		}
	})
}

// removeNetworks removes every network called name (by ID, as names may be
// ambiguous).
func removeNetworks(d *Docker, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nets, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return
	}
	for _, n := range nets {
		if n.Name == name {
			_ = d.cli.NetworkRemove(ctx, n.ID)
		}
	}
}

// httpGet retries a GET until the app answers (it may still be starting).
func httpGet(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(b)
			}
			err = rerr
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLineWriter(t *testing.T) {
	var dst bytes.Buffer
	sw := &syncWriter{w: &dst}
	a, b := &lineWriter{dst: sw}, &lineWriter{dst: sw}
	for _, step := range []struct {
		w *lineWriter
		s string
	}{{a, "out-1 par"}, {b, "err-1\nerr-2 par"}, {a, "tial\nout-2\n"}, {b, "tial\n"}, {a, "no newline"}} {
		if n, err := step.w.Write([]byte(step.s)); err != nil || n != len(step.s) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if err := errors.Join(a.Flush(), b.Flush()); err != nil {
		t.Fatal(err)
	}
	want := "err-1\nout-1 partial\nout-2\nerr-2 partial\nno newline"
	if dst.String() != want {
		t.Errorf("got %q, want %q", dst.String(), want)
	}
}

func TestHostAddr(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ports nat.PortMap
		want  string
	}{
		{"none", nil, ""},
		{"unbound", nat.PortMap{"8080/tcp": nil}, ""},
		{"udp only", nat.PortMap{"53/udp": {{HostIP: "127.0.0.1", HostPort: "5353"}}}, ""},
		{"other IP", nat.PortMap{"8080/tcp": {{HostIP: "0.0.0.0", HostPort: "1234"}}}, ""},
		{"loopback", nat.PortMap{"8080/tcp": {{HostIP: "0.0.0.0", HostPort: "1"}, {HostIP: "127.0.0.1", HostPort: "32768"}}}, "127.0.0.1:32768"},
		{"lowest port first", nat.PortMap{
			"9000/tcp": {{HostIP: "127.0.0.1", HostPort: "2"}},
			"8080/tcp": {{HostIP: "127.0.0.1", HostPort: "1"}},
		}, "127.0.0.1:1"},
	} {
		if got := hostAddr(tc.ports); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
