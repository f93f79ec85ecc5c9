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
