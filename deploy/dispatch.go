package deploy

import (
	"context"
	"sync"
	"time"

	"github.com/plat-paas/plat/engine"
)

const (
	// eventQueueSize bounds the events waiting for one app's worker; the
	// engine's event stream waits when it is full.
	eventQueueSize = 256
	// eventWorkerIdle is how long an app's worker waits for its next event
	// before it exits; the next event starts a new one.
	eventWorkerIdle = time.Minute
)

// dispatcher hands engine events to one worker per app, created on demand:
// the events of an app are handled in the order they came, those of
// different apps side by side.
type dispatcher struct {
	handle  func(engine.ContainerEvent)
	idle    time.Duration
	mu      sync.Mutex
	workers map[string]*eventWorker
	wg      sync.WaitGroup
}

type eventWorker struct {
	ch      chan engine.ContainerEvent
	pending int // events dispatched and not yet taken, guarded by dispatcher.mu
}

func newDispatcher(handle func(engine.ContainerEvent)) *dispatcher {
	return &dispatcher{handle: handle, idle: eventWorkerIdle, workers: map[string]*eventWorker{}}
}

// dispatch queues e for app's worker, waiting while its queue is full
// (or until ctx ends).
func (q *dispatcher) dispatch(ctx context.Context, app string, e engine.ContainerEvent) {
	q.mu.Lock()
	w, ok := q.workers[app]
	if !ok {
		w = &eventWorker{ch: make(chan engine.ContainerEvent, eventQueueSize)}
		q.workers[app] = w
		q.wg.Add(1)
		go q.run(ctx, app, w)
	}
	w.pending++
	q.mu.Unlock()
	select {
	case w.ch <- e:
	case <-ctx.Done():
		q.mu.Lock()
		w.pending--
		q.mu.Unlock()
	}
}

func (q *dispatcher) run(ctx context.Context, app string, w *eventWorker) {
	defer q.wg.Done()
	idle := time.NewTimer(q.idle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			q.mu.Lock()
			delete(q.workers, app)
			q.mu.Unlock()
			return
		case e := <-w.ch:
			q.mu.Lock()
			w.pending--
			q.mu.Unlock()
			q.handle(e)
			idle.Reset(q.idle)
		case <-idle.C:
			q.mu.Lock()
			if w.pending == 0 {
				delete(q.workers, app)
				q.mu.Unlock()
				return
			}
			q.mu.Unlock()
			idle.Reset(q.idle)
		}
	}
}

// wait returns once every worker has exited; call it after ctx ended.
func (q *dispatcher) wait() { q.wg.Wait() }
