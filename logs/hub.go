// Package logs fans an app's container output out to many viewers: one
// engine log follower per app, however many browsers and `plat logs -f`
// clients watch it. It keeps the last lines for newcomers, follows the
// active release's container across deploys, and lets a viewer that
// reconnects with the time of the last line it saw resume without gaps or
// duplicates (within what the hub and the engine keep).
package logs

import (
	"context"
	"io"
	"log/slog"
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

// Source is where the hub reads logs: the active container of an app and
// its timestamped output (engine.Engine.TimedLogs).
type Source interface {
	ActiveContainer(app string) (string, error)
	TimedLogs(ctx context.Context, id string, since time.Time, tail int, follow bool, w io.Writer) error
}

// Line is one line of an app's output with the engine's timestamp.
type Line struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
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

	closed    chan struct{} // closed by Close: streams end
	closeOnce sync.Once
}

// Close ends every Stream (the daemon is shutting down: a follower would
// otherwise hold its HTTP response open until the shutdown times out).
func (h *Hub) Close() {
	h.closeOnce.Do(func() { close(h.closed) })
}

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
	return &Hub{src: src, opts: opts, log: log, feeds: map[string]*feed{}, closed: make(chan struct{})}
}

// feed is one app's follower, its recent lines and its viewers. All fields
// but the channels are guarded by Hub.mu.
type feed struct {
	app     string
	lines   []Line // the last Backlog lines, in arrival order
	viewers map[*Viewer]struct{}
	refs    int // viewers plus subscribers waiting for ready
	ready   chan struct{}
	switch_ chan string // new active container, latest wins
	cancel  context.CancelFunc
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
	h.mu.Lock()
	f := h.feeds[app]
	if f == nil {
		fctx, cancel := context.WithCancel(context.Background())
		f = &feed{app: app, viewers: map[*Viewer]struct{}{}, ready: make(chan struct{}), switch_: make(chan string, 1), cancel: cancel}
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
	return backlog(f.lines, since, tail), v, nil
}

func backlog(lines []Line, since time.Time, tail int) []Line {
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

// Switch tells the hub that app's active container is now id (a deploy
// flipped); its follower moves to the new container at once.
func (h *Hub) Switch(app, id string) {
	h.mu.Lock()
	f := h.feeds[app]
	h.mu.Unlock()
	if f == nil {
		return // nobody watches; the next follower asks for the active container
	}
	for {
		select {
		case f.switch_ <- id:
			return
		default:
			select { // replace an older, unread switch
			case <-f.switch_:
			default:
			}
		}
	}
}

// Stream sends app's lines to send: the recent ones (see Subscribe), then,
// with follow, every new line until ctx ends or send fails. A viewer that
// falls behind is re-subscribed from its last line, so a slow client skips
// nothing the hub still keeps and never holds up the others.
func (h *Hub) Stream(ctx context.Context, app string, since time.Time, tail int, follow bool, send func(Line) error) error {
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
		lines, v, err := h.Subscribe(ctx, app, since, tail)
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

// follow runs one app's follower until ctx ends: it loads the backlog of
// the active container, then follows it, moves to a new container on
// Switch, and follows again (from its last line) when a follow ends because
// the container stopped or restarted.
func (h *Hub) follow(ctx context.Context, f *feed) {
	var (
		id       string
		last     time.Time // of the last line shown; lines are never older
		readyNow = sync.OnceFunc(func() { close(f.ready) })
	)
	defer readyNow()
	emit := func(l Line) {
		if !last.IsZero() && !l.Time.After(last) {
			return // the engine's since is not exact; never repeat a line
		}
		last = l.Time
		h.mu.Lock()
		h.add(f, l)
		h.mu.Unlock()
	}
	for ctx.Err() == nil {
		if id == "" {
			id = h.activeContainer(f.app)
		}
		if id != "" && last.IsZero() {
			// The backlog first, so the first subscribers see history.
			w := &lineParser{emit: emit}
			if err := h.src.TimedLogs(ctx, id, time.Time{}, h.opts.Backlog, false, w); err != nil && ctx.Err() == nil {
				h.log.Warn("read log backlog", "app", f.app, "container", shortID(id), "err", err)
			}
			w.flush()
		}
		readyNow()

		fctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		if id == "" {
			done <- nil // not deployed yet: wait, then ask again
		} else {
			since := last
			if !since.IsZero() {
				since = since.Add(time.Nanosecond)
			}
			go func(id string) {
				w := &lineParser{emit: emit}
				err := h.src.TimedLogs(fctx, id, since, followAll, true, w)
				w.flush()
				done <- err
			}(id)
		}
		select {
		case <-ctx.Done():
			cancel()
			<-done
		case newID := <-f.switch_:
			cancel()
			<-done
			// The new container's start-up lines predate the switch; they
			// are skipped so that times only grow and resuming stays exact.
			id = newID
		case err := <-done:
			cancel()
			if err != nil && ctx.Err() == nil {
				h.log.Debug("log follow ended", "app", f.app, "container", shortID(id), "err", err)
			}
			retry := time.NewTimer(h.opts.Retry)
			select {
			case <-ctx.Done():
			case id = <-f.switch_:
			case <-retry.C:
				id = "" // ask which container is active now
			}
			retry.Stop()
		}
	}
}

func (h *Hub) activeContainer(app string) string {
	id, err := h.src.ActiveContainer(app)
	if err != nil {
		return ""
	}
	return id
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
