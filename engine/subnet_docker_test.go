package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// subnetTestPool is a /19 (128 app subnets) of 10.214.0.0/16 chosen at
// random, so that parallel runs on a shared engine rarely meet.
func subnetTestPool() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 214, byte(32 * rand.IntN(8)), 0}), 19)
}

// removeLabelledNetworks removes the networks labelled plat.test=id.
func removeLabelledNetworks(t *testing.T, d *Docker, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nets, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "plat.test="+id))})
	if err != nil {
		t.Errorf("cleanup: list networks: %v", err)
		return
	}
	for _, n := range nets {
		if err := d.cli.NetworkRemove(ctx, n.ID); err != nil {
			t.Errorf("cleanup: remove network %s: %v", n.Name, err)
		}
	}
}

func networkSubnet(t *testing.T, d *Docker, name string) netip.Prefix {
	t.Helper()
	nw, err := d.cli.NetworkInspect(context.Background(), name, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nw.IPAM.Config) != 1 {
		t.Fatalf("network %s: IPAM config %+v, want one subnet", name, nw.IPAM.Config)
	}
	p, err := netip.ParsePrefix(nw.IPAM.Config[0].Subnet)
	if err != nil {
		t.Fatalf("network %s: %v", name, err)
	}
	return p
}

// TestAppSubnets creates more app networks than Docker's default address
// pools hold (about 30) on the real engine, each on its own /26 of plat's
// pool, away from host routes.
func TestAppSubnets(t *testing.T) {
	d := testDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	suffix := randSuffix(t)
	labels := map[string]string{"plat.test": suffix}
	t.Cleanup(func() { removeLabelledNetworks(t, d, suffix) })

	pool := subnetTestPool()
	d.appSubnets = pool
	// A host route over the pool's first quarter (a VPN, say): Docker
	// would take those subnets, plat must not.
	route := netip.PrefixFrom(pool.Addr(), pool.Bits()+2)
	withRoute := func() ([]netip.Prefix, error) {
		r, err := hostRoutes()
		return append(r, route), err
	}
	d.routes = withRoute

	t.Run("ManyNetworks", func(t *testing.T) {
		const n = 40
		var subnets []netip.Prefix
		for i := range n {
			name := fmt.Sprintf("plat-test-subnet-%s-%d", suffix, i)
			if err := d.ensureNetwork(ctx, name, labels); err != nil {
				t.Fatalf("network %d: %v", i, err)
			}
			s := networkSubnet(t, d, name)
			if s.Bits() != AppSubnetBits || !pool.Contains(s.Addr()) {
				t.Errorf("network %d on %s, want a /%d of %s", i, s, AppSubnetBits, pool)
			}
			if s.Overlaps(route) {
				t.Errorf("network %d on %s overlaps the host route %s", i, s, route)
			}
			for _, o := range subnets {
				if s.Overlaps(o) {
					t.Errorf("network %d on %s overlaps %s", i, s, o)
				}
			}
			subnets = append(subnets, s)
		}
		// The kernel's routes, as plat reads them, show each bridge.
		real, err := hostRoutes()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subnets {
			if !slices.Contains(real, s) {
				t.Errorf("no host route for %s in %s: %v", s, routeFile, real)
			}
		}
	})

	t.Run("OverlapRetry", func(t *testing.T) {
		// Another process takes the subnet plat is about to pick, after
		// plat listed the networks: plat's create is refused and it
		// moves on to the next one.
		other := "plat-test-subnet-other-" + suffix
		var otherSubnet netip.Prefix
		d.routes = func() ([]netip.Prefix, error) {
			d.routes = withRoute // once
			nets, _ := d.cli.NetworkList(ctx, network.ListOptions{})
			var used []netip.Prefix
			for _, nw := range nets {
				for _, c := range nw.IPAM.Config {
					if p, err := netip.ParsePrefix(c.Subnet); err == nil {
						used = append(used, p)
					}
				}
			}
			otherSubnet, _ = freeSubnet(pool, AppSubnetBits, append(used, route))
			_, err := d.cli.NetworkCreate(ctx, other, network.CreateOptions{Driver: "bridge", Labels: labels,
				IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: otherSubnet.String()}}}})
			if err != nil {
				t.Errorf("the other process's network: %v", err)
			}
			return []netip.Prefix{route}, nil
		}
		defer func() { d.routes = withRoute }()
		name := "plat-test-subnet-retry-" + suffix
		if err := d.ensureNetwork(ctx, name, labels); err != nil {
			t.Fatal(err)
		}
		if !otherSubnet.IsValid() {
			t.Fatal("the other process made no network")
		}
		if s := networkSubnet(t, d, name); s.Overlaps(otherSubnet) || s.Overlaps(route) || !pool.Contains(s.Addr()) {
			t.Errorf("network on %s, the other on %s", s, otherSubnet)
		}
	})

	t.Run("ExistingNetworkKept", func(t *testing.T) {
		// A network an older plat made from Docker's default pools:
		// outside plat's pool.
		name := "plat-test-subnet-old-" + suffix
		all := map[string]string{LabelManaged: "true", "plat.test": suffix}
		before := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 215, byte(rand.IntN(256)), 0}), 24)
		_, err := d.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: all,
			IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: before.String()}}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.ensureNetwork(ctx, name, labels); err != nil {
			t.Fatal(err)
		}
		if after := networkSubnet(t, d, name); after != before {
			t.Errorf("subnet %s became %s", before, after)
		}
	})

	t.Run("PoolFull", func(t *testing.T) {
		// A pool of one subnet, taken.
		one := netip.PrefixFrom(networkSubnet(t, d, fmt.Sprintf("plat-test-subnet-%s-0", suffix)).Addr(), AppSubnetBits)
		d.appSubnets = one
		defer func() { d.appSubnets = pool }()
		err := d.ensureNetwork(ctx, "plat-test-subnet-full-"+suffix, labels)
		if !errors.Is(err, ErrSubnetPoolFull) || !strings.Contains(err.Error(), "--app-subnets") || !strings.Contains(err.Error(), one.String()) {
			t.Errorf("ensureNetwork with a full pool: %v; want ErrSubnetPoolFull naming the pool and --app-subnets", err)
		}
	})
}
