package router

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plat-paas/plat/internal/latency"
)

// Shadow traffic: a copy of an app's live requests goes to another release
// (one that runs but is not routed, e.g. a staged one), whose answers are
// compared with the live ones and discarded. The live request never waits
// for the shadow: a copy is queued after the live answer is complete, into a
// bounded queue served by a few workers, and dropped (counted) when the
// queue is full.
const (
	// ShadowHeader marks mirrored requests, so an app can skip side
	// effects. A client-sent one is removed from live requests.
	ShadowHeader = "Plat-Shadow"
	// MaxShadowBody is the largest request body copied to the shadow;
	// requests with larger bodies are not mirrored (ShadowStats.TooLarge).
	MaxShadowBody = 1 << 20
	// DefaultShadowWorkers send mirrored requests concurrently.
	DefaultShadowWorkers = 8
	// DefaultShadowQueue bounds the mirrored requests waiting for a worker.
	DefaultShadowQueue = 256
	// DefaultShadowTimeout bounds one mirrored request.
	DefaultShadowTimeout = 10 * time.Second
	// maxShadowDiscard is how much of a shadow answer's body is read (to
	// reuse the connection) before it is closed.
	maxShadowDiscard = 1 << 20
)

// DefaultShadowMethods are mirrored when ShadowConfig.Methods is empty: the
// safe ones, which should have no side effects.
var DefaultShadowMethods = []string{http.MethodGet, http.MethodHead}

// ErrNoShadow: the app has no shadow.
var ErrNoShadow = errors.New("no shadow")

// ShadowConfig says where and what to mirror.
type ShadowConfig struct {
	Release string   // the shadow release's label, e.g. "v8"
	Addrs   []string // its replicas (host:port), taken in turn
	Percent int      // of eligible live requests to mirror, 1..100; 0 → 100
	Methods []string // methods to mirror; empty → DefaultShadowMethods
	Workers int      // 0 → DefaultShadowWorkers
	Queue   int      // 0 → DefaultShadowQueue
	Timeout time.Duration
}

// ShadowStats compare a shadow's answers with the live ones.
type ShadowStats struct {
	Release string
	Addrs   []string
	Percent int
	Methods []string
	Started time.Time

	Mirrored uint64 // copies sent to the shadow (answered or not)
	Dropped  uint64 // copies dropped because the queue was full
	// TooLarge counts requests not mirrored because their body was over
	// MaxShadowBody (or was not read whole by the live app).
	TooLarge uint64
	// Errors counts copies the shadow did not answer (refused, timeout).
	Errors uint64
	// Match and Mismatch count answered copies whose status class was the
	// same as, or different from, the live answer's. Pairs counts each
	// (live, shadow) pair of classes, e.g. "2xx→5xx".
	Match, Mismatch uint64
	Pairs           map[string]uint64
	// Live is the latency of the mirrored requests' live answers, Shadow
	// that of the shadow's answers.
	Live, Shadow latency.Snapshot
}

// shadow is one app's running shadow.
type shadow struct {
	cfg     ShadowConfig
	started time.Time
	queue   chan *shadowJob
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	client  *http.Client
	next    atomic.Uint32

	mirrored, dropped, tooLarge, errors atomic.Uint64
	pairs                               [6][6]atomic.Uint64 // [live class][shadow class]
	live, shadowLat                     latency.Histogram
}

// shadowJob is one mirrored request, ready to send.
type shadowJob struct {
	method, uri, host string
	header            http.Header
	body              []byte
	liveStatus        int
	liveLatency       time.Duration
}

// SetShadow starts mirroring app's live requests to cfg's replicas,
// replacing the app's shadow if it had one.
func (r *Router) SetShadow(app string, cfg ShadowConfig) error {
	if len(cfg.Addrs) == 0 {
		return fmt.Errorf("%w: app %s: shadow release %q has no replica", ErrInvalidRoute, app, cfg.Release)
	}
	if cfg.Percent == 0 {
		cfg.Percent = 100
	}
	if cfg.Percent < 1 || cfg.Percent > 100 {
		return fmt.Errorf("%w: app %s: shadow percent %d: give 1 to 100", ErrInvalidRoute, app, cfg.Percent)
	}
	if len(cfg.Methods) == 0 {
		cfg.Methods = DefaultShadowMethods
	}
	cfg.Methods = slices.Clone(cfg.Methods)
	for i, m := range cfg.Methods {
		cfg.Methods[i] = strings.ToUpper(m)
	}
	cfg.Addrs = slices.Clone(cfg.Addrs)
	cfg.Workers = cmpOr(cfg.Workers, DefaultShadowWorkers)
	cfg.Queue = cmpOr(cfg.Queue, DefaultShadowQueue)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultShadowTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	sh := &shadow{
		cfg: cfg, started: time.Now(), queue: make(chan *shadowJob, cfg.Queue), ctx: ctx, cancel: cancel,
		client: &http.Client{
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: DefaultDialTimeout}).DialContext,
				MaxIdleConnsPerHost: cfg.Workers,
				IdleConnTimeout:     DefaultIdleConnTimeout,
				DisableCompression:  true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for range cfg.Workers {
		sh.wg.Go(sh.work)
	}
	r.shadowMu.Lock()
	defer r.shadowMu.Unlock()
	next := map[string]*shadow{}
	if m := r.shadows.Load(); m != nil {
		next = maps.Clone(*m)
	}
	old := next[app]
	next[app] = sh
	r.shadows.Store(&next)
	if old != nil {
		old.close()
	}
	r.logger.Info("router: shadow started", "app", app, "release", cfg.Release, "addrs", cfg.Addrs,
		"percent", cfg.Percent, "methods", cfg.Methods)
	return nil
}

// StopShadow stops app's shadow and returns its final stats; ErrNoShadow if
// it had none. Mirrored requests in flight are cancelled.
func (r *Router) StopShadow(app string) (ShadowStats, error) {
	r.shadowMu.Lock()
	defer r.shadowMu.Unlock()
	m := r.shadows.Load()
	if m == nil || (*m)[app] == nil {
		return ShadowStats{}, fmt.Errorf("app %s: %w", app, ErrNoShadow)
	}
	sh := (*m)[app]
	next := maps.Clone(*m)
	delete(next, app)
	if len(next) == 0 {
		r.shadows.Store(nil)
	} else {
		r.shadows.Store(&next)
	}
	sh.close()
	return sh.stats(), nil
}

// Shadow returns the stats of app's shadow; false if it has none.
func (r *Router) Shadow(app string) (ShadowStats, bool) {
	m := r.shadows.Load()
	if m == nil || (*m)[app] == nil {
		return ShadowStats{}, false
	}
	return (*m)[app].stats(), true
}

// shadowOf returns rt's app's shadow, nil if none: one atomic load when no
// app has a shadow.
func (r *Router) shadowOf(rt *route) *shadow {
	m := r.shadows.Load()
	if m == nil || rt == nil {
		return nil
	}
	return (*m)[rt.app]
}

// wants reports whether req is to be mirrored.
func (sh *shadow) wants(req *http.Request) bool {
	if !slices.Contains(sh.cfg.Methods, req.Method) || req.Header["Upgrade"] != nil {
		return false
	}
	return sh.cfg.Percent >= 100 || rand.IntN(100) < sh.cfg.Percent
}

// serveShadowed serves req live as serve does, then queues a copy of it
// with the live answer's status and latency for the shadow.
func (r *Router) serveShadowed(w http.ResponseWriter, req *http.Request, host string, bucket int, t *table, sh *shadow) {
	start := time.Now()
	job := &shadowJob{method: req.Method, uri: req.URL.RequestURI(), host: req.Host, header: req.Header.Clone()}
	var tee *teeBody
	if req.Body != nil && req.Body != http.NoBody {
		if req.ContentLength > MaxShadowBody {
			sh.tooLarge.Add(1)
			r.serve(w, req, host, bucket, t)
			return
		}
		tee = &teeBody{ReadCloser: req.Body}
		req.Body = tee
	}
	sw := &statusWriter{ResponseWriter: w}
	r.serve(sw, req, host, bucket, t)
	if sw.status < 200 { // no answer (client gone) or an upgrade: nothing to compare
		return
	}
	if tee != nil {
		body, ok := tee.whole()
		if !ok {
			sh.tooLarge.Add(1)
			return
		}
		job.body = body
	}
	job.liveStatus, job.liveLatency = sw.status, time.Since(start)
	select {
	case sh.queue <- job:
	default:
		sh.dropped.Add(1)
	}
}

func (sh *shadow) work() {
	for {
		select {
		case <-sh.ctx.Done():
			return
		case j := <-sh.queue:
			sh.send(j)
		}
	}
}

// hopHeaders are not forwarded to the shadow: they describe the client's
// connection, not the request.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// send sends j to the next shadow replica and records the comparison.
func (sh *shadow) send(j *shadowJob) {
	addr := sh.cfg.Addrs[int(sh.next.Add(1))%len(sh.cfg.Addrs)]
	ctx, cancel := context.WithTimeout(sh.ctx, sh.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, j.method, "http://"+addr+j.uri, bytes.NewReader(j.body))
	if err != nil {
		sh.errors.Add(1)
		return
	}
	for _, h := range hopHeaders {
		delete(j.header, h)
	}
	req.Header = j.header
	req.Header[ShadowHeader] = []string{"1"}
	req.Host = j.host
	req.ContentLength = int64(len(j.body))
	if len(j.body) == 0 {
		req.Body = http.NoBody
	}
	sh.mirrored.Add(1)
	start := time.Now()
	resp, err := sh.client.Do(req)
	if err != nil {
		if sh.ctx.Err() == nil {
			sh.errors.Add(1)
		}
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxShadowDiscard))
	_ = resp.Body.Close()
	sh.shadowLat.Record(time.Since(start))
	sh.live.Record(j.liveLatency)
	sh.pairs[min(j.liveStatus/100, 5)][min(resp.StatusCode/100, 5)].Add(1)
}

// close stops the workers and cancels the requests in flight.
func (sh *shadow) close() {
	sh.cancel()
	sh.wg.Wait()
	sh.client.CloseIdleConnections()
}

func (sh *shadow) stats() ShadowStats {
	st := ShadowStats{
		Release: sh.cfg.Release, Addrs: slices.Clone(sh.cfg.Addrs), Percent: sh.cfg.Percent,
		Methods: slices.Clone(sh.cfg.Methods), Started: sh.started,
		Mirrored: sh.mirrored.Load(), Dropped: sh.dropped.Load(), TooLarge: sh.tooLarge.Load(), Errors: sh.errors.Load(),
		Pairs: map[string]uint64{}, Live: sh.live.Snapshot(), Shadow: sh.shadowLat.Snapshot(),
	}
	for l := 1; l <= 5; l++ {
		for s := 1; s <= 5; s++ {
			n := sh.pairs[l][s].Load()
			if n == 0 {
				continue
			}
			if l == s {
				st.Match += n
			} else {
				st.Mismatch += n
			}
			st.Pairs[fmt.Sprintf("%dxx→%dxx", l, s)] = n
		}
	}
	return st
}

// teeBody copies what the live request's body yields, up to MaxShadowBody,
// as the live proxy reads it: the live request streams as before. The
// transport may still be reading it (in its own goroutine) when the live
// answer is complete, hence the lock around the copy, never around a Read.
type teeBody struct {
	io.ReadCloser
	mu    sync.Mutex
	buf   []byte
	over  bool // more than MaxShadowBody: buf dropped
	eof   bool // read to the end
	taken bool // whole: the copy belongs to the shadow now
}

func (tb *teeBody) Read(p []byte) (int, error) {
	n, err := tb.ReadCloser.Read(p)
	tb.mu.Lock()
	if n > 0 && !tb.over && !tb.taken {
		if len(tb.buf)+n > MaxShadowBody {
			tb.over, tb.buf = true, nil
		} else {
			tb.buf = append(tb.buf, p[:n]...)
		}
	}
	if err == io.EOF {
		tb.eof = true
	}
	tb.mu.Unlock()
	return n, err
}

// whole returns the body if it was read to the end and fits.
func (tb *teeBody) whole() ([]byte, bool) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if !tb.eof || tb.over {
		return nil, false
	}
	tb.taken = true
	return tb.buf, true
}

// statusWriter notes the final status of the live answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 && code >= 200 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(p []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return sw.ResponseWriter.Write(p)
}

func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// Hijack hands over an upgrade's connection: nothing to compare then.
func (sw *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	sw.status = http.StatusSwitchingProtocols
	return http.NewResponseController(sw.ResponseWriter).Hijack()
}

func cmpOr(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}
