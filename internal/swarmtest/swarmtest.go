// Package swarmtest starts a Docker Engine of its own in swarm mode, with a
// loopback registry beside it, for the tests of plat's swarm mode. Swarm
// mode changes an engine's state (and a shared engine's users would see
// its networks and ports), so the tests never use the machine's engine:
// the engine here has its own data root, exec root, pid file, socket,
// containerd namespace and bridge, no iptables rules, and is removed with
// everything it made when the test ends.
//
// Only one such engine can run on a host at a time (a swarm node owns the
// docker_gwbridge interface of its network namespace), so Start holds an
// exclusive file lock for the engine's life: concurrent test binaries
// (go test ./... runs packages side by side) wait for each other.
package swarmtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Fixed names and ranges of the test engine; the lock makes them unique.
const (
	lockPath = "/tmp/plat-swarmtest.lock"
	// bridgeName is the test engine's default bridge (the machine's engine
	// keeps docker0: a dockerd started with --bridge=none deletes docker0).
	bridgeName   = "platsw0"
	bridgeCIDR   = "192.168.231.1/24"
	gwBridgeNet  = "192.168.232.0/24"
	gwBridgeName = "docker_gwbridge"
	// overlayPool is where swarm takes the overlay networks' subnets.
	overlayPool  = "10.197.0.0/16"
	containerdNS = "plat-swarmtest"
	// The VXLAN data path port; Swarm takes it from 1024-49151.
	dataPortFirst = 47890
	dataPortLast  = 49151
	startTimeout  = 30 * time.Second
	stopTimeout   = 20 * time.Second
	ciEnv         = "CI"
	registryReady = 10 * time.Second
)

// Engine is a running single-node swarm and its registry.
type Engine struct {
	// Host is the engine's DOCKER_HOST (unix://…/docker.sock).
	Host string
	// Registry is the registry's host:port on 127.0.0.1 (plain HTTP:
	// Docker trusts loopback registries without TLS).
	Registry string
	dir      string
}

// Docker runs the docker CLI against the test engine and returns its
// combined output.
func (e *Engine) Docker(args ...string) (string, error) {
	cmd := exec.Command("docker", append([]string{"-H", e.Host}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Start starts the engine, makes it a swarm manager advertising
// 127.0.0.1, starts a registry on a free loopback port, and removes all of
// it when t ends. Missing tools or privileges skip the test, or fail it
// under CI=true.
func Start(t testing.TB) *Engine {
	t.Helper()
	if testing.Short() {
		t.Skip("swarm test engine (-short)")
	}
	requireTools(t)
	lock := acquireLock(t)
	t.Cleanup(func() { lock.Close() })

	dir, err := os.MkdirTemp("", "plat-sw-")
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{Host: "unix://" + filepath.Join(dir, "docker.sock"), dir: dir}
	removeStaleLinks(t)
	run(t, "ip", "link", "add", bridgeName, "type", "bridge")
	run(t, "ip", "addr", "add", bridgeCIDR, "dev", bridgeName)
	run(t, "ip", "link", "set", bridgeName, "up")
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", bridgeName).Run()
		_ = exec.Command("ip", "link", "del", gwBridgeName).Run()
	})

	dlog, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	dockerd := exec.Command("dockerd",
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"-H", e.Host,
		"--bridge", bridgeName,
		"--iptables=false", "--ip-masq=false",
		"--containerd-namespace", containerdNS,
		"--containerd-plugins-namespace", containerdNS+"-plugins",
	)
	dockerd.Stdout, dockerd.Stderr = dlog, dlog
	if err := dockerd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	t.Cleanup(func() {
		e.stop(t, dockerd)
		dlog.Close()
		unmountUnder(dir)
		if t.Failed() {
			if b, err := os.ReadFile(dlog.Name()); err == nil {
				t.Logf("test engine log (tail):\n%s", tail(b, 40))
			}
		}
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(startTimeout)
	for {
		if _, err := e.Docker("version", "--format", "{{.Server.Version}}"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(dlog.Name())
			t.Fatalf("test engine did not answer within %s:\n%s", startTimeout, tail(b, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Made before the swarm, so swarm takes this range for it, not one
	// next to the machine's own bridges.
	e.must(t, "network", "create", "--subnet", gwBridgeNet,
		"-o", "com.docker.network.bridge.name="+gwBridgeName,
		"-o", "com.docker.network.bridge.enable_icc=false",
		gwBridgeName)
	e.must(t, "swarm", "init", "--advertise-addr", "127.0.0.1",
		"--listen-addr", freeTCP(t),
		"--data-path-port", strconv.Itoa(freeUDPPort(t)),
		"--default-addr-pool", overlayPool)
	e.Registry = startRegistry(t, dir)
	return e
}

func (e *Engine) must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := e.Docker(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// stop removes the services, leaves the swarm and stops the engine.
func (e *Engine) stop(t testing.TB, dockerd *exec.Cmd) {
	if ids, err := e.Docker("service", "ls", "-q"); err == nil && ids != "" {
		_, _ = e.Docker(append([]string{"service", "rm"}, strings.Fields(ids)...)...)
	}
	_, _ = e.Docker("swarm", "leave", "--force")
	_ = dockerd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- dockerd.Wait() }()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		t.Logf("test engine did not stop within %s; killing it", stopTimeout)
		_ = dockerd.Process.Kill()
		<-done
	}
}

func requireTools(t testing.TB) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"dockerd", "docker", "docker-registry", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root (to run a Docker Engine)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "swarm test engine needs " + strings.Join(missing, ", ") + " (apt-get install docker.io docker-registry iproute2)"
	if os.Getenv(ciEnv) == "true" {
		t.Fatalf("%s; under CI=true it may not skip", msg)
	}
	t.Skip(msg)
}

// acquireLock takes the host-wide lock of the test engine, waiting for
// another test binary's engine to go.
func acquireLock(t testing.TB) *os.File {
	t.Helper()
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("swarm test lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("swarm test lock: %v", err)
	}
	return f
}

// removeStaleLinks deletes what a killed test run left: the lock is held,
// so no live test engine owns them, and the machine's engine is not a
// swarm node (checked) so the gateway bridge is not its own.
func removeStaleLinks(t testing.TB) {
	t.Helper()
	if exec.Command("ip", "link", "show", bridgeName).Run() == nil {
		_ = exec.Command("ip", "link", "del", bridgeName).Run()
	}
	if exec.Command("ip", "link", "show", gwBridgeName).Run() == nil {
		out, _ := exec.Command("docker", "-H", "unix:///var/run/docker.sock", "info", "--format", "{{.Swarm.LocalNodeState}}").Output()
		if s := strings.TrimSpace(string(out)); s != "inactive" && s != "" {
			t.Fatalf("%s exists and the machine's engine is a swarm node (%s): cannot run a second swarm engine here", gwBridgeName, s)
		}
		_ = exec.Command("ip", "link", "del", gwBridgeName).Run()
	}
}

// startRegistry runs Debian's registry on a free loopback port, storing
// in dir, until t ends.
func startRegistry(t testing.TB, dir string) string {
	t.Helper()
	addr := freeTCP(t)
	cfg := filepath.Join(dir, "registry.yml")
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "registry"), addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command("docker-registry", "serve", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(registryReady)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not listen on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func freeTCP(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// freeUDPPort is a free UDP port below 49152 (Swarm refuses data path
// ports in the ephemeral range).
func freeUDPPort(t testing.TB) int {
	t.Helper()
	for port := dataPortFirst; port < dataPortLast; port++ {
		c, err := net.ListenPacket("udp", "0.0.0.0:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatalf("no free UDP port in %d-%d for the swarm data path", dataPortFirst, dataPortLast)
	return 0
}

// unmountUnder lazily unmounts what the engine left mounted below dir
// (network namespaces, overlay layers), deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
