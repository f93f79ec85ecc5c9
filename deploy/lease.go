package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/plat-paas/plat/store"
)

// A Lease is one operation on an app that takes (or may take) the app's
// release lock: a push, a config change, a rollback, a scale change or a
// destroy. It makes the lock's holder explicit: a git push's hook proves it
// runs for the push that owns the lease by its ID, which travels in the
// hook's environment. Its context ends when the operation is cancelled: by
// `plat deploy:cancel`, by the client going away, or by the daemon stopping.
type Lease struct {
	ID  string
	App string

	ctx      context.Context
	cancel   context.CancelCauseFunc
	stop     func() bool // detaches ctx from the parent's cancellation
	locks    *appLocks
	leases   *leases
	deploys  bool // deploy:cancel ends it (push, config, rollback)
	done     chan struct{}
	mu       sync.Mutex
	what     string // what it does, for deploy:cancel's answer
	unlock   func()
	users    int           // Push calls running under the lease
	idle     chan struct{} // closed when users drops to 0 after release
	released bool
}

// Context is the lease's context: it ends with the operation's
// cancellation (context.Cause says why) or its release.
func (l *Lease) Context() context.Context { return l.ctx }

// Lock takes the app's release lock for the lease, writing to out if it
// has to wait. It gives up when ctx or the lease ends.
func (l *Lease) Lock(ctx context.Context, out io.Writer) error {
	ctx, cancel := l.bind(ctx)
	defer cancel(nil)
	unlock, err := l.locks.lockRelease(ctx, l.App, out)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released || l.unlock != nil {
		unlock()
		return fmt.Errorf("lease of %s: %w", l.App, errLeaseEnded)
	}
	l.unlock = unlock
	return nil
}

// Release ends the lease: what still runs under it is cancelled and
// waited for, then the lock (if taken) is released. It is idempotent.
func (l *Lease) Release() {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		<-l.done
		return
	}
	l.released = true
	l.cancel(errLeaseEnded)
	idle := l.idle
	if l.users == 0 {
		close(idle)
	}
	l.mu.Unlock()
	<-idle
	l.mu.Lock()
	if l.unlock != nil {
		l.unlock()
	}
	l.mu.Unlock()
	l.stop()
	l.leases.remove(l)
	close(l.done)
}

// bind returns ctx, also cancelled (with the lease's cause) when the
// lease ends.
func (l *Lease) bind(ctx context.Context) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	if l.ctx.Err() != nil {
		cancel(context.Cause(l.ctx)) // AfterFunc would do it, but later
	}
	stop := context.AfterFunc(l.ctx, func() { cancel(context.Cause(l.ctx)) })
	return ctx, func(cause error) { stop(); cancel(cause) }
}

// use registers a caller (a Push) running under the lease; done
// unregisters it. It fails once the lease is released.
func (l *Lease) use() (done func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil, errLeaseEnded
	}
	l.users++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.users--
		if l.users == 0 && l.released {
			close(l.idle)
		}
	}, nil
}

func (l *Lease) describe(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.what = what
}

func (l *Lease) description() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.what
}

// leases is the registry of the running operations, by ID.
type leases struct {
	mu     sync.Mutex
	byID   map[string]*Lease
	closed error // set by cancelAll: new leases start cancelled
}

func (r *leases) add(l *Lease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]*Lease{}
	}
	r.byID[l.ID] = l
	if r.closed != nil {
		l.cancel(r.closed)
	}
}

func (r *leases) remove(l *Lease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byID, l.ID)
}

func (r *leases) get(id string) *Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// ofApp returns the app's leases that deploy:cancel ends.
func (r *leases) ofApp(app string, deploysOnly bool) []*Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Lease
	for _, l := range r.byID {
		if l.App == app && (l.deploys || !deploysOnly) {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b *Lease) int { return strings.Compare(a.description(), b.description()) })
	return out
}

func (r *leases) cancelAll(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = cause
	for _, l := range r.byID {
		l.cancel(cause)
	}
}

// NewLease starts an operation on app. Its context ends when ctx does
// (cause ErrClientGone: the caller passes the request's context), when it
// is cancelled, or when it is released; the caller must Release it.
// deploys says whether `plat deploy:cancel` ends it.
func (g *guard) NewLease(ctx context.Context, app string, deploys bool) *Lease {
	var id [16]byte
	_, _ = rand.Read(id[:])
	lctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		cause := context.Cause(ctx)
		if !errors.Is(cause, ErrCancelled) {
			cause = ErrClientGone
		}
		cancel(cause)
	})
	l := &Lease{
		ID: hex.EncodeToString(id[:]), App: app,
		ctx: lctx, cancel: cancel, stop: stop,
		locks: &g.locks, leases: &g.leases, deploys: deploys,
		done: make(chan struct{}), idle: make(chan struct{}),
	}
	g.leases.add(l)
	return l
}

// lockApp starts an operation on app, takes its release lock and reads
// the app under it. The operation runs with the lease's context, which
// ends when ctx does or the operation is cancelled; the caller releases
// the lease.
func (g *guard) lockApp(ctx context.Context, name string, deploys bool, out io.Writer) (store.App, *Lease, error) {
	l := g.NewLease(ctx, name, deploys)
	if err := l.Lock(l.ctx, out); err != nil {
		l.Release()
		return store.App{}, nil, err
	}
	app, err := g.store.GetApp(name)
	if err != nil {
		l.Release()
		return store.App{}, nil, fmt.Errorf("app %s: %w", name, err)
	}
	return app, l, nil
}

// SubLease starts an operation on app under the running lease id of
// parent: a branch preview's push runs under the lease of its app's git
// push. It ends when the parent does (so it holds app's lock until git
// recorded the branch), or when the caller releases it.
func (g *guard) SubLease(id, parent, app string) (*Lease, error) {
	p, err := g.lease(id, parent)
	if err != nil {
		return nil, err
	}
	l := g.NewLease(p.ctx, app, true)
	context.AfterFunc(p.ctx, l.Release)
	return l, nil
}

// lease returns the running lease id of app, or ErrNoLease.
func (g *guard) lease(id, app string) (*Lease, error) {
	l := g.leases.get(id)
	if id == "" || l == nil || l.App != app {
		return nil, ErrNoLease
	}
	return l, nil
}

// Cancel cancels the running deploys (pushes, config changes and
// rollbacks) of app with cause (see CancelledBy) and waits, until ctx
// ends, for them to finish: each failed release records the cause. It
// returns what it cancelled, empty when nothing ran.
func (g *guard) Cancel(ctx context.Context, app string, cause error) []string {
	ls := g.leases.ofApp(app, true)
	var what []string
	for _, l := range ls {
		l.cancel(cause)
		if w := l.description(); w != "" {
			what = append(what, w)
		} else {
			what = append(what, "a deploy of "+app)
		}
	}
	for _, l := range ls {
		select {
		case <-l.done:
		case <-ctx.Done():
			return what
		}
	}
	return what
}

// Deploys returns how many deploys (pushes, config changes, rollbacks:
// what deploy:cancel ends) are running now.
func (g *guard) Deploys() int {
	g.leases.mu.Lock()
	defer g.leases.mu.Unlock()
	n := 0
	for _, l := range g.leases.byID {
		if l.deploys {
			n++
		}
	}
	return n
}

// CancelAll cancels every running operation, and those started from now
// on, with cause (ErrShutdown when the daemon stops).
func (g *guard) CancelAll(cause error) { g.leases.cancelAll(cause) }
