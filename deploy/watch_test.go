package deploy

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// fakeEngine answers Inspect and Start for the watcher's unit tests; every
// other call panics (the embedded nil interface).
type fakeEngine struct {
	engine.Engine
	mu      sync.Mutex
	info    engine.ContainerInfo
	started int
}

func (f *fakeEngine) Inspect(_ context.Context, id string) (engine.ContainerInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != f.info.ID {
		return engine.ContainerInfo{}, engine.ErrNotFound
	}
	return f.info, nil
}

func (f *fakeEngine) Start(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started++
	return nil
}

type fakeSwitcher struct {
	mu       sync.Mutex
	switches [][]string
}

func (s *fakeSwitcher) Switch(_ string, addrs []string) (func(context.Context) error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.switches = append(s.switches, addrs)
	return func(context.Context) error { return nil }, nil
}

func (s *fakeSwitcher) Sleep(string) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}

func (s *fakeSwitcher) Remove(string) func(context.Context) error {
	return func(context.Context) error { return nil }
}

func (s *fakeSwitcher) Stats(string) (TrafficStats, bool) { return TrafficStats{}, false }

func TestHandleEvent(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer healthy.Close()
	newAddr := healthy.Listener.Addr().String()
	one := []Replica{{ID: "c1", Index: 1, Release: 1, Addr: "127.0.0.1:2001"}}
	three := []Replica{
		{ID: "c1", Index: 1, Release: 1, Addr: "127.0.0.1:2001"},
		{ID: "c2", Index: 2, Release: 1, Addr: "127.0.0.1:2002"},
		{ID: "c3", Index: 3, Release: 1, Addr: "127.0.0.1:2003"},
	}
	tests := []struct {
		name        string
		routed      []Replica
		event       engine.ContainerEvent
		release     string // the event's release label; "" = the active one
		info        engine.ContainerInfo
		wantSwitch  []string
		wantEvent   string // kind of the newest event
		wantStarted int
	}{
		{
			name:       "active replica restarted on a new port, healthy",
			routed:     one,
			event:      engine.ContainerEvent{ID: "c1", Action: engine.ActionStart},
			info:       engine.ContainerInfo{ID: "c1", Running: true, HostAddr: newAddr},
			wantSwitch: []string{newAddr},
			wantEvent:  "restarted",
		},
		{
			name:   "the deploy's own start, seen late",
			routed: one,
			event:  engine.ContainerEvent{ID: "c1", Action: engine.ActionStart},
			info:   engine.ContainerInfo{ID: "c1", Running: true, HostAddr: "127.0.0.1:2001"},
		},
		{
			name:    "not the active release's container",
			routed:  one,
			release: "7",
			event:   engine.ContainerEvent{ID: "other", Action: engine.ActionStart},
			info:    engine.ContainerInfo{ID: "other", Running: true, HostAddr: newAddr},
		},
		{
			name:      "crash of the only replica the engine restarts",
			routed:    one,
			event:     engine.ContainerEvent{ID: "c1", Action: engine.ActionDie, ExitCode: 137},
			info:      engine.ContainerInfo{ID: "c1", State: "restarting"},
			wantEvent: "crashed",
		},
		{
			name:       "crash of one of three: out of rotation at once",
			routed:     three,
			event:      engine.ContainerEvent{ID: "c2", Action: engine.ActionDie, ExitCode: 2},
			info:       engine.ContainerInfo{ID: "c2", State: "restarting"},
			wantSwitch: []string{"127.0.0.1:2001", "127.0.0.1:2003"},
			wantEvent:  "crashed",
		},
		{
			name:   "destroy of another container",
			routed: one,
			event:  engine.ContainerEvent{ID: "old", Action: engine.ActionDestroy},
		},
		{
			name:        "manual stop: plat starts it",
			routed:      one,
			event:       engine.ContainerEvent{ID: "c1", Action: engine.ActionDie, ExitCode: 137},
			info:        engine.ContainerInfo{ID: "c1", State: "exited"},
			wantEvent:   "restarted",
			wantStarted: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := store.Open(filepath.Join(t.TempDir(), "plat.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.CreateApp(store.App{Name: "app"}); err != nil {
				t.Fatal(err)
			}
			rel, err := st.CreateRelease(store.Release{App: "app", Status: store.StatusDeploying, ContainerID: "c1"})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.ActivateRelease("app", rel.Version); err != nil {
				t.Fatal(err)
			}
			eng, sw := &fakeEngine{info: tt.info}, &fakeSwitcher{}
			d := New(st, eng, sw, Config{}, slog.New(slog.DiscardHandler))
			d.routed.set("app", tt.routed)
			release := tt.release
			if release == "" {
				release = strconv.Itoa(rel.Version)
			}
			tt.event.Labels = map[string]string{engine.LabelApp: "app", engine.LabelRelease: release}
			d.handleEvent(context.Background(), tt.event)

			var last []string
			if len(sw.switches) > 0 {
				last = sw.switches[len(sw.switches)-1]
			}
			if !slices.Equal(last, tt.wantSwitch) {
				t.Errorf("switched to %v, want %v", sw.switches, tt.wantSwitch)
			}
			events, _ := st.ListEvents("app", 1)
			kind := ""
			if len(events) > 0 {
				kind = events[0].Kind
			}
			if kind != tt.wantEvent {
				t.Errorf("newest event %q (%v), want %q", kind, events, tt.wantEvent)
			}
			if eng.started != tt.wantStarted {
				t.Errorf("started %d times, want %d", eng.started, tt.wantStarted)
			}
		})
	}
}

// streamEngine plays an engine whose event stream delivers events, in
// order, then stays open; Inspect answers from infos.
type streamEngine struct {
	engine.Engine
	mu     sync.Mutex
	infos  map[string]engine.ContainerInfo
	events []engine.ContainerEvent
}

func (f *streamEngine) Inspect(_ context.Context, id string) (engine.ContainerInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.infos[id]
	if !ok {
		return engine.ContainerInfo{}, engine.ErrNotFound
	}
	return info, nil
}

func (f *streamEngine) Start(context.Context, string) error { return nil }

func (f *streamEngine) Events(ctx context.Context, _ map[string]string, fn func(engine.ContainerEvent)) error {
	for _, e := range f.events {
		fn(e)
	}
	<-ctx.Done()
	return nil
}

// TestWatchOrdersEventsPerApp: a replica's die and the start of its
// restart (the engine's restart policy, on a new host port) come in that
// order; handled in that order, the replica is back in rotation. Handled in
// one goroutine each (before this change), the start could win and the
// die then took the healthy replica out for good: repeated runs caught it.
func TestWatchOrdersEventsPerApp(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer healthy.Close()
	newAddr := healthy.Listener.Addr().String()
	for i := range 20 {
		st, err := store.Open(filepath.Join(t.TempDir(), "plat.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.CreateApp(store.App{Name: "app"}); err != nil {
			t.Fatal(err)
		}
		rel, _ := st.CreateRelease(store.Release{App: "app", Status: store.StatusDeploying})
		if err := st.ActivateRelease("app", rel.Version); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{engine.LabelApp: "app", engine.LabelRelease: strconv.Itoa(rel.Version), engine.LabelReplica: "2"}
		eng := &streamEngine{
			infos: map[string]engine.ContainerInfo{"c2": {ID: "c2", Running: true, State: "running", HostAddr: newAddr, Labels: labels}},
			events: []engine.ContainerEvent{
				{ID: "c2", Action: engine.ActionDie, ExitCode: 137, Labels: labels},
				{ID: "c2", Action: engine.ActionStart, Labels: labels},
			},
		}
		d := New(st, eng, &fakeSwitcher{}, Config{}, slog.New(slog.DiscardHandler))
		d.restartGrace = time.Millisecond
		d.routed.set("app", []Replica{
			{ID: "c1", Index: 1, Release: rel.Version, Addr: "127.0.0.1:2001"},
			{ID: "c2", Index: 2, Release: rel.Version, Addr: "127.0.0.1:2002"},
			{ID: "c3", Index: 3, Release: rel.Version, Addr: "127.0.0.1:2003"},
		})
		ctx, cancel := context.WithCancel(context.Background())
		watched := make(chan struct{})
		go func() { d.Watch(ctx); close(watched) }()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			evs, _ := st.ListEvents("app", 10)
			kinds := map[string]bool{}
			for _, e := range evs {
				kinds[e.Kind] = true
			}
			if kinds["crashed"] && kinds["restarted"] {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // a die handled last would act now
		cancel()
		<-watched
		var addrs []string
		for _, r := range d.Replicas("app") {
			addrs = append(addrs, r.Addr)
		}
		if want := []string{"127.0.0.1:2001", newAddr, "127.0.0.1:2003"}; !slices.Equal(addrs, want) {
			t.Fatalf("run %d: routed %v after die then start of replica 2, want %v", i, addrs, want)
		}
	}
}

// TestDispatcherOrderAndIdleExit: one app's events are handled in order,
// another app's do not wait for them, and an idle worker exits.
func TestDispatcherOrderAndIdleExit(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]string{}
	release := make(chan struct{})
	q := newDispatcher(func(e engine.ContainerEvent) {
		if e.ID == "a-block" {
			<-release
		}
		mu.Lock()
		defer mu.Unlock()
		got[e.Labels[engine.LabelApp]] = append(got[e.Labels[engine.LabelApp]], e.ID)
	})
	q.idle = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := func(app, id string) engine.ContainerEvent {
		return engine.ContainerEvent{ID: id, Labels: map[string]string{engine.LabelApp: app}}
	}
	q.dispatch(ctx, "a", ev("a", "a-block"))
	for i := range 50 {
		q.dispatch(ctx, "a", ev("a", "a"+strconv.Itoa(i)))
	}
	q.dispatch(ctx, "b", ev("b", "b0"))
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got["b"]) == 1 })
	close(release)
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got["a"]) == 51 })
	for i, id := range got["a"][1:] {
		if id != "a"+strconv.Itoa(i) {
			t.Fatalf("app a's events out of order: %v", got["a"])
		}
	}
	waitUntil(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.workers) == 0 })
	cancel()
	q.wait()
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out")
}
