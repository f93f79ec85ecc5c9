package engine

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestFreeSubnet(t *testing.T) {
	for _, tc := range []struct {
		name string
		pool string
		bits int
		used []string
		want string // "" for none
	}{
		{"empty pool takes the first", "10.213.0.0/16", 26, nil, "10.213.0.0/26"},
		{"skips a used one", "10.213.0.0/16", 26, []string{"10.213.0.0/26"}, "10.213.0.64/26"},
		{"skips several, out of order", "10.213.0.0/16", 26, []string{"10.213.0.128/26", "10.213.0.0/26", "10.213.0.64/26"}, "10.213.0.192/26"},
		{"fills a hole", "10.213.0.0/16", 26, []string{"10.213.0.0/26", "10.213.0.128/26"}, "10.213.0.64/26"},
		{"a smaller used range blocks its whole /26", "10.213.0.0/16", 26, []string{"10.213.0.5/32"}, "10.213.0.64/26"},
		{"a larger route skips all it covers", "10.213.0.0/16", 26, []string{"10.213.0.0/20"}, "10.213.16.0/26"},
		{"a range covering the pool leaves nothing", "10.213.0.0/16", 26, []string{"10.0.0.0/8"}, ""},
		{"a used range that starts before the pool", "10.213.0.0/16", 26, []string{"10.212.0.0/15"}, ""},
		{"a used range that ends inside the pool", "10.213.0.0/24", 26, []string{"10.212.255.0/24", "10.213.0.0/25"}, "10.213.0.128/26"},
		{"ranges outside the pool do not matter", "10.213.0.0/24", 26, []string{"172.17.0.0/16", "192.168.0.0/20", "10.214.0.0/26"}, "10.213.0.0/26"},
		{"overlapping used ranges merge", "10.213.0.0/24", 26, []string{"10.213.0.0/25", "10.213.0.64/26", "10.213.0.100/30"}, "10.213.0.128/26"},
		{"adjacent used ranges merge", "10.213.0.0/24", 26, []string{"10.213.0.0/26", "10.213.0.64/26", "10.213.0.128/26"}, "10.213.0.192/26"},
		{"full pool", "10.213.0.0/24", 26, []string{"10.213.0.0/26", "10.213.0.64/26", "10.213.0.128/26", "10.213.0.192/26"}, ""},
		{"full pool at the top of the address space", "255.255.255.0/24", 26, []string{"255.255.255.0/24"}, ""},
		{"last subnet at the top of the address space", "255.255.255.0/24", 26, []string{"255.255.255.0/25", "255.255.255.128/26"}, "255.255.255.192/26"},
		{"pool of exactly one subnet", "10.213.7.64/26", 26, nil, "10.213.7.64/26"},
		{"IPv6 ranges are ignored", "10.213.0.0/24", 26, []string{"fd00::/8", "::ffff:10.213.0.0/120"}, "10.213.0.0/26"},
		{"pool narrower than a subnet", "10.213.0.0/27", 26, nil, ""},
		{"whole address space", "0.0.0.0/0", 26, []string{"0.0.0.0/8"}, "1.0.0.0/26"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := freeSubnet(netip.MustParsePrefix(tc.pool), tc.bits, prefixes(tc.used...))
			if tc.want == "" {
				if ok {
					t.Fatalf("freeSubnet = %s, want none", got)
				}
				return
			}
			if !ok || got != netip.MustParsePrefix(tc.want) {
				t.Fatalf("freeSubnet = %s, %v; want %s", got, ok, tc.want)
			}
		})
	}
}

// TestFreeSubnetFillsPool picks subnets one after another, as many apps'
// first deploys do: every subnet of the pool once, none overlapping.
func TestFreeSubnetFillsPool(t *testing.T) {
	pool := netip.MustParsePrefix("10.213.0.0/20")
	routes := prefixes("10.213.4.0/22") // a host route: 16 subnets plat must not use
	var got []netip.Prefix
	for {
		p, ok := freeSubnet(pool, AppSubnetBits, append(slices.Clone(got), routes...))
		if !ok {
			break
		}
		for _, q := range append(slices.Clone(got), routes...) {
			if p.Overlaps(q) {
				t.Fatalf("%s overlaps %s", p, q)
			}
		}
		if !pool.Contains(p.Addr()) || p.Bits() != AppSubnetBits {
			t.Fatalf("%s is not a /%d of %s", p, AppSubnetBits, pool)
		}
		got = append(got, p)
	}
	if want := AppNetworks(pool) - 16; len(got) != want {
		t.Errorf("%d subnets from %s, want %d", len(got), pool, want)
	}
}

func TestParseAppSubnets(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "10.213.0.0/16", want: "10.213.0.0/16"},
		{in: " 10.0.0.0/8 ", want: "10.0.0.0/8"},
		{in: "192.168.100.0/26", want: "192.168.100.0/26"},
		{in: "10.213.0.0/27", err: "too small for one app network"},
		{in: "10.213.5.0/16", err: "did you mean 10.213.0.0/16?"},
		{in: "fd00::/64", err: "want an IPv4 CIDR"},
		{in: "10.213.0.0", err: "want an IPv4 CIDR"},
		{in: "", err: "want an IPv4 CIDR"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseAppSubnets(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseAppSubnets(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != netip.MustParsePrefix(tc.want) {
				t.Fatalf("ParseAppSubnets(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
			}
		})
	}
}

// routeWord is addr as /proc/net/route prints it: the address's bytes read
// as a host-order integer, in hex.
func routeWord(addr string) string {
	a := netip.MustParseAddr(addr).As4()
	return fmt.Sprintf("%08X", binary.NativeEndian.Uint32(a[:]))
}

func TestParseRoutes(t *testing.T) {
	line := func(iface, dst, gw, mask string) string {
		return fmt.Sprintf("%s\t%s\t%s\t0001\t0\t0\t0\t%s\t0\t0\t0\n", iface, routeWord(dst), routeWord(gw), routeWord(mask))
	}
	header := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	for _, tc := range []struct {
		name  string
		table string
		want  []string
		err   bool
	}{
		{"empty", header, nil, false},
		{"default route left out", header + line("eth0", "0.0.0.0", "192.0.2.1", "0.0.0.0"), nil, false},
		{"networks and hosts", header +
			line("eth0", "0.0.0.0", "192.0.2.1", "0.0.0.0") +
			line("docker0", "172.17.0.0", "0.0.0.0", "255.255.0.0") +
			line("tun0", "10.213.8.0", "0.0.0.0", "255.255.252.0") +
			line("wg0", "10.9.9.9", "0.0.0.0", "255.255.255.255"),
			[]string{"172.17.0.0/16", "10.213.8.0/22", "10.9.9.9/32"}, false},
		{"non-contiguous mask left out", header + line("x", "10.0.0.0", "0.0.0.0", "255.0.255.0"), nil, false},
		{"short lines left out", header + "eth0\t00000000\n", nil, false},
		{"bad hex", header + "eth0\tZZZZZZZZ\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRoutes(strings.NewReader(tc.table))
			if tc.err {
				if err == nil {
					t.Fatalf("parseRoutes = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, prefixes(tc.want...)) {
				t.Errorf("parseRoutes = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestParseRoutesLinux reads a table as an x86-64 or arm64 kernel writes it.
func TestParseRoutesLinux(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("sample is from a little-endian host")
	}
	const table = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
docker0	000011AC	00000000	0001	0	0	0	0000FFFF	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
`
	got, err := parseRoutes(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	if want := prefixes("172.17.0.0/16", "192.0.2.0/24"); !slices.Equal(got, want) {
		t.Errorf("parseRoutes = %v, want %v", got, want)
	}
}
