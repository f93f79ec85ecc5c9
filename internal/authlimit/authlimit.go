// Package authlimit throttles failed authentication per client address:
// after MaxFailures refused credentials within Window, every attempt from
// that address that carries credentials is answered 429 for Lockout,
// without checking them.
//
// Checking nothing while locked out is the point: if a good token still
// got through, the 429 would itself tell a guesser which guess was right
// and the limit would not slow guessing at all. The price is that a user
// behind the same address as an attacker waits out the lockout too;
// other addresses are never affected.
package authlimit

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Defaults.
const (
	DefaultMaxFailures = 10
	DefaultWindow      = time.Minute
	DefaultLockout     = time.Minute
	// maxTracked bounds the addresses remembered at once, so a flood from
	// many addresses cannot grow the table without bound.
	maxTracked = 10000
	// ipv6Prefix: one IPv6 client usually holds a whole /64, so its
	// addresses count as one.
	ipv6Prefix = 64
)

// Options configure a Limiter; zero fields take the defaults.
type Options struct {
	MaxFailures int
	Window      time.Duration
	Lockout     time.Duration
	Logger      *slog.Logger
	Now         func() time.Time // for tests
}

// Limiter counts failed authentications per client address. A nil
// *Limiter allows everything. It is safe for concurrent use.
type Limiter struct {
	max             int
	window, lockout time.Duration
	log             *slog.Logger
	now             func() time.Time

	mu sync.Mutex
	m  map[string]*client
}

// client is one address's current burst of failures.
type client struct {
	start    time.Time // first failure of the burst
	failures int
	until    time.Time // locked out before this time
	refused  int       // attempts refused while locked out
}

// New returns a limiter.
func New(opts Options) *Limiter {
	if opts.MaxFailures <= 0 {
		opts.MaxFailures = DefaultMaxFailures
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Lockout <= 0 {
		opts.Lockout = DefaultLockout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Limiter{max: opts.MaxFailures, window: opts.Window, lockout: opts.Lockout, log: opts.Logger, now: opts.Now, m: map[string]*client{}}
}

// Allow reports whether addr may try to authenticate now; when not, it
// also returns how long until it may.
func (l *Limiter) Allow(addr string) (retryAfter time.Duration, ok bool) {
	if l == nil {
		return 0, true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.m[addr]
	if c == nil || !now.Before(c.until) {
		return 0, true
	}
	c.refused++
	return c.until.Sub(now), false
}

// Fail records a refused credential from addr; what says where (a path).
// It logs one line when a burst starts and one when it locks addr out,
// never one per attempt.
func (l *Limiter) Fail(addr, what string) {
	if l == nil {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.m[addr]
	if c == nil {
		if len(l.m) >= maxTracked {
			l.sweep(now)
		}
		if len(l.m) >= maxTracked {
			return // full of live bursts; this address goes uncounted
		}
		c = &client{}
		l.m[addr] = c
	}
	if now.Before(c.until) {
		return // locked out already; Allow counts these
	}
	// A new burst: the first failure, the window has passed, or a lockout
	// has ended (each lockout gives a fresh count).
	if c.failures == 0 || now.Sub(c.start) >= l.window || !c.until.IsZero() {
		refused := c.refused
		*c = client{start: now}
		if refused > 0 {
			l.log.Warn("authentication lockout ended", "ip", addr, "refused_while_locked", refused)
		}
		l.log.Warn("refused credentials; further failures from this address are counted, not logged",
			"ip", addr, "path", what, "limit", l.max, "window", l.window)
	}
	c.failures++
	if c.failures >= l.max {
		c.until = now.Add(l.lockout)
		l.log.Warn("too many failed authentications: address locked out",
			"ip", addr, "failures", c.failures, "within", now.Sub(c.start).Round(time.Millisecond), "lockout", l.lockout)
	}
}

// sweep forgets addresses whose burst and lockout are over; the caller
// holds l.mu.
func (l *Limiter) sweep(now time.Time) {
	for k, c := range l.m {
		if !now.Before(c.until) && now.Sub(c.start) >= l.window {
			delete(l.m, k)
		}
	}
}

// RetryAfter formats wait for a Retry-After header: whole seconds,
// rounded up, at least 1.
func RetryAfter(wait time.Duration) string {
	return strconv.Itoa(max(1, int((wait+time.Second-1)/time.Second)))
}

// Tracked is how many addresses the limiter remembers (for tests).
func (l *Limiter) Tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// ClientAddr is the key a request is limited under: the peer's IP (an
// IPv6 peer's /64). Forwarding headers are ignored: the daemon's
// listeners face clients directly, and a header is the client's to forge.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() && !ip.IsLoopback() {
		p, _ := ip.Prefix(ipv6Prefix)
		return p.String()
	}
	return ip.String()
}
