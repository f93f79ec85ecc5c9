package logs

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// fakeSource is an engine with containers whose output the test appends to.
type fakeSource struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	active  string
	out     map[string][]Line
	follows int // TimedLogs calls with follow
}

func newFakeSource(active string) *fakeSource {
	return &fakeSource{changed: make(chan struct{}), active: active, out: map[string][]Line{}}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// print appends n lines to container id, timed after everything before.
func (s *fakeSource) print(id string, texts ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, text := range texts {
		s.out[id] = append(s.out[id], Line{Time: t0.Add(time.Duration(s.total()) * time.Millisecond), Text: text})
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *fakeSource) total() int {
	n := 1
	for _, ls := range s.out {
		n += len(ls)
	}
	return n
}

func (s *fakeSource) ActiveContainer(string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == "" {
		return "", fmt.Errorf("not deployed")
	}
	return s.active, nil
}

func (s *fakeSource) TimedLogs(ctx context.Context, id string, since time.Time, tail int, follow bool, w io.Writer) error {
	sent := 0
	s.mu.Lock()
	if follow {
		s.follows++
	}
	lines := s.out[id]
	var from []Line
	for _, l := range lines {
		if !l.Time.Before(since) {
			from = append(from, l)
		}
	}
	if tail >= 0 && tail < len(from) {
		from = from[len(from)-tail:]
	}
	sent = len(lines)
	s.mu.Unlock()
	for _, l := range from {
		fmt.Fprintf(w, "%s %s\n", l.Time.Format(time.RFC3339Nano), l.Text)
	}
	for follow {
		s.mu.Lock()
		changed, lines := s.changed, s.out[id]
		s.mu.Unlock()
		for _, l := range lines[sent:] {
			fmt.Fprintf(w, "%s %s\n", l.Time.Format(time.RFC3339Nano), l.Text)
		}
		sent = len(lines)
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
	return nil
}

func texts(ls []Line) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Text
	}
	return out
}

// receive reads n lines from v within a generous timeout.
func receive(t *testing.T, v *Viewer, n int) []string {
	t.Helper()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case l, ok := <-v.C:
			if !ok {
				t.Fatalf("viewer closed after %v (dropped=%v)", got, v.Dropped())
			}
			got = append(got, l.Text)
		case <-timeout:
			t.Fatalf("got %v, want %d lines", got, n)
		}
	}
	return got
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestBacklogThenLive(t *testing.T) {
	src := newFakeSource("c1")
	src.print("c1", "a", "b", "c")
	h := NewHub(src, Options{Backlog: 2})
	tests := []struct {
		name  string
		since time.Time
		tail  int
		want  []string
	}{
		{"tail keeps only the backlog", time.Time{}, -1, []string{"b", "c"}},
		{"tail 1", time.Time{}, 1, []string{"c"}},
		{"since the second line", t0.Add(2 * time.Millisecond), 0, []string{"c"}},
		{"since the last line", t0.Add(3 * time.Millisecond), 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, v, err := h.Subscribe(context.Background(), "app", tt.since, tt.tail)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if got := texts(lines); !equal(got, tt.want) {
				t.Fatalf("backlog %v, want %v", got, tt.want)
			}
		})
	}
}

func TestManyViewersGetEveryLine(t *testing.T) {
	src := newFakeSource("c1")
	h := NewHub(src, Options{ViewerBuffer: 1000})
	var viewers []*Viewer
	for range 10 {
		_, v, err := h.Subscribe(context.Background(), "app", time.Time{}, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		viewers = append(viewers, v)
	}
	var want []string
	for i := range 300 {
		want = append(want, fmt.Sprint("line ", i))
	}
	src.print("c1", want...)
	for i, v := range viewers {
		if got := receive(t, v, len(want)); !equal(got, want) {
			t.Fatalf("viewer %d got %d lines out of order or wrong", i, len(got))
		}
	}
	src.mu.Lock()
	follows := src.follows
	src.mu.Unlock()
	if follows != 1 {
		t.Fatalf("%d engine followers for 10 viewers, want 1", follows)
	}
}

func TestSlowViewerIsDroppedAndOthersGoOn(t *testing.T) {
	src := newFakeSource("c1")
	h := NewHub(src, Options{ViewerBuffer: 4})
	_, slow, err := h.Subscribe(context.Background(), "app", time.Time{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	_, fast, err := h.Subscribe(context.Background(), "app", time.Time{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	for i := range 20 { // the fast viewer keeps up; the slow one reads nothing
		src.print("c1", fmt.Sprint(i))
		if got := receive(t, fast, 1); got[0] != fmt.Sprint(i) {
			t.Fatalf("fast viewer got %q, want %d", got[0], i)
		}
	}
	n := 0
	for range slow.C {
		n++
	}
	if !slow.Dropped() || n != 4 {
		t.Fatalf("slow viewer: dropped=%v after %d lines; want dropped after its 4 buffered lines", slow.Dropped(), n)
	}
}

func TestStreamResumesSlowClientWithoutGapsOrDuplicates(t *testing.T) {
	src := newFakeSource("c1")
	h := NewHub(src, Options{ViewerBuffer: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string)
	go h.Stream(ctx, "app", time.Time{}, -1, true, func(l Line) error {
		got <- l.Text // blocks until the test reads: a slow client
		return nil
	})
	// Wait until the stream is subscribed, then print faster than it reads.
	src.print("c1", "first")
	if s := <-got; s != "first" {
		t.Fatalf("got %q", s)
	}
	var want []string
	for i := range 50 {
		want = append(want, fmt.Sprint(i))
	}
	src.print("c1", want...)
	var lines []string
	for range want {
		select {
		case s := <-got:
			lines = append(lines, s)
		case <-time.After(10 * time.Second):
			t.Fatalf("stream stalled after %v", lines)
		}
	}
	if !equal(lines, want) {
		t.Fatalf("slow client got %v, want %v", lines, want)
	}
}

func TestSwitchFollowsNewContainer(t *testing.T) {
	src := newFakeSource("c1")
	src.print("c1", "old 1")
	src.print("c2", "new starting") // printed during the health check, before the flip
	h := NewHub(src, Options{})
	lines, v, err := h.Subscribe(context.Background(), "app", time.Time{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if !equal(texts(lines), []string{"old 1"}) {
		t.Fatalf("backlog %v", texts(lines))
	}
	src.print("c1", "old 2")
	receive(t, v, 1)
	src.mu.Lock()
	src.active = "c2"
	src.mu.Unlock()
	h.Switch("app", "c2")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		src.mu.Lock()
		follows := src.follows
		src.mu.Unlock()
		if follows == 2 {
			break // following c2
		}
		if time.Now().After(deadline) {
			t.Fatal("the hub never followed the new container")
		}
	}
	src.print("c2", "new 1")
	src.print("c1", "old after switch") // the old container is no longer followed
	src.print("c2", "new 2")
	if got := receive(t, v, 2); !equal(got, []string{"new 1", "new 2"}) {
		t.Fatalf("after switch got %v", got)
	}
}

func TestResumeFromTimestamp(t *testing.T) {
	src := newFakeSource("c1")
	h := NewHub(src, Options{})
	_, v, err := h.Subscribe(context.Background(), "app", time.Time{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	src.print("c1", "1", "2", "3")
	var lastSeen time.Time
	for range 2 {
		l := <-v.C
		lastSeen = l.Time
	}
	v.Close() // a network drop after line 2
	src.print("c1", "4")
	lines, v2, err := h.Subscribe(context.Background(), "app", lastSeen, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	if got := texts(lines); !equal(got, []string{"3", "4"}) {
		t.Fatalf("resumed with %v, want [3 4]", got)
	}
	src.print("c1", "5")
	if got := receive(t, v2, 1); !equal(got, []string{"5"}) {
		t.Fatalf("then got %v", got)
	}
}

func TestFollowerStopsWithLastViewer(t *testing.T) {
	src := newFakeSource("c1")
	h := NewHub(src, Options{})
	_, v, err := h.Subscribe(context.Background(), "app", time.Time{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	h.mu.Lock()
	n := len(h.feeds)
	h.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d feeds left after the last viewer closed", n)
	}
}

func TestParseTimestampedLines(t *testing.T) {
	var got []Line
	p := &lineParser{emit: func(l Line) { got = append(got, l) }}
	p.Write([]byte("2026-01-02T03:04:05.123456789Z hello world\n2026-01-02T03:04:06Z part"))
	p.Write([]byte("ial\nplain\n"))
	p.flush()
	if len(got) != 3 || got[0].Text != "hello world" || got[0].Time.Nanosecond() != 123456789 || got[1].Text != "partial" || got[2].Text != "plain" {
		t.Fatalf("parsed %+v", got)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	src := newFakeSource("c1")
	h := NewHub(src, Options{})
	done := make(chan error)
	go func() {
		done <- h.Stream(context.Background(), "app", time.Time{}, -1, true, func(Line) error { return nil })
	}()
	src.print("c1", "x")
	h.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stream still running after Close")
	}
}
