// Package router is plat's embedded HTTP reverse proxy: it maps a request's
// host to an app and the app to its running backends (containers).
//
// The routing table is immutable and swapped with one atomic pointer store
// (copy-on-write), so the request path takes no lock: one atomic load, one
// map lookup, then net/http/httputil.ReverseProxy does the proxying.
//
// An app may run several backends (replicas): each request goes to the one
// with the fewest requests in flight. A backend that fails before answering
// is avoided for DownPeriod and the request is retried on another when that
// is safe. An app scaled to zero has an Asleep route: its requests wait
// while the waker (SetWaker) starts it. Stats reports each app's traffic.
//
// Canary and rolling deploys split an app's requests between two releases
// (Route.Canary with a Weight in percent); a cookie the router sets keeps
// each client on one side (see Group). In-place deploys hold requests
// (Route.Hold) while the app has no backend for a moment. ReleaseStats
// reports each release's requests, statuses, proxy errors and latency.
//
// Blue-green deploys use it like this:
//
//	prev, err := r.Set(router.Route{App: "myapp", Hosts: hosts, Backends: []*router.Backend{green}})
//	// new requests now go to green
//	for _, b := range prev {
//		_ = b.Drain(ctx) // wait for requests still running on blue
//	}
//	// stop blue's container
package router

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Options fields left zero.
const (
	DefaultDialTimeout = 5 * time.Second
	// DefaultResponseHeaderTimeout is 0: no limit. Apps may legitimately take
	// long before they answer (reports, long polling), and a client that
	// gives up cancels the request anyway.
	DefaultResponseHeaderTimeout = time.Duration(0)
	DefaultMaxIdleConnsPerHost   = 512
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultTCPKeepAlive          = 30 * time.Second
	DefaultExpectContinueTimeout = 1 * time.Second
	// DefaultMaxResponseHeaderBytes bounds the status line and headers of
	// an app's response (net/http's default is 10 MB): an app must not be
	// able to make the router buffer an unbounded header.
	DefaultMaxResponseHeaderBytes = 1 << 20
	// DefaultRetryAfter is the Retry-After sent with a 503 for an app that
	// has no running release.
	DefaultRetryAfter = 5 * time.Second
	// DefaultWakeTimeout is how long a request for an asleep app waits for
	// the app to wake up before it gets a 504.
	DefaultWakeTimeout = 30 * time.Second
	// DefaultHoldTimeout is how long a request for a held app (Route.Hold)
	// waits for backends when the route gives no HoldTimeout.
	DefaultHoldTimeout = 30 * time.Second
)

// StatusClientClosedRequest is the (nginx) status the router records,
// without writing it, when the client goes away before the backend answers.
const StatusClientClosedRequest = 499

// Sentinel errors; test with errors.Is.
var (
	// ErrHostTaken: Set was given a host that another app serves.
	ErrHostTaken = errors.New("host is already served by another app")
	// ErrInvalidRoute: Set was given an empty app name, an empty host, a
	// nil backend or an inconsistent split (see Group).
	ErrInvalidRoute = errors.New("invalid route")
	// ErrDrainIncomplete: Drain's context ended with requests still in flight.
	ErrDrainIncomplete = errors.New("drain incomplete")
	// ErrResponseHeaderTooLarge: a backend's response head (status line and
	// headers) exceeded Options.MaxResponseHeaderBytes.
	ErrResponseHeaderTooLarge = errors.New("response headers too large")
)

// Options configure a Router. The zero value is ready to use.
type Options struct {
	Logger *slog.Logger // nil → slog.Default()

	// Transport carries requests to backends. nil → plat's own transport built from
	// the fields below (keep-alive pools per backend address, a lean path for
	// GET and HEAD, net/http.Transport for the rest; no environment proxy, no
	// transparent compression).
	Transport http.RoundTripper

	DialTimeout           time.Duration // 0 → DefaultDialTimeout
	ResponseHeaderTimeout time.Duration // 0 → no limit (DefaultResponseHeaderTimeout)
	MaxIdleConnsPerHost   int           // 0 → DefaultMaxIdleConnsPerHost
	IdleConnTimeout       time.Duration // 0 → DefaultIdleConnTimeout
	// MaxResponseHeaderBytes bounds a backend's response head; a larger one
	// gets the client a 502. 0 → DefaultMaxResponseHeaderBytes.
	MaxResponseHeaderBytes int64
	RetryAfter             time.Duration // 0 → DefaultRetryAfter
	WakeTimeout            time.Duration // 0 → DefaultWakeTimeout
	// RequestLogBuffer is how many request records (RequestLog) may wait
	// for their reader before new ones are dropped. 0 → DefaultRequestLogBuffer.
	RequestLogBuffer int
}

// Route says which hosts an app serves and where it runs.
type Route struct {
	App string
	// Hosts are host names without port, e.g. "myapp.localhost". Set
	// normalizes them (lower case, no trailing dot, port dropped).
	Hosts []string
	// Backends share the requests: each goes to the one with the fewest in
	// flight (round-robin among equals), avoiding one that just failed.
	// Empty means the app is known but not running: its hosts answer 503.
	Backends []*Backend
	// Asleep: the app is scaled to zero but can be woken. Requests for its
	// hosts are held while the router's waker (SetWaker) starts it; then
	// they are proxied to the backends the waker installed with Set.
	// Ignored when Backends is non-empty.
	Asleep bool
	// HSTSMaxAge > 0 sends Strict-Transport-Security with this max-age on
	// the app's responses over HTTPS for hosts with a public certificate
	// (not IsLocalName), unless the app sends its own. The local CA's
	// certificates are trusted by few browsers: pinning HTTPS there would
	// lock the others out.
	HSTSMaxAge time.Duration

	// Release labels Backends: the release they run (e.g. "v7"). The
	// router counts requests per release (ReleaseStats); the label also
	// tells Canary's backends apart from these.
	Release string
	// Canary, if not nil, splits the app's requests: Canary.Weight percent
	// go to Canary.Backends, the rest to Backends. See Group.
	Canary *Group

	// Hold: the app has no backend now but will have one in a moment (an
	// in-place deploy stopped the old release before starting the new).
	// Requests wait, without waking anything, until a Set gives the app
	// backends, for up to HoldTimeout (0 → DefaultHoldTimeout); then they
	// get a 503 with Retry-After. Ignored when Backends is non-empty; it
	// wins over Asleep.
	Hold        bool
	HoldTimeout time.Duration

	// Flags are the app's feature flags (see Flag): the router tells the
	// app which are on for each user in the Plat-Flags request header.
	Flags []Flag
	// LogRequests sends a RequestRecord of each of the app's proxied
	// requests to RequestLog.
	LogRequests bool
}

// Group is the second release of a split route (Route.Canary).
//
// Each group balances its requests among its own backends as an unsplit
// route does, and a request that fails before any answer is retried only
// inside the group of its release. While a split is active every client
// has a bucket 0..99 in the BucketCookie cookie, which the router sets on
// the first response and strips from requests before they reach the app;
// a request goes to the canary when its bucket < Weight. Clients without
// the cookie get a random bucket, so they are split by weight too.
// Weights that only grow move a client in bucket b to the canary once
// Weight passes b, and never back unless the split is aborted (the Canary
// removed or its Weight lowered). Weight 0 sends no request to the canary
// (but buckets are assigned); Weight 100 sends all of them.
//
// Set rejects a Canary without backends, with a backend also in
// Route.Backends, with a Weight outside 0..100, with the same Release as
// the route, or on a route without Backends.
type Group struct {
	Release  string
	Backends []*Backend
	Weight   int // percent of requests, 0..100
}

// Router is an http.Handler that proxies each request to a backend of the
// app that serves the request's host. Its methods are safe for concurrent use.
type Router struct {
	table atomic.Pointer[table]
	mu    sync.Mutex // serializes Set and Remove (writers); readers never lock

	logger     *slog.Logger
	transport  http.RoundTripper
	errorLog   *log.Logger // ReverseProxy's own messages, into slog
	bufferPool *bufferPool
	retryAfter string

	wakeTimeout time.Duration
	wakeMu      sync.Mutex
	waker       func(ctx context.Context, app string) error // guarded by wakeMu
	wakes       map[string]*wakeCall                        // app → wake running now; guarded by wakeMu

	recorders sync.Pool // of *recorder

	// shadows maps app → its shadow (shadow.go); nil when no app has one.
	shadows  atomic.Pointer[map[string]*shadow]
	shadowMu sync.Mutex // serializes SetShadow and StopShadow

	reqLog        chan RequestRecord // see RequestLog
	reqLogOn      atomic.Bool        // RequestLog was called: someone reads reqLog
	reqLogDropped atomic.Uint64

	wakeStats map[string]*wakeCounters // app → wakes; guarded by wakeMu
}

// table is one immutable version of the routing table.
type table struct {
	hosts map[string]*route // normalized host → route
	apps  map[string]*route // app name → route
}

// route is the immutable, ready-to-serve form of a Route.
type route struct {
	app    string
	hosts  []string
	stable *group // Route.Backends
	canary *group // Route.Canary; nil: no split
	weight int    // Route.Canary.Weight
	// backends are all routed backends: stable's, then canary's.
	backends []*Backend
	page503  []byte
	asleep   bool // Route.Asleep, and no backends
	hold     bool // Route.Hold, and no backends
	// holdTimeout is Route.HoldTimeout, defaulted.
	holdTimeout time.Duration
	// hstsMaxAge is Route.HSTSMaxAge; the proxies add its header, hsts
	// (HSTSValue, "" for none).
	hstsMaxAge time.Duration
	hsts       string
	// flags is Route.Flags; nil if none.
	flags *flagSet
	// appStats count every request of the app, whatever its release; Set
	// carries them over to the app's next route, so they never go back.
	appStats *releaseStats

	// asleepRequests counts requests that arrived while the app was asleep
	// or held. Set carries it over to the app's next route, so
	// Stats.Requests only moves when requests do.
	asleepRequests atomic.Uint64
	// replaced is closed when Set or Remove replaced this route in the
	// table: held requests wait on it.
	replaced chan struct{}
}

// group is the serving form of one release's backends in a route.
type group struct {
	release  string
	backends []*Backend
	proxies  []*httputil.ReverseProxy // proxies[i] sends to backends[i]
	next     atomic.Uint32            // round-robin counter
	stats    *releaseStats            // shared by the routes that route release
	appStats *releaseStats            // the route's appStats
	app      string
	logReqs  bool // Route.LogRequests
}

// has reports whether b is one of the route's backends.
func (rt *route) has(b *Backend) bool {
	for _, x := range rt.backends {
		if x == b {
			return true
		}
	}
	return false
}

// New returns a Router with an empty table: every host answers 404.
func New(opts Options) *Router {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	r := &Router{
		logger:     logger,
		transport:  opts.Transport,
		errorLog:   slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		bufferPool: &bufferPool{},
	}
	if r.transport == nil {
		r.transport = newTransport(opts)
	}
	retryAfter := opts.RetryAfter
	if retryAfter <= 0 {
		retryAfter = DefaultRetryAfter
	}
	r.retryAfter = strconv.Itoa(int((retryAfter + time.Second - 1) / time.Second))
	r.wakeTimeout = opts.WakeTimeout
	if r.wakeTimeout <= 0 {
		r.wakeTimeout = DefaultWakeTimeout
	}
	r.wakes = map[string]*wakeCall{}
	r.wakeStats = map[string]*wakeCounters{}
	n := opts.RequestLogBuffer
	if n <= 0 {
		n = DefaultRequestLogBuffer
	}
	r.reqLog = make(chan RequestRecord, n)
	r.table.Store(&table{hosts: map[string]*route{}, apps: map[string]*route{}})
	return r
}

// CloseIdleConnections closes the idle keep-alive connections to backends,
// if the transport supports it.
func (r *Router) CloseIdleConnections() {
	if t, ok := r.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// Retire drains b (see Backend.Drain) and then closes the router's idle
// keep-alive connections to b's address. Call it for a backend that left
// every route: it gets no new request, so those connections would only
// hold sockets (the daemon's file descriptors, the old container's
// connections) until the idle sweep, one more per deploy.
func (r *Router) Retire(ctx context.Context, b *Backend) error {
	err := b.Drain(ctx)
	if t, ok := r.transport.(interface{ closeIdleTo(addr string) }); ok {
		t.closeIdleTo(b.Addr())
	}
	return err
}

// Set installs or replaces the route for route.App and returns the backends
// the app had before (of both groups), so the caller can drain them. Hosts
// are normalized. If a host belongs to another app, Set returns an error
// wrapping ErrHostTaken and changes nothing.
//
// The returned backends may include some that are also in the new route
// (when the caller kept them); drain only those that are no longer routed.
// A release routed before and after (in either group) keeps its counters.
func (r *Router) Set(in Route) (previous []*Backend, err error) {
	if in.App == "" {
		return nil, fmt.Errorf("%w: empty app name", ErrInvalidRoute)
	}
	hosts := make([]string, 0, len(in.Hosts))
	for _, h := range in.Hosts {
		n := normalizeHost(h)
		if n == "" {
			return nil, fmt.Errorf("%w: app %s: empty host name %q", ErrInvalidRoute, in.App, h)
		}
		if !slices.Contains(hosts, n) {
			hosts = append(hosts, n)
		}
	}
	if err := validateBackends(in); err != nil {
		return nil, err
	}
	flags, err := newFlagSet(in.App, in.Flags)
	if err != nil {
		return nil, err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.table.Load()
	for _, h := range hosts {
		if other, ok := old.hosts[h]; ok && other.app != in.App {
			return nil, fmt.Errorf("%w: %s is served by app %s", ErrHostTaken, h, other.app)
		}
	}
	prev := old.apps[in.App]
	nr := r.newRoute(in, hosts, prev)
	nr.flags = flags
	t := &table{
		hosts: make(map[string]*route, len(old.hosts)+len(hosts)),
		apps:  make(map[string]*route, len(old.apps)+1),
	}
	for h, rt := range old.hosts {
		if rt.app != in.App {
			t.hosts[h] = rt
		}
	}
	for a, rt := range old.apps {
		if a != in.App {
			t.apps[a] = rt
		}
	}
	for _, h := range hosts {
		t.hosts[h] = nr
	}
	t.apps[in.App] = nr
	if prev != nil {
		// Requests still counted on prev after this load are lost: they
		// raced with the swap and count as activity of the backends anyway.
		nr.asleepRequests.Store(prev.asleepRequests.Load())
	}
	r.table.Store(t)

	if prev != nil {
		close(prev.replaced) // after the store: held requests see the new route
		previous = slices.Clone(prev.backends)
	}
	return previous, nil
}

// validateBackends checks in's backends and split.
func validateBackends(in Route) error {
	for _, b := range in.Backends {
		if b == nil {
			return fmt.Errorf("%w: app %s: nil backend", ErrInvalidRoute, in.App)
		}
	}
	if in.HoldTimeout < 0 {
		return fmt.Errorf("%w: app %s: negative hold timeout %v", ErrInvalidRoute, in.App, in.HoldTimeout)
	}
	c := in.Canary
	if c == nil {
		return nil
	}
	switch {
	case c.Weight < 0 || c.Weight > 100:
		return fmt.Errorf("%w: app %s: canary weight %d is not a percentage (0..100)", ErrInvalidRoute, in.App, c.Weight)
	case len(in.Backends) == 0:
		return fmt.Errorf("%w: app %s: a canary needs stable backends beside it; route the canary release alone instead", ErrInvalidRoute, in.App)
	case len(c.Backends) == 0:
		return fmt.Errorf("%w: app %s: canary release %q has no backend", ErrInvalidRoute, in.App, c.Release)
	case c.Release == in.Release:
		return fmt.Errorf("%w: app %s: canary and stable have the same release label %q", ErrInvalidRoute, in.App, c.Release)
	}
	for _, b := range c.Backends {
		if b == nil {
			return fmt.Errorf("%w: app %s: nil canary backend", ErrInvalidRoute, in.App)
		}
		if slices.Contains(in.Backends, b) {
			return fmt.Errorf("%w: app %s: backend %s is in both the stable and the canary group", ErrInvalidRoute, in.App, b.Addr())
		}
	}
	return nil
}

// Remove deletes app's route (its hosts answer 404 from now on) and returns
// the backends it had, so the caller can drain them.
func (r *Router) Remove(app string) (previous []*Backend) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.table.Load()
	prev, ok := old.apps[app]
	if !ok {
		return nil
	}
	t := &table{
		hosts: make(map[string]*route, len(old.hosts)),
		apps:  make(map[string]*route, len(old.apps)),
	}
	for h, rt := range old.hosts {
		if rt.app != app {
			t.hosts[h] = rt
		}
	}
	for a, rt := range old.apps {
		if a != app {
			t.apps[a] = rt
		}
	}
	r.table.Store(t)
	close(prev.replaced)
	_, _ = r.StopShadow(app) // a removed app mirrors nothing; ErrNoShadow if it had none
	return slices.Clone(prev.backends)
}

// Lookup returns a copy of the route serving host (normalized like a
// request's Host header, so a port is ignored).
func (r *Router) Lookup(host string) (Route, bool) {
	rt, ok := r.table.Load().hosts[normalizeHost(host)]
	if !ok {
		return Route{}, false
	}
	out := Route{App: rt.app, Hosts: slices.Clone(rt.hosts), Backends: slices.Clone(rt.stable.backends),
		Asleep: rt.asleep, HSTSMaxAge: rt.hstsMaxAge, Release: rt.stable.release, Hold: rt.hold}
	if rt.hold {
		out.HoldTimeout = rt.holdTimeout
	}
	if c := rt.canary; c != nil {
		out.Canary = &Group{Release: c.release, Backends: slices.Clone(c.backends), Weight: rt.weight}
	}
	if rt.flags != nil {
		out.Flags = slices.Clone(rt.flags.flags)
	}
	return out, true
}

// ServeHTTP proxies req to a backend of the app serving req.Host.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !screen(w, req) {
		return
	}
	host := normalizeHost(req.Host)
	bucket := takeBucket(req)
	t := r.table.Load()
	rt := t.hosts[host]
	w = applyFlags(w, req, rt)
	if sh := r.shadowOf(rt); sh != nil && sh.wants(req) {
		r.serveShadowed(w, req, host, bucket, t, sh)
		return
	}
	r.serve(w, req, host, bucket, t)
}

// serve proxies req (for host, its bucket cookie taken: -1 if none) with
// table t.
func (r *Router) serve(w http.ResponseWriter, req *http.Request, host string, bucket int, t *table) {
	rt := t.hosts[host]
	if rt == nil {
		r.notFound(w, host)
		return
	}
	var cookie string
	if rt.canary != nil && bucket < 0 {
		bucket, cookie = newBucket(req)
	}
	rt, g, i := r.pickIn(t, host, selector{bucket: bucket}, nil)
	if rt == nil { // removed between our loads
		r.notFound(w, host)
		return
	}
	if i < 0 {
		switch {
		case rt.hold:
			r.serveHeld(w, req, rt, host, bucket)
		case rt.asleep:
			r.serveAsleep(w, req, rt, host, bucket)
		default:
			r.unavailable(w, rt)
		}
		return
	}
	r.proxy(w, req, g, i, cookie)
}

// proxy sends req to g.backends[i], which pick counted it on, and records
// it in the release's counters. A non-empty cookie is a Set-Cookie value
// for the response.
func (r *Router) proxy(w http.ResponseWriter, req *http.Request, g *group, i int, cookie string) {
	b := g.backends[i]
	defer b.release()
	rec := r.startRecording(w, g, cookie)
	if g.logReqs && r.reqLogOn.Load() {
		rec.backend, rec.method, rec.path, rec.client = b.addr, req.Method, req.URL.Path, req.RemoteAddr
	}
	defer r.endRecording(rec) // deferred: ReverseProxy may panic (ErrAbortHandler)
	if req.Body != nil && req.Body != http.NoBody {
		cb := newClientBody(req.Body, b, req.ContentLength)
		// The proxy's error handler gets the outgoing request, whose body
		// it wrapped: the context carries cb to it.
		req = req.WithContext(context.WithValue(req.Context(), clientBodyKey{}, cb))
		req.Body = cb
		defer cb.received() // before release: Load never counts it twice
	}
	g.proxies[i].ServeHTTP(rec, req)
}

// unavailable answers for an app that has no backend to send to.
func (r *Router) unavailable(w http.ResponseWriter, rt *route) {
	w.Header()["Retry-After"] = []string{r.retryAfter}
	writePage(w, http.StatusServiceUnavailable, rt.page503)
}

// selector says which group of a route a request goes to.
type selector struct {
	// bucket is the client's 0..99 (canary if < weight); -1: stable.
	bucket int
	// retry: the request failed on a backend of release; it goes to the
	// group of that release, or to stable if the release left the route.
	retry   bool
	release string
}

// choose returns the group of rt that sel selects.
func (rt *route) choose(sel selector) *group {
	c := rt.canary
	if c == nil {
		return rt.stable
	}
	if sel.retry {
		if c.release == sel.release {
			return c
		}
		return rt.stable
	}
	if sel.bucket >= 0 && sel.bucket < rt.weight {
		return c
	}
	return rt.stable
}

// pick chooses a backend for host with the current table; see pickIn.
func (r *Router) pick(host string, sel selector, skip []*Backend) (rt *route, g *group, i int) {
	return r.pickIn(r.table.Load(), host, sel, skip)
}

// pickIn chooses a backend for host from table t (or a newer one), in the
// group sel selects, other than those in skip, and counts the request in
// flight on it. It returns a nil route for an unknown host and i < 0 for an
// app without (other) backends in that group; otherwise the caller must call
// g.backends[i].release().
//
// With several backends it takes the one with the fewest requests in
// flight, starting from a round-robin position so that equals take turns,
// and passes over backends marked down unless all are.
//
// The drain race, and why this is enough to close it. A deploy does
//
//	prev := Set(new route)   // S: table store
//	prev[k].Drain(ctx)       // D: load of prev[k]'s in-flight count
//	stop prev[k]
//
// and a request does
//
//	t := table load; pick b from t   // L1
//	b.started.Add(1)                 // I
//	table load again                 // L2
//
// A request that loaded the old table at L1 may be descheduled before I,
// so Drain could see zero and the container be stopped before the request
// is sent. Hence the second load L2 after I: Go's atomic operations are
// sequentially consistent and S happens before D (Drain's load of started,
// which follows its load of finished). Either I comes before D
// in that order, and Drain sees the request counted; or D comes before I,
// and then S < D < I < L2, so L2 observes the table stored at S (or a later
// one). In that case we go on only if the table seen at L2 still routes
// host to b (in either group); otherwise we release b and start over with
// the newer table. So once the caller can observe zero on a backend that
// Set removed, no request can still be on its way to it. (A table that
// routes host to b again later would be a caller error: re-adding a
// backend being drained.)
//
// The common case is one extra atomic load that finds the same pointer.
// The re-check applies to every choice, including retries (skip non-empty).
func (r *Router) pickIn(t *table, host string, sel selector, skip []*Backend) (rt *route, g *group, i int) {
	for {
		rt = t.hosts[host]
		if rt == nil {
			return nil, nil, -1
		}
		g = rt.choose(sel)
		switch len(g.backends) {
		case 0:
			return rt, g, -1
		case 1:
			i = 0
			if len(skip) > 0 && slices.Contains(skip, g.backends[0]) {
				return rt, g, -1
			}
		default:
			if i = g.leastLoaded(skip); i < 0 {
				return rt, g, -1
			}
		}
		b := g.backends[i]
		if testHookPicked != nil {
			testHookPicked()
		}
		b.acquire()
		cur := r.table.Load()
		if cur == t {
			return rt, g, i
		}
		// The table changed between our load and the increment.
		if nrt := cur.hosts[host]; nrt != nil && nrt.has(b) {
			return rt, g, i // b is still routed by the current table; proceed
		}
		b.release()
		t = cur
	}
}

// downPenalty is added to the load of a backend marked down, so that any
// backend that is up wins over it.
const downPenalty = int64(1) << 40

// leastLoaded returns the index of the backend not in skip with the fewest
// requests in flight, preferring backends that are not marked down; ties go
// to the first from a round-robin start. It returns -1 if skip has them all.
func (g *group) leastLoaded(skip []*Backend) int {
	n := len(g.backends)
	j := int(g.next.Add(1) % uint32(n))
	best, bestLoad := -1, int64(0)
	var now int64
	for range n {
		b := g.backends[j]
		if len(skip) == 0 || !slices.Contains(skip, b) {
			load := b.InFlight()
			if b.down(&now) {
				load += downPenalty
			}
			if best < 0 || load < bestLoad {
				best, bestLoad = j, load
			}
		}
		if j++; j == n {
			j = 0
		}
	}
	return best
}

// testHookPicked, when set by a test, runs between choosing a backend and
// counting the request on it: the window the re-check in pick covers.
var testHookPicked func()

func (r *Router) notFound(w http.ResponseWriter, host string) {
	if host == "" {
		host = "(no Host header)"
	}
	writePage(w, http.StatusNotFound, []byte("404 not found: no app is served at "+host+"\n"))
}

// writePage writes a small plain-text error page. Plain text, so host names
// and app names from requests cannot inject markup.
func writePage(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// normalizeHost turns a Host header or a configured host name into a table
// key: port dropped, lower case, trailing dot removed. It does not allocate
// unless the name has upper-case letters.
func normalizeHost(h string) string {
	if strings.HasPrefix(h, "[") { // IPv6 literal, maybe with a port
		if j := strings.IndexByte(h, ']'); j > 0 {
			h = h[:j+1]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i] // exactly one colon: host:port
	}
	h = strings.TrimSuffix(h, ".")
	return strings.ToLower(h)
}
