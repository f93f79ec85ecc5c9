package enginetest

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/plat-paas/plat/engine"
)

func TestRunFailures(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		spec    engine.ContainerSpec
		behave  Behaviour
		wantErr error
		running bool
	}{
		{name: "runs and serves", spec: engine.ContainerSpec{Name: "a", Image: "img"}, running: true},
		{name: "missing image", spec: engine.ContainerSpec{Name: "a", Image: "gone"}, wantErr: engine.ErrNotFound},
		{name: "name in use", spec: engine.ContainerSpec{Name: "taken", Image: "img"}, wantErr: engine.ErrNameInUse},
		{name: "failed start", spec: engine.ContainerSpec{Name: "a", Image: "img"}, behave: Behaviour{FailStart: boom}, wantErr: boom},
		{name: "exits at once", spec: engine.ContainerSpec{Name: "a", Image: "img"}, behave: Behaviour{Exit: true, ExitCode: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New()
			defer e.Close()
			e.AddImage("img", "app:v1")
			if _, err := e.Run(context.Background(), engine.ContainerSpec{Name: "taken", Image: "img"}); err != nil {
				t.Fatal(err)
			}
			e.Behave = func(engine.ContainerSpec) Behaviour { return tt.behave }
			c, err := e.Run(context.Background(), tt.spec)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if n := len(e.Containers()); n != 1 {
					t.Errorf("%d containers after a failed Run, want 1", n)
				}
				return
			}
			if c.Running != tt.running || c.ExitCode != tt.behave.ExitCode {
				t.Errorf("running %v code %d, want %v %d", c.Running, c.ExitCode, tt.running, tt.behave.ExitCode)
			}
			if !tt.running {
				return
			}
			resp, err := http.Get("http://" + c.HostAddr + "/")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET: %v %v", resp, err)
			}
			resp.Body.Close()
			if err := e.Stop(context.Background(), c.ID, time.Second); err != nil {
				t.Fatal(err)
			}
			if _, err := http.Get("http://" + c.HostAddr + "/"); err == nil {
				t.Error("a stopped container still answers")
			}
		})
	}
}

func TestRemoveImage(t *testing.T) {
	e := New()
	e.AddImage("sha256:a", "x:v1", "y:v1")
	ctx := context.Background()
	steps := []struct {
		remove string
		want   []string
	}{
		{"x:v1", []string{"sha256:a", "y:v1"}}, // another tag keeps it
		{"y:v1", nil},                          // the image goes with its last tag
	}
	for _, s := range steps {
		if err := e.RemoveImage(ctx, s.remove); err != nil {
			t.Fatal(err)
		}
		if got := e.Images(); !slices.Equal(got, s.want) {
			t.Fatalf("after removing %s: %v, want %v", s.remove, got, s.want)
		}
	}
	if err := e.RemoveImage(ctx, "y:v1"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("removing a gone tag: %v, want ErrNotFound", err)
	}
}

func TestEventsInOrder(t *testing.T) {
	e := New()
	defer e.Close()
	e.AddImage("img")
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Events(ctx, map[string]string{"app": "a"}, func(ev engine.ContainerEvent) { got <- ev.Action })
	}()
	for !e.subscribed() {
		time.Sleep(time.Millisecond)
	}
	c, err := e.Run(ctx, engine.ContainerSpec{Name: "a", Image: "img", Labels: map[string]string{"app": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, engine.ContainerSpec{Name: "b", Image: "img", Labels: map[string]string{"app": "b"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for range 3 {
		actions = append(actions, <-got)
	}
	cancel()
	<-done
	if want := []string{engine.ActionStart, engine.ActionDie, engine.ActionDestroy}; !slices.Equal(actions, want) {
		t.Errorf("events %v, want %v", actions, want)
	}
}

// subscribed reports whether an Events call is listening (for tests).
func (e *Engine) subscribed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs) > 0
}
