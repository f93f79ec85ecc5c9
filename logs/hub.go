// Package logs fans an app's container output out to many viewers: one
// engine log follower per replica of the app, however many browsers and
// `plat logs -f` clients watch it. It keeps the last lines for newcomers,
// follows the active release's replicas across deploys, scaling and sleep,
// and lets a viewer that reconnects with the time of the last line it saw
// resume without gaps or duplicates (within what the hub and the engine
// keep).
//
// Several replicas write into one feed. The feed's times only grow: a line
// that arrives after a later-stamped line of another replica is stamped
// just after it (a shift of the followers' skew, milliseconds). So a time
// is a position in the feed, and resuming after it is exact.
package logs

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Defaults for Options fields left at zero.
const (
	DefaultBacklog      = 1000            // lines kept per app
	DefaultViewerBuffer = 256             // lines queued per viewer before it counts as slow
	DefaultRetry        = 1 * time.Second // wait before following again after a follow ended
	followAll           = -1              // engine tail value: every line
)

// Container is one running replica of an app.
type Container struct {
	ID    string
	Label string // e.g. "web.1", shown before its lines when an app has several
}

// Source is where the hub reads logs: the active release's containers of
// an app (none while it sleeps) and their timestamped output
// (engine.Engine.TimedLogs).
type Source interface {
	ActiveContainers(app string) ([]Container, error)
	TimedLogs(ctx context.Context, id string, since time.Time, tail int, follow bool, w io.Writer) error
}

// Line is one line of an app's output with the engine's timestamp (see the
// package comment) and the replica that wrote it.
type Line struct {
	Time    time.Time `json:"time"`
	Text    string    `json:"text"`
	Replica string    `json:"replica,omitempty"`
	// Source is SourceRouter for the router's request lines, "" for the
	// app's own output.
	Source string `json:"source,omitempty"`
}

// Sources of lines, as `plat logs --source` names them.
const (
	SourceApp    = "app"
	SourceRouter = "router"
)

// DefaultRouterBacklog is how many router lines the hub keeps per app
// while nobody watches it (app lines are kept by the engine).
const DefaultRouterBacklog = 500

// Format is l as a text line (without newline); with multi (the app runs
// several replicas) the replica's label comes first: "web.2 | listening".
// Router lines always start with "router | ".
func (l Line) Format(multi bool) string {
	if l.Source == SourceRouter {
		return SourceRouter + " | " + l.Text
	}
	if multi && l.Replica != "" {
		return l.Replica + " | " + l.Text
	}
	return l.Text
}

// Options tune a Hub; zero fields take the defaults above.
type Options struct {
	Backlog      int
	ViewerBuffer int
	Retry        time.Duration
	Logger       *slog.Logger
}

// Hub owns the per-app followers.
type Hub struct {
	src  Source
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	feeds map[string]*feed
	// routerLines are each app's last DefaultRouterBacklog router lines,
	// kept whether or not anybody watches.
	routerLines map[string][]Line

	closed    chan struct{} // closed by Close: streams end
	closeOnce sync.Once
}

// Close ends every Stream (the daemon is shutting down: a follower would
// otherwise hold its HTTP response open until the shutdown times out).
func (h *Hub) Close() {
	h.closeOnce.Do(func() { close(h.closed) })
}

// Done is closed when the hub is closed: other long streams end with it.
func (h *Hub) Done() <-chan struct{} { return h.closed }

// NewHub returns a hub reading from src.
func NewHub(src Source, opts Options) *Hub {
	if opts.Backlog <= 0 {
		opts.Backlog = DefaultBacklog
	}
	if opts.ViewerBuffer <= 0 {
		opts.ViewerBuffer = DefaultViewerBuffer
	}
	if opts.Retry <= 0 {
		opts.Retry = DefaultRetry
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Hub{src: src, opts: opts, log: log, feeds: map[string]*feed{}, routerLines: map[string][]Line{}, closed: make(chan struct{})}
}

// feed is one app's followers, its recent lines and its viewers. All
// fields but the channels are guarded by Hub.mu.
type feed struct {
	app     string
	lines   []Line    // the last Backlog lines, in arrival order
	last    time.Time // of the last line added; feed times only grow
	viewers map[*Viewer]struct{}
	refs    int // viewers plus subscribers waiting for ready
	ready   chan struct{}
	switch_ chan []Container // new set of active containers, latest wins
	cancel  context.CancelFunc
	loaded  bool // the backlog is in lines: router lines go straight in
}

// Viewer receives an app's lines on C until it closes the viewer, or until
// the hub closes C because the viewer fell behind (then Dropped is true).
type Viewer struct {
	C       <-chan Line
	c       chan Line
	hub     *Hub
	feed    *feed
	dropped bool // guarded by Hub.mu
	closed  bool // guarded by Hub.mu
}

// Dropped reports whether C was closed because the viewer was too slow.
func (v *Viewer) Dropped() bool {
	v.hub.mu.Lock()
	defer v.hub.mu.Unlock()
	return v.dropped
}

// Close stops the viewer; the app's follower stops with its last viewer.
func (v *Viewer) Close() {
	h := v.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	if _, ok := v.feed.viewers[v]; ok {
		delete(v.feed.viewers, v)
		close(v.c)
	}
	h.release(v.feed)
}

// release drops one reference to f; the caller holds h.mu.
func (h *Hub) release(f *feed) {
	f.refs--
	if f.refs == 0 {
		f.cancel()
		if h.feeds[f.app] == f {
			delete(h.feeds, f.app)
		}
	}
}

// Subscribe starts watching app. It returns the recent lines first: those
// after since when since is not zero, else the last tail lines (tail < 0:
// all kept). Every later line arrives on the viewer's C exactly once.
func (h *Hub) Subscribe(ctx context.Context, app string, since time.Time, tail int) ([]Line, *Viewer, error) {
	return h.subscribe(ctx, app, "", since, tail)
}

// subscribe is Subscribe with the recent lines of source only ("": all).
func (h *Hub) subscribe(ctx context.Context, app, source string, since time.Time, tail int) ([]Line, *Viewer, error) {
	h.mu.Lock()
	f := h.feeds[app]
	if f == nil {
		fctx, cancel := context.WithCancel(context.Background())
		f = &feed{app: app, viewers: map[*Viewer]struct{}{}, ready: make(chan struct{}), switch_: make(chan []Container, 1), cancel: cancel}
		h.feeds[app] = f
		go h.follow(fctx, f)
	}
	f.refs++
	h.mu.Unlock()

	select {
	case <-f.ready:
	case <-ctx.Done():
		h.mu.Lock()
		h.release(f)
		h.mu.Unlock()
		return nil, nil, ctx.Err()
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	c := make(chan Line, h.opts.ViewerBuffer)
	v := &Viewer{C: c, c: c, hub: h, feed: f}
	f.viewers[v] = struct{}{}
	return backlog(f.lines, source, since, tail), v, nil
}

// IsSource reports whether l comes from source: SourceApp, SourceRouter,
// or "" for any.
func (l Line) IsSource(source string) bool {
	switch source {
	case "":
		return true
	case SourceApp:
		return l.Source == ""
	}
	return l.Source == source
}

func backlog(lines []Line, source string, since time.Time, tail int) []Line {
	if source != "" {
		var kept []Line
		for _, l := range lines {
			if l.IsSource(source) {
				kept = append(kept, l)
			}
		}
		lines = kept
	}
	if !since.IsZero() {
		var out []Line
		for _, l := range lines {
			if l.Time.After(since) {
				out = append(out, l)
			}
		}
		return out
	}
	if tail >= 0 && tail < len(lines) {
		lines = lines[len(lines)-tail:]
	}
	return append([]Line(nil), lines...)
}

// Switch tells the hub that app's active containers are now containers (a
// deploy flipped, the app scaled, slept or woke); its followers move to the
// new set at once: a new container is followed from the last line shown, a
// removed one is no longer followed. With none (asleep) viewers stay
// connected and see lines again after the next Switch.
func (h *Hub) Switch(app string, containers []Container) {
	h.mu.Lock()
	f := h.feeds[app]
	h.mu.Unlock()
	if f == nil {
		return // nobody watches; the next follower asks for the active containers
	}
	containers = slices.Clone(containers)
	for {
		select {
		case f.switch_ <- containers:
			return
		default:
			select { // replace an older, unread switch
			case <-f.switch_:
			default:
			}
		}
	}
}

// RouterLine is one of the router's request lines for an app.
type RouterLine struct {
	App  string
	Time time.Time
	Text string
}

// AddRouterLine adds one of the router's request lines to app's feed: its
// viewers see it at once, and the hub keeps the app's last
// DefaultRouterBacklog router lines for later viewers.
func (h *Hub) AddRouterLine(app string, t time.Time, text string) {
	h.AddRouterLines([]RouterLine{{App: app, Time: t, Text: text}})
}

// AddRouterLines is AddRouterLine for a batch, under one lock.
func (h *Hub) AddRouterLines(lines []RouterLine) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, rl := range lines {
		l := Line{Time: rl.Time, Text: rl.Text, Source: SourceRouter}
		kept := append(h.routerLines[rl.App], l)
		// Trimmed in batches, not per line: a busy app's lines cost O(1) each.
		if n := len(kept); n >= 2*DefaultRouterBacklog {
			kept = append(make([]Line, 0, 2*DefaultRouterBacklog), kept[n-DefaultRouterBacklog:]...)
		}
		h.routerLines[rl.App] = kept
		if f := h.feeds[rl.App]; f != nil && f.loaded {
			h.add(f, l)
		}
	}
}

// keptRouterLines returns app's last DefaultRouterBacklog router lines;
// the caller holds h.mu.
func (h *Hub) keptRouterLines(app string) []Line {
	kept := h.routerLines[app]
	if n := len(kept); n > DefaultRouterBacklog {
		kept = kept[n-DefaultRouterBacklog:]
	}
	return kept
}

// Forget drops the router lines kept for app (it was destroyed).
func (h *Hub) Forget(app string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.routerLines, app)
}

// Stream sends app's lines to send: the recent ones (see Subscribe), then,
// with follow, every new line until ctx ends or send fails. A viewer that
// falls behind is re-subscribed from its last line, so a slow client skips
// nothing the hub still keeps and never holds up the others.
func (h *Hub) Stream(ctx context.Context, app string, since time.Time, tail int, follow bool, send func(Line) error) error {
	return h.StreamSource(ctx, app, "", since, tail, follow, send)
}

// StreamSource is Stream of the lines of one source only (SourceApp,
// SourceRouter; "" for all); tail counts lines of that source.
func (h *Hub) StreamSource(ctx context.Context, app, source string, since time.Time, tail int, follow bool, send func(Line) error) error {
	if source != "" {
		all := send
		send = func(l Line) error {
			if !l.IsSource(source) {
				return nil
			}
			return all(l)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-h.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		lines, v, err := h.subscribe(ctx, app, source, since, tail)
		if err != nil {
			return err
		}
		for _, l := range lines {
			if err := send(l); err != nil {
				v.Close()
				return err
			}
			since = l.Time
		}
		if !follow {
			v.Close()
			return nil
		}
		err = h.drain(ctx, v, send, &since)
		v.Close()
		if err != nil || ctx.Err() != nil {
			return err
		}
		h.log.Debug("log viewer fell behind; resuming", "app", app, "since", since)
	}
}

// drain sends v's lines until ctx ends, send fails or v is dropped (nil).
func (h *Hub) drain(ctx context.Context, v *Viewer, send func(Line) error, since *time.Time) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case l, ok := <-v.C:
			if !ok {
				return nil
			}
			if err := send(l); err != nil {
				return err
			}
			*since = l.Time
		}
	}
}

// add records l and hands it to every viewer; a viewer whose buffer is
// full is dropped instead of waited for. The caller holds h.mu.
func (h *Hub) add(f *feed, l Line) {
	if !l.Time.After(f.last) {
		l.Time = f.last.Add(time.Nanosecond) // see the package comment
	}
	f.last = l.Time
	f.lines = append(f.lines, l)
	if n := len(f.lines); n > h.opts.Backlog {
		f.lines = f.lines[n-h.opts.Backlog:]
	}
	for v := range f.viewers {
		select {
		case v.c <- l:
		default:
			v.dropped = true
			delete(f.viewers, v)
			close(v.c)
		}
	}
}

// follower follows one container's output into its app's feed.
type follower struct {
	c      Container
	last   time.Time // engine time of its last line; owned by its goroutine while it runs
	cancel context.CancelFunc
	done   chan struct{} // closed when its goroutine returned
}

// follow runs one app's followers until ctx ends: it loads the backlog of
// the active containers, then follows each of them, reconciles the set on
// Switch, and follows a container again (from its last line) when its
// follow ended because it stopped or restarted.
func (h *Hub) follow(ctx context.Context, f *feed) {
	readyNow := sync.OnceFunc(func() { close(f.ready) })
	defer readyNow()
	running := map[string]*follower{}
	ended := make(chan *follower)
	defer func() {
		for _, fl := range running {
			if fl.cancel != nil {
				fl.cancel()
			}
			<-fl.done
		}
	}()

	initial, _ := h.src.ActiveContainers(f.app) // none yet: polled below
	followers := h.loadBacklog(ctx, f, initial)
	readyNow()
	for _, fl := range followers {
		h.start(ctx, f, fl, ended)
		running[fl.c.ID] = fl
	}

	var retry <-chan time.Time // set while a follow ended or none runs
	for ctx.Err() == nil {
		if retry == nil && (len(running) == 0 || anyStopped(running)) {
			retry = time.After(h.opts.Retry)
		}
		select {
		case <-ctx.Done():
		case cs := <-f.switch_:
			h.reconcile(ctx, f, running, cs, ended)
		case fl := <-ended:
			if running[fl.c.ID] == fl {
				fl.cancel()
				fl.cancel = nil // stopped: restarted by the next reconcile
			}
		case <-retry:
			retry = nil
			cs, err := h.src.ActiveContainers(f.app)
			if err != nil {
				cs = nil
				for _, fl := range running { // keep following what we had
					cs = append(cs, fl.c)
				}
			}
			h.reconcile(ctx, f, running, cs, ended)
		}
	}
}

func anyStopped(running map[string]*follower) bool {
	for _, fl := range running {
		if fl.cancel == nil {
			return true
		}
	}
	return false
}

// reconcile makes running follow exactly cs: it stops followers of
// containers not in cs, restarts stopped ones and starts new ones from the
// feed's last line (a new container's start-up lines that predate it are
// skipped so that times only grow and resuming stays exact).
func (h *Hub) reconcile(ctx context.Context, f *feed, running map[string]*follower, cs []Container, ended chan<- *follower) {
	want := map[string]Container{}
	for _, c := range cs {
		want[c.ID] = c
	}
	for id, fl := range running {
		if _, ok := want[id]; !ok {
			if fl.cancel != nil {
				fl.cancel()
				<-fl.done
			}
			delete(running, id)
		}
	}
	for _, c := range cs {
		fl := running[c.ID]
		if fl == nil {
			h.mu.Lock()
			since := f.last
			h.mu.Unlock()
			fl = &follower{c: c, last: since}
			running[c.ID] = fl
		}
		if fl.cancel == nil {
			fl.c = c
			h.start(ctx, f, fl, ended)
		}
	}
}

// start runs fl's follow in a goroutine that reports on ended when the
// engine's follow ends by itself.
func (h *Hub) start(ctx context.Context, f *feed, fl *follower, ended chan<- *follower) {
	fctx, cancel := context.WithCancel(ctx)
	fl.cancel, fl.done = cancel, make(chan struct{})
	since := fl.last
	if !since.IsZero() {
		since = since.Add(time.Nanosecond)
	}
	go func() {
		w := &lineParser{emit: func(l Line) { h.emit(f, fl, l) }}
		err := h.src.TimedLogs(fctx, fl.c.ID, since, followAll, true, w)
		w.flush()
		if err != nil && fctx.Err() == nil {
			h.log.Debug("log follow ended", "app", f.app, "container", shortID(fl.c.ID), "err", err)
		}
		close(fl.done)
		select {
		case ended <- fl:
		case <-fctx.Done():
		}
	}()
}

// emit adds a followed line to the feed unless the follower showed it
// already (the engine's since is not exact; never repeat a line).
func (h *Hub) emit(f *feed, fl *follower, l Line) {
	if !fl.last.IsZero() && !l.Time.After(fl.last) {
		return
	}
	fl.last = l.Time
	l.Replica = fl.c.Label
	h.mu.Lock()
	h.add(f, l)
	h.mu.Unlock()
}

// loadBacklog reads the last Backlog lines of each container, adds them
// to the feed in time order, and returns followers that go on from there.
func (h *Hub) loadBacklog(ctx context.Context, f *feed, cs []Container) []*follower {
	var (
		lines     []Line
		followers []*follower
	)
	for _, c := range cs {
		fl := &follower{c: c}
		w := &lineParser{emit: func(l Line) {
			l.Replica = c.Label
			lines = append(lines, l)
			fl.last = l.Time
		}}
		if err := h.src.TimedLogs(ctx, c.ID, time.Time{}, h.opts.Backlog, false, w); err != nil && ctx.Err() == nil {
			h.log.Warn("read log backlog", "app", f.app, "container", shortID(c.ID), "err", err)
		}
		w.flush()
		followers = append(followers, fl)
	}
	h.mu.Lock()
	lines = append(lines, h.keptRouterLines(f.app)...)
	slices.SortStableFunc(lines, func(a, b Line) int { return a.Time.Compare(b.Time) })
	if n := len(lines); n > h.opts.Backlog {
		lines = lines[n-h.opts.Backlog:]
	}
	for _, l := range lines {
		h.add(f, l)
	}
	f.loaded = true
	h.mu.Unlock()
	return followers
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
