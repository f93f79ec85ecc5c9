package deploy

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// appLocks serializes the deploys of each app; different apps never wait
// for each other.
type appLocks struct {
	mu    sync.Mutex
	locks map[string]chan struct{} // a held lock is a full channel of size 1
}

func (l *appLocks) get(app string) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.locks == nil {
		l.locks = make(map[string]chan struct{})
	}
	ch, ok := l.locks[app]
	if !ok {
		ch = make(chan struct{}, 1)
		l.locks[app] = ch
	}
	return ch
}

// lock takes app's lock, telling out when it has to wait for another deploy.
func (l *appLocks) lock(ctx context.Context, app string, out io.Writer) (unlock func(), err error) {
	ch := l.get(app)
	select {
	case ch <- struct{}{}:
	default:
		fmt.Fprintf(out, "-----> Another deploy of %s is in progress; waiting for it to finish\n", app)
		select {
		case ch <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the deploy lock of %s: %w", app, ctx.Err())
		}
	}
	var once sync.Once
	return func() { once.Do(func() { <-ch }) }, nil
}

// held reports whether app's lock is currently taken.
func (l *appLocks) held(app string) bool {
	return len(l.get(app)) == 1
}
