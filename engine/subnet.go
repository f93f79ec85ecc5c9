package engine

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// App networks take their subnet from a pool plat owns rather than from
// Docker's default address pools, which hold only about 30 networks.
const (
	// DefaultAppSubnets is the pool app networks' subnets come from
	// (plat daemon --app-subnets): 1024 networks of AppSubnetBits.
	DefaultAppSubnets = "10.213.0.0/16"
	// AppSubnetBits is the prefix length of one app's network: a /26 has
	// 61 addresses for containers (64 less network, broadcast and
	// gateway), room for a blue-green deploy of the most replicas an app
	// may run (deploy.MaxReplicas) twice over.
	AppSubnetBits = 26
	// maxSubnetAttempts bounds the retries when another process takes the
	// subnet plat picked before plat's create reaches Docker.
	maxSubnetAttempts = 8
	routeFile         = "/proc/net/route"
)

// ErrSubnetPoolFull is wrapped by Run when every subnet of the app subnet
// pool is taken by a network or overlaps a host route.
var ErrSubnetPoolFull = errors.New("no free subnet left in the app subnet pool")

// defaultAppSubnets is DefaultAppSubnets parsed.
var defaultAppSubnets = netip.MustParsePrefix(DefaultAppSubnets)

// AppSubnetHosts is how many containers one app network holds.
func AppSubnetHosts() int { return 1<<(32-AppSubnetBits) - 3 }

// AppNetworks is how many app networks pool holds at most.
func AppNetworks(pool netip.Prefix) int { return 1 << (AppSubnetBits - pool.Bits()) }

// ParseAppSubnets parses and checks an app subnet pool: an IPv4 CIDR
// without host bits, at least as wide as one app network.
func ParseAppSubnets(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("app subnets %q: want an IPv4 CIDR such as %s", s, DefaultAppSubnets)
	}
	if err := checkAppSubnets(p); err != nil {
		return netip.Prefix{}, err
	}
	return p, nil
}

func checkAppSubnets(p netip.Prefix) error {
	switch {
	case !p.IsValid() || !p.Addr().Is4():
		return fmt.Errorf("app subnets %s: want an IPv4 CIDR such as %s", p, DefaultAppSubnets)
	case p.Bits() > AppSubnetBits:
		return fmt.Errorf("app subnets %s: too small for one app network (a /%d); use a prefix of /%d or shorter, e.g. %s",
			p, AppSubnetBits, AppSubnetBits, netip.PrefixFrom(p.Addr(), 16).Masked())
	case p != p.Masked():
		return fmt.Errorf("app subnets %s: has host bits set; did you mean %s?", p, p.Masked())
	}
	return nil
}

// span is an inclusive range of IPv4 addresses, as integers.
type span struct{ lo, hi uint64 }

func spanOf(p netip.Prefix) span {
	a := p.Masked().Addr().As4()
	lo := uint64(binary.BigEndian.Uint32(a[:]))
	return span{lo, lo + 1<<(32-p.Bits()) - 1}
}

// freeSubnet returns the first /bits subnet in pool that overlaps none of
// used (IPv6 prefixes in used are ignored), and false when there is none.
func freeSubnet(pool netip.Prefix, bits int, used []netip.Prefix) (netip.Prefix, bool) {
	if bits < pool.Bits() || bits > 32 {
		return netip.Prefix{}, false
	}
	// The used ranges, merged into sorted disjoint spans, so that the walk
	// jumps past each one at once instead of trying every subnet in it.
	var spans []span
	for _, p := range used {
		if p.IsValid() && p.Addr().Is4() {
			spans = append(spans, spanOf(p))
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	merged := spans[:0]
	for _, s := range spans {
		if n := len(merged); n > 0 && s.lo <= merged[n-1].hi+1 {
			merged[n-1].hi = max(merged[n-1].hi, s.hi)
			continue
		}
		merged = append(merged, s)
	}
	size := uint64(1) << (32 - bits)
	p := spanOf(pool)
	i := 0
	for cand := p.lo; cand+size-1 <= p.hi; {
		for i < len(merged) && merged[i].hi < cand {
			i++
		}
		if i < len(merged) && merged[i].lo <= cand+size-1 {
			cand = (merged[i].hi + size) &^ (size - 1) // the next subnet after it
			continue
		}
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(cand))
		return netip.PrefixFrom(netip.AddrFrom4(a), bits), true
	}
	return netip.Prefix{}, false
}

// parseRoutes reads the IPv4 routes of /proc/net/route's format, leaving
// out default routes (they overlap everything and choose nothing).
// Destination and mask are hex in the host's byte order.
func parseRoutes(r io.Reader) ([]netip.Prefix, error) {
	var routes []netip.Prefix
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			if len(f) > 0 && f[0] == "Iface" {
				continue
			}
		}
		if len(f) < 8 {
			continue
		}
		dst, err1 := hexWord(f[1])
		mask, err2 := hexWord(f[7])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("route %q: %w", sc.Text(), errors.Join(err1, err2))
		}
		m := binary.BigEndian.Uint32(mask[:])
		ones := bits.LeadingZeros32(^m)
		if ones == 0 || m<<ones != 0 { // default route, or not a prefix mask
			continue
		}
		routes = append(routes, netip.PrefixFrom(netip.AddrFrom4(dst), ones).Masked())
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return routes, nil
}

// hexWord decodes one of /proc/net/route's 8-digit hex words (a 32-bit
// value in network order, printed as a native integer) to its bytes.
func hexWord(s string) ([4]byte, error) {
	var out [4]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return out, fmt.Errorf("bad hex word %q", s)
	}
	binary.NativeEndian.PutUint32(out[:], binary.BigEndian.Uint32(b))
	return out, nil
}

// hostRoutes lists the host's IPv4 routes; none where there is no
// /proc/net/route (not Linux).
func hostRoutes() ([]netip.Prefix, error) {
	f, err := os.Open(routeFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("host routes: %w", err)
	}
	defer f.Close()
	routes, err := parseRoutes(f)
	if err != nil {
		return nil, fmt.Errorf("host routes %s: %w", routeFile, err)
	}
	return routes, nil
}
