package daemon_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// appPort is the port plat's apps listen on inside their containers.
const appPort = "5000"

// containerNet is what docker inspect says of a container's networks.
type containerNet struct {
	ID       string
	HostPort string // the app port published on 127.0.0.1
	Nets     map[string]struct{ IPAddress, Gateway string }
}

func (d *daemon) inspectNet(id string) containerNet {
	d.t.Helper()
	out, err := exec.Command("docker", "inspect", "--format", "{{json .NetworkSettings}}", id).Output()
	if err != nil {
		d.t.Fatalf("docker inspect %s: %v", id, err)
	}
	var ns struct {
		Networks map[string]struct{ IPAddress, Gateway string }
		Ports    map[string][]struct{ HostIP, HostPort string }
	}
	if err := json.Unmarshal(out, &ns); err != nil {
		d.t.Fatal(err)
	}
	c := containerNet{ID: id, Nets: ns.Networks}
	for _, b := range ns.Ports[appPort+"/tcp"] {
		if b.HostIP == "127.0.0.1" {
			c.HostPort = b.HostPort
		}
	}
	return c
}

// only returns the container's one network's name, IP and gateway.
func (c containerNet) only(t *testing.T) (name, ip, gateway string) {
	t.Helper()
	if len(c.Nets) != 1 {
		t.Fatalf("container %.12s is on %d networks, want 1: %v", c.ID, len(c.Nets), c.Nets)
	}
	for n, v := range c.Nets {
		return n, v.IPAddress, v.Gateway
	}
	return
}

// dialFrom asks the testapp (mode dial) in the container published at
// hostPort to open a TCP connection to addr, and returns its answer.
func dialFrom(t *testing.T, hostPort, addr string) string {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + hostPort + "/dial?addr=" + addr)
	if err != nil {
		t.Fatalf("dial %s from the container at :%s: %v", addr, hostPort, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// publicListener listens on all addresses, like a service a host offers to
// the world, and accepts (and closes) connections until the test ends.
func publicListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// hostAddress returns an IPv4 address of this host that is neither
// loopback nor on a Docker bridge, "" when there is none.
func hostAddress(t *testing.T) string {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "br-") || strings.HasPrefix(ifc.Name, "docker") || strings.HasPrefix(ifc.Name, "veth") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return ""
}

// TestNetworkIsolation deploys two apps: a container of one cannot open a
// connection to the other's container, nor to the host's loopback-only
// services through its network's gateway (the daemon's API here, the other
// app's published port); it can reach its sibling replica and services the
// host offers on all addresses; the router serves both apps. Destroying an
// app removes its network. On a daemon with one shared network, a's
// container connects to b's.
func TestNetworkIsolation(t *testing.T) {
	d := startDaemon(t)
	d.createApp("a")
	ra := d.newRepo("a")
	ra.commit("a1", "dial")
	ra.mustPush("main")
	d.mustPlat("scale", "a", "web=2")
	d.deployedApp("b", "b1")
	d.mustServe("a", "version=a1")
	d.mustServe("b", "version=b1")

	ids := d.containers("a")
	if len(ids) != 2 {
		t.Fatalf("a has %d containers, want 2", len(ids))
	}
	a1, a2 := d.inspectNet(ids[0]), d.inspectNet(ids[1])
	bIDs := d.containers("b")
	if len(bIDs) != 1 {
		t.Fatalf("b has %d containers, want 1", len(bIDs))
	}
	b := d.inspectNet(bIDs[0])
	netA, ipA1, gw := a1.only(t)
	netA2, ipA2, _ := a2.only(t)
	netB, ipB, _ := b.only(t)
	if want := d.instance + "-a"; netA != want || netA2 != want {
		t.Errorf("a's replicas are on %s and %s, want %s", netA, netA2, want)
	}
	if want := d.instance + "-b"; netB != want {
		t.Errorf("b is on %s, want %s", netB, want)
	}
	out, err := exec.Command("docker", "network", "inspect", "--format", `{{index .Labels "plat.instance"}} {{index .Labels "plat.app"}} {{.Internal}}`, netA).Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != d.instance+" a false" {
		t.Errorf("network %s labels: %q %v", netA, got, err)
	}

	t.Run("OtherApp", func(t *testing.T) {
		if got := dialFrom(t, a1.HostPort, net.JoinHostPort(ipB, appPort)); got == "connected" {
			t.Errorf("a reached b's container at %s:%s directly", ipB, appPort)
		}
	})
	t.Run("Sibling", func(t *testing.T) {
		if got := dialFrom(t, a1.HostPort, net.JoinHostPort(ipA2, appPort)); got != "connected" {
			t.Errorf("a.1 cannot reach its sibling a.2 at %s: %s", ipA2, got)
		}
		if got := dialFrom(t, a2.HostPort, net.JoinHostPort(ipA1, appPort)); got != "connected" {
			t.Errorf("a.2 cannot reach its sibling a.1 at %s: %s", ipA1, got)
		}
	})
	t.Run("LoopbackOnly", func(t *testing.T) {
		_, apiPort, _ := net.SplitHostPort(d.apiAddr) // the harness binds 127.0.0.1
		_, routerPort, _ := net.SplitHostPort(d.httpAddr)
		for what, port := range map[string]string{"the daemon's API": apiPort, "the router": routerPort, "b's published port": b.HostPort} {
			if got := dialFrom(t, a1.HostPort, net.JoinHostPort(gw, port)); got == "connected" {
				t.Errorf("a reached %s (127.0.0.1:%s) through its gateway %s", what, port, gw)
			}
		}
	})
	t.Run("Outbound", func(t *testing.T) {
		// The host's public services (bound on all addresses, as the
		// daemon's listeners are by default) are reachable through the
		// gateway and at the host's own address: egress from the app's
		// network works. Beyond the host nothing answers on this machine.
		port := publicListener(t)
		if got := dialFrom(t, a1.HostPort, net.JoinHostPort(gw, port)); got != "connected" {
			t.Errorf("a cannot reach a public port of the host through its gateway %s: %s", gw, got)
		}
		if ip := hostAddress(t); ip != "" {
			if got := dialFrom(t, a1.HostPort, net.JoinHostPort(ip, port)); got != "connected" {
				t.Errorf("a cannot reach the host at %s: %s", ip, got)
			}
		} else {
			t.Log("no non-loopback host address to try")
		}
	})

	d.mustPlat("apps:destroy", "b", "--confirm", "b")
	if err := exec.Command("docker", "network", "inspect", netB).Run(); err == nil {
		t.Errorf("network %s is left after apps:destroy b", netB)
	}
	if err := exec.Command("docker", "network", "inspect", netA).Run(); err != nil {
		t.Errorf("network %s went with b: %v", netA, err)
	}
	d.mustServe("a", "version=a1")
}

// TestNetworkMigration: a daemon restarted over an app whose container is
// on a shared network (as every app was before per-app networks) adopts it
// and then moves the app to its own network with new containers, while
// requests flow: none fails.
func TestNetworkMigration(t *testing.T) {
	d := startDaemon(t)
	d.deployedApp("old", "o1")
	id := d.containers("old")[0]
	own := d.instance + "-old"
	shared := d.instance + "-shared" // stands for the old "plat" network
	d.stop(syscall.SIGTERM)
	for _, args := range [][]string{
		{"network", "create", "--label", "plat.instance=" + d.instance, shared},
		{"network", "connect", shared, id},
		{"network", "disconnect", own, id},
	} {
		if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if name, _, _ := d.inspectNet(id).only(t); name != shared {
		t.Fatalf("set-up: container on %s", name)
	}

	d.start()
	var ok, failed atomic.Int64
	var firstErr sync.Once
	var hostsMu sync.Mutex
	hosts := map[string]bool{} // the testapp answers with its container's short ID
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			code, body, err := d.get("old", "/")
			if err != nil || code != http.StatusOK || !strings.Contains(body, "version=o1") {
				failed.Add(1)
				firstErr.Do(func() { t.Errorf("request during migration: %d %q %v", code, body, err) })
				continue
			}
			ok.Add(1)
			host, _, _ := strings.Cut(strings.TrimPrefix(body, "host="), " ")
			hostsMu.Lock()
			hosts[host] = true
			hostsMu.Unlock()
		}
	})
	waitFor(t, 60*time.Second, "the app to move to its own network", func() bool {
		ids := d.containers("old")
		return len(ids) == 1 && ids[0] != id && d.eventCount("old", "migrated") == 1
	})
	time.Sleep(300 * time.Millisecond) // requests after the switch too
	close(stop)
	wg.Wait()
	t.Logf("%d requests during the migration, %d failed", ok.Load(), failed.Load())
	if ok.Load() == 0 || failed.Load() > 0 {
		t.Errorf("%d ok, %d failed", ok.Load(), failed.Load())
	}
	newID := d.containers("old")[0]
	if !hosts[id[:12]] || !hosts[newID[:12]] {
		t.Errorf("answers came from %v; want both the adopted container %.12s and its replacement %.12s", hosts, id, newID)
	}
	if name, _, _ := d.inspectNet(d.containers("old")[0]).only(t); name != own {
		t.Errorf("after migration the container is on %s, want %s", name, own)
	}
	d.mustServe("old", "version=o1")
	// The next start finds nothing to move.
	d.restart(syscall.SIGTERM)
	time.Sleep(time.Second)
	if n := d.eventCount("old", "migrated"); n != 1 {
		t.Errorf("%d migrations after a second start, want 1", n)
	}
}

// imageTags lists the repo:tag names of an image.
func imageTags(t *testing.T, ref string) []string {
	t.Helper()
	out, err := exec.Command("docker", "image", "inspect", "--format", "{{json .RepoTags}}", ref).Output()
	if err != nil {
		return nil
	}
	var tags []string
	if err := json.Unmarshal(out, &tags); err != nil {
		t.Fatal(err)
	}
	return tags
}

// TestSharedImageTags: two apps deployed from the same source share one
// image under two tags. Pruning an old release of one and destroying it
// remove only its own tags: the other app's tag and image stay, and no tag
// of the destroyed app is left behind.
func TestSharedImageTags(t *testing.T) {
	d := startDaemon(t, "--retain", "1")
	rx := d.deployedApp("x", "same")
	d.createApp("y")
	ry := d.newRepo("y")
	ry.commit("same", "")
	ry.mustPush("main")
	d.mustServe("y", "version=same")
	shared := d.releases("x")[0].ImageID
	if got := d.releases("y")[0].ImageID; got != shared {
		t.Fatalf("the same source gave two images (%s, %s): the test needs one", shared, got)
	}
	xTag, yTag := d.instance+"/x:v1", d.instance+"/y:v1"
	if tags := imageTags(t, shared); !slices.Contains(tags, xTag) || !slices.Contains(tags, yTag) {
		t.Fatalf("shared image tags %v", tags)
	}

	// x moves on: with --retain 1 its v1 is pruned, which must untag x:v1
	// and leave y's tag and the image.
	rx.commit("x2", "")
	rx.mustPush("main")
	d.mustServe("x", "version=x2")
	if tags := imageTags(t, shared); !slices.Equal(tags, []string{yTag}) {
		t.Errorf("after pruning x v1 the shared image has tags %v, want [%s]", tags, yTag)
	}

	d.mustPlat("apps:destroy", "x", "--confirm", "x")
	out, _ := exec.Command("docker", "images", "--format", "{{.Repository}}:{{.Tag}}", d.instance+"/x").Output()
	if left := strings.Fields(string(out)); len(left) > 0 {
		t.Errorf("tags of the destroyed app left behind: %v", left)
	}
	if tags := imageTags(t, shared); !slices.Equal(tags, []string{yTag}) {
		t.Errorf("after destroying x the shared image has tags %v, want [%s]", tags, yTag)
	}
	d.mustServe("y", "version=same")
}

// TestResources: containers get the default limits; resources:set makes a
// release whose containers run with the new memory and CPU limits and a
// read-only root filesystem; impossible limits get 400 with the reason; a
// rollback brings the earlier limits back.
func TestResources(t *testing.T) {
	d := startDaemon(t)
	d.deployedApp("res", "r1")

	type hostConfig struct {
		Memory         int64
		NanoCpus       int64
		ReadonlyRootfs bool
		Tmpfs          map[string]string
	}
	limits := func() hostConfig {
		t.Helper()
		ids := d.containers("res")
		if len(ids) != 1 {
			t.Fatalf("%d containers", len(ids))
		}
		out, err := exec.Command("docker", "inspect", "--format", "{{json .HostConfig}}", ids[0]).Output()
		if err != nil {
			t.Fatal(err)
		}
		var hc hostConfig
		if err := json.Unmarshal(out, &hc); err != nil {
			t.Fatal(err)
		}
		return hc
	}
	if hc := limits(); hc.Memory != 512<<20 || hc.NanoCpus != 1e9 || hc.ReadonlyRootfs {
		t.Errorf("default limits: %+v, want 512 MiB, 1 CPU, writable", hc)
	}
	var shown struct {
		MemoryBytes int64   `json:"memory_bytes"`
		CPUs        float64 `json:"cpus"`
		ReadOnly    bool    `json:"read_only"`
	}
	if err := json.Unmarshal([]byte(d.mustPlat("resources", "res", "--json")), &shown); err != nil || shown.MemoryBytes != 512<<20 || shown.CPUs != 1 || shown.ReadOnly {
		t.Errorf("plat resources --json: %+v %v", shown, err)
	}

	out := d.mustPlat("resources:set", "res", "--memory", "256m", "--cpus", "0.5", "--read-only", "on")
	if !strings.Contains(out, "res v2 (resources) is live: memory 256 MiB, 0.5 CPU, read-only on") {
		t.Errorf("resources:set said:\n%s", out)
	}
	hc := limits()
	if hc.Memory != 256<<20 || hc.NanoCpus != 5e8 || !hc.ReadonlyRootfs || hc.Tmpfs["/tmp"] == "" {
		t.Errorf("limits after resources:set: %+v", hc)
	}
	d.mustServe("res", "version=r1")
	if out := d.mustPlat("resources", "res"); !strings.Contains(out, "256 MiB") || !strings.Contains(out, "0.5") || !strings.Contains(out, "on") {
		t.Errorf("plat resources:\n%s", out)
	}
	d.assertReleases("res", "v1 push superseded", "v2 resources active")

	for _, tc := range []struct{ body, want string }{
		{`{"cpus": 4096}`, "more than the host has"},
		{`{"cpus": 0.001}`, "below the minimum"},
		{`{"memory_bytes": 1024}`, "below the minimum"},
		{`{"memory_bytes": 1099511627776000}`, "more than the host has"},
		{`{}`, "nothing to change"},
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+d.apiAddr+"/api/apps/res/resources", bytes.NewBufferString(tc.body))
		req.Header.Set("Authorization", "Bearer "+d.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
			t.Errorf("POST resources %s: %d %s; want 400 saying %q", tc.body, resp.StatusCode, b, tc.want)
		}
	}

	d.mustPlat("rollback", "res", "v1")
	if hc := limits(); hc.Memory != 512<<20 || hc.NanoCpus != 1e9 || hc.ReadonlyRootfs {
		t.Errorf("limits after rollback to v1: %+v, want v1's defaults", hc)
	}
	d.mustServe("res", "version=r1")
}
