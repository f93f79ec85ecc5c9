package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/plat-paas/plat/store"
)

// Every app has two locks, always taken in this order:
//   - the release lock serializes what makes releases or removes the app:
//     a push (from the end of its build to its git branch update), a config
//     change, a rollback, a scale change and a destroy. It can be held for
//     minutes (a slow health check), but never across a build;
//   - the replica lock serializes what changes the app's running replicas
//     and its route: a deploy's switch step, wakes, sleeps, crash recovery
//     and the autoscaler. It is held for one such step, never across a
//     build or a deploy's health check, so a wake or a crash recovery never
//     waits behind a deploy.

// Causes of a cancelled operation; each wraps ErrCancelled.
var (
	ErrCancelled = errors.New("cancelled")
	// ErrClientGone: the client that started the operation went away (a
	// pusher's Ctrl-C, a closed connection).
	ErrClientGone = fmt.Errorf("%w: the client disconnected", ErrCancelled)
	// ErrShutdown: the daemon is stopping.
	ErrShutdown = fmt.Errorf("%w: the plat daemon is stopping", ErrCancelled)
	// ErrUpgrade: the daemon is handing over to a new version and the
	// operation did not finish within the hand-over's bound.
	ErrUpgrade = fmt.Errorf("%w: the plat daemon is being upgraded and this did not finish in time; nothing was changed, run it again", ErrCancelled)
	// errLeaseEnded ends what still runs under a lease its owner released.
	errLeaseEnded = fmt.Errorf("%w: the push that started it ended", ErrCancelled)
)

// CancelledBy is the cause of an operation a user cancelled.
func CancelledBy(who string) error { return fmt.Errorf("%w by %s", ErrCancelled, who) }

// mutex is a lock whose wait can be given up: a held mutex is a full
// channel of size 1.
type mutex chan struct{}

func (m mutex) lock(ctx context.Context) error {
	if ctx.Err() != nil {
		return context.Cause(ctx) // not a lock that happens to be free
	}
	select {
	case m <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (m mutex) tryLock() bool {
	select {
	case m <- struct{}{}:
		return true
	default:
		return false
	}
}

func (m mutex) unlock() { <-m }

type appLock struct {
	release mutex
	replica mutex
}

// appLocks holds the locks of each app; different apps never wait for
// each other.
type appLocks struct {
	mu   sync.Mutex
	apps map[string]*appLock
}

func (l *appLocks) get(app string) *appLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.apps == nil {
		l.apps = make(map[string]*appLock)
	}
	a, ok := l.apps[app]
	if !ok {
		a = &appLock{release: make(mutex, 1), replica: make(mutex, 1)}
		l.apps[app] = a
	}
	return a
}

// lockRelease takes app's release lock, telling out when it has to wait
// for another deploy.
func (l *appLocks) lockRelease(ctx context.Context, app string, out io.Writer) (unlock func(), err error) {
	m := l.get(app).release
	if ctx.Err() != nil {
		return nil, fmt.Errorf("deploy lock of %s: %w", app, context.Cause(ctx))
	}
	if !m.tryLock() {
		fmt.Fprintf(out, "-----> Another deploy of %s is in progress; waiting for it to finish\n", app)
		if err := m.lock(ctx); err != nil {
			return nil, fmt.Errorf("waiting for the deploy lock of %s: %w", app, err)
		}
	}
	var once sync.Once
	return func() { once.Do(m.unlock) }, nil
}

// lockReplicas takes app's replica lock.
func (l *appLocks) lockReplicas(ctx context.Context, app string) (unlock func(), err error) {
	m := l.get(app).replica
	if err := m.lock(ctx); err != nil {
		return nil, fmt.Errorf("waiting for the replica lock of %s: %w", app, err)
	}
	var once sync.Once
	return func() { once.Do(m.unlock) }, nil
}

// guard is the apps' locks and the leases that hold their release locks:
// every component that changes an app takes them here.
type guard struct {
	store  *store.Store
	log    *slog.Logger
	locks  appLocks
	leases leases
}

// withLockedApp runs fn with app's replica lock held and its fresh record,
// unless the app is gone or was never deployed.
func (g *guard) withLockedApp(ctx context.Context, appName string, fn func(store.App)) {
	unlock, err := g.locks.lockReplicas(ctx, appName)
	if err != nil {
		return
	}
	defer unlock()
	app, err := g.store.GetApp(appName)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			g.log.Warn("read app", "app", appName, "err", err)
		}
		return
	}
	if app.Active == 0 {
		return
	}
	fn(app)
}
