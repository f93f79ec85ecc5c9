package logs

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Router lines are kept while nobody watches, merged into the feed in time
// order, streamed live, and filtered by source.
func TestRouterLines(t *testing.T) {
	src := newFakeSource("c1")
	src.print("c1", "a", "b") // at t0+1ms, t0+2ms
	h := NewHub(src, Options{})
	h.AddRouterLine("app", t0.Add(1500*time.Microsecond), "GET / 200 1ms 2B")
	h.AddRouterLine("other", t0, "GET /x 200 1ms 2B")

	collect := func(source string, tail int) []string {
		var got []string
		if err := h.StreamSource(context.Background(), "app", source, time.Time{}, tail, false, func(l Line) error {
			got = append(got, l.Format(false))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	tests := []struct {
		source string
		tail   int
		want   []string
	}{
		{"", -1, []string{"a", "router | GET / 200 1ms 2B", "b"}},
		{SourceRouter, -1, []string{"router | GET / 200 1ms 2B"}},
		{SourceApp, -1, []string{"a", "b"}},
		{SourceApp, 1, []string{"b"}}, // tail counts the source's lines
		{SourceRouter, 1, []string{"router | GET / 200 1ms 2B"}},
	}
	for _, tt := range tests {
		if got := collect(tt.source, tt.tail); !equal(got, tt.want) {
			t.Errorf("source %q tail %d: %q, want %q", tt.source, tt.tail, got, tt.want)
		}
	}

	// A follower sees new router lines live, and only them with SourceRouter.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 10)
	go func() {
		_ = h.StreamSource(ctx, "app", SourceRouter, time.Time{}, 0, true, func(l Line) error {
			got <- l.Text
			return nil
		})
	}()
	deadline := time.After(5 * time.Second)
	for i := 0; ; i++ {
		h.AddRouterLine("app", time.Now(), "live "+strconv.Itoa(i))
		src.print("c1", "app line")
		select {
		case l := <-got:
			if len(l) < 4 || l[:4] != "live" {
				t.Fatalf("router stream got %q", l)
			}
			return
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("no live router line")
		}
	}
}

// The kept router lines are bounded.
func TestRouterLinesBounded(t *testing.T) {
	h := NewHub(newFakeSource(), Options{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range DefaultRouterBacklog {
				h.AddRouterLine("app", t0.Add(time.Duration(g*DefaultRouterBacklog+i)), "x")
			}
		})
	}
	wg.Wait()
	h.mu.Lock()
	n, shown := len(h.routerLines["app"]), len(h.keptRouterLines("app"))
	h.mu.Unlock()
	if n >= 2*DefaultRouterBacklog || shown != DefaultRouterBacklog {
		t.Fatalf("%d router lines kept (%d shown), want < %d (%d)", n, shown, 2*DefaultRouterBacklog, DefaultRouterBacklog)
	}
	h.Forget("app")
	if len(h.routerLines) != 0 {
		t.Fatal("Forget kept the lines")
	}
}
