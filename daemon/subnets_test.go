package daemon_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
)

// TestAppSubnetsFlag: with --app-subnets, an app's network and its
// containers' addresses come from that range; when it has no free subnet
// left, a deploy fails saying which flag widens it, and the apps already
// there keep serving. A bad range stops the daemon before it starts.
func TestAppSubnetsFlag(t *testing.T) {
	requireTools(t)
	for _, bad := range []string{"10.213.0.0/27", "fd00::/64", "10.213.5.0/16", "nonsense"} {
		cmd := exec.Command(platBin, "daemon", "--app-subnets", bad, "--data", t.TempDir())
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "app subnets") {
			t.Errorf("plat daemon --app-subnets %s: exit %d, output:\n%s", bad, code, out)
		}
	}

	// One app network's worth, at random so parallel runs rarely meet.
	pool := netip.MustParsePrefix(fmt.Sprintf("10.216.%d.%d/26", rand.IntN(256), 64*rand.IntN(4)))
	d := startDaemon(t, "--app-subnets", pool.String())
	d.deployedApp("a", "a1")
	ids := d.containers("a")
	if len(ids) != 1 {
		t.Fatalf("a has %d containers, want 1", len(ids))
	}
	_, ip, gw := d.inspectNet(ids[0]).only(t)
	for what, addr := range map[string]string{"address": ip, "gateway": gw} {
		if a, err := netip.ParseAddr(addr); err != nil || !pool.Contains(a) {
			t.Errorf("a's container %s %q is not in --app-subnets %s", what, addr, pool)
		}
	}
	out, err := exec.Command("docker", "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", d.instance+"-a").Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != pool.String() {
		t.Errorf("network %s-a on %q (%v), want %s", d.instance, got, err, pool)
	}

	d.createApp("b")
	rb := d.newRepo("b")
	rb.commit("b1", "")
	out2, err := rb.push("main")
	if err == nil || !strings.Contains(out2, "--app-subnets") || !strings.Contains(out2, pool.String()) {
		t.Errorf("deploy with the pool full: %v, output:\n%s\nwant a failure naming --app-subnets and %s", err, out2, pool)
	}
	d.mustServe("a", "version=a1")
}
