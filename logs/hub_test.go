package logs

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSource is an engine with containers whose output the test appends to.
type fakeSource struct {
	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	active    []string
	out       map[string][]Line
	follows   int            // TimedLogs calls with follow
	following map[string]int // containers followed now
}

func newFakeSource(active ...string) *fakeSource {
	return &fakeSource{changed: make(chan struct{}), active: active, out: map[string][]Line{}, following: map[string]int{}}
}

// containers labels ids c1, c2, ... web.1, web.2, ...: a container keeps
// its label for its life.
func containers(ids ...string) []Container {
	cs := make([]Container, len(ids))
	for i, id := range ids {
		cs[i] = Container{ID: id, Label: "web." + strings.TrimPrefix(id, "c")}
	}
	return cs
}

// setActive changes what ActiveContainers answers.
func (s *fakeSource) setActive(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active = ids
}

// waitFollowing waits until exactly ids are followed.
func (s *fakeSource) waitFollowing(t *testing.T, ids ...string) {
	t.Helper()
	want := map[string]int{}
	for _, id := range ids {
		want[id] = 1
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		got := fmt.Sprint(s.following)
		s.mu.Unlock()
		if got == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("following %s, want %v", got, want)
		}
	}
}

// stop ends the follows of container id, as the engine does when a
// container stops.
func (s *fakeSource) stop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out[id] = append(s.out[id], Line{Text: stopMark})
	close(s.changed)
	s.changed = make(chan struct{})
}

const stopMark = "\x00stop"

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

func (s *fakeSource) ActiveContainers(string) ([]Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		return nil, fmt.Errorf("not deployed")
	}
	return containers(s.active...), nil
}

func (s *fakeSource) TimedLogs(ctx context.Context, id string, since time.Time, tail int, follow bool, w io.Writer) error {
	sent := 0
	s.mu.Lock()
	if follow {
		s.follows++
		s.following[id]++
		defer func() {
			s.mu.Lock()
			if s.following[id]--; s.following[id] == 0 {
				delete(s.following, id)
			}
			s.mu.Unlock()
		}()
	}
	lines := s.out[id]
	var from []Line
	for _, l := range lines {
		if l.Text != stopMark && !l.Time.Before(since) {
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
			if l.Text == stopMark {
				return nil
			}
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
	src.setActive("c2")
	h.Switch("app", containers("c2"))
	src.waitFollowing(t, "c2")
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

// formatted reads n lines from v as they would print for a multi-replica app.
func formatted(t *testing.T, v *Viewer, n int) []string {
	t.Helper()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case l, ok := <-v.C:
			if !ok {
				t.Fatalf("viewer closed after %v (dropped=%v)", got, v.Dropped())
			}
			got = append(got, l.Format(true))
		case <-timeout:
			t.Fatalf("got %v, want %d lines", got, n)
		}
	}
	return got
}

// out is a line printed by a container during a step.
type out struct{ id, text string }

func TestSeveralReplicas(t *testing.T) {
	type step struct {
		switchTo []string // the new active set when not nil; empty: the app sleeps
		stop     string   // a container whose follow ends (it restarted)
		print    []out
		want     []string // formatted lines every viewer then receives, in any order across replicas
	}
	tests := []struct {
		name    string
		active  []string
		history []out    // printed before anyone watches
		backlog []string // what a new viewer gets first
		steps   []step
	}{
		{
			name:    "backlog of all replicas in time order, then every replica's lines",
			active:  []string{"c1", "c2", "c3"},
			history: []out{{"c1", "a"}, {"c2", "b"}, {"c1", "c"}, {"c3", "d"}},
			backlog: []string{"web.1 | a", "web.2 | b", "web.1 | c", "web.3 | d"},
			steps: []step{{
				print: []out{{"c3", "e"}, {"c2", "f"}, {"c1", "g"}},
				want:  []string{"web.3 | e", "web.2 | f", "web.1 | g"},
			}},
		},
		{
			name:    "scale up follows the new replica, scale down stops the removed one",
			active:  []string{"c1"},
			history: []out{{"c1", "one"}},
			backlog: []string{"web.1 | one"},
			steps: []step{
				{switchTo: []string{"c1", "c2"}, print: []out{{"c2", "two up"}, {"c1", "one still"}},
					want: []string{"web.2 | two up", "web.1 | one still"}},
				{switchTo: []string{"c2"}, print: []out{{"c1", "gone"}, {"c2", "two only"}},
					want: []string{"web.2 | two only"}},
			},
		},
		{
			name:    "a sleeping app keeps its viewers; they see lines after the wake",
			active:  []string{"c1", "c2"},
			history: []out{{"c1", "up"}},
			backlog: []string{"web.1 | up"},
			steps: []step{
				{switchTo: []string{}}, // its containers stop: nothing to follow
				{switchTo: []string{"c1"}, print: []out{{"c1", "woke"}}, want: []string{"web.1 | woke"}},
			},
		},
		{
			name:    "a replica whose follow ended is followed again without repeats",
			active:  []string{"c1", "c2"},
			backlog: nil,
			steps: []step{
				{print: []out{{"c1", "before"}}, want: []string{"web.1 | before"}},
				{stop: "c1", print: []out{{"c1", "after restart"}, {"c2", "other"}},
					want: []string{"web.1 | after restart", "web.2 | other"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(tt.active...)
			for _, o := range tt.history {
				src.print(o.id, o.text)
			}
			h := NewHub(src, Options{Retry: 10 * time.Millisecond})
			var viewers []*Viewer
			for range 3 {
				lines, v, err := h.Subscribe(context.Background(), "app", time.Time{}, -1)
				if err != nil {
					t.Fatal(err)
				}
				defer v.Close()
				var got []string
				for _, l := range lines {
					got = append(got, l.Format(true))
				}
				if !equal(got, tt.backlog) {
					t.Fatalf("backlog %q, want %q", got, tt.backlog)
				}
				viewers = append(viewers, v)
			}
			following := tt.active
			src.waitFollowing(t, following...)
			for i, s := range tt.steps {
				if s.switchTo != nil {
					following = s.switchTo
					src.setActive(following...)
					h.Switch("app", containers(following...))
					src.waitFollowing(t, following...)
				}
				if s.stop != "" {
					before := src.followCount()
					src.stop(s.stop)
					src.waitFollows(t, before+1) // followed again
					src.waitFollowing(t, following...)
				}
				for _, o := range s.print {
					src.print(o.id, o.text)
				}
				for j, v := range viewers {
					// Replicas are followed concurrently: their lines interleave as they arrive.
					if got := formatted(t, v, len(s.want)); !equal(sorted(got), sorted(s.want)) {
						t.Fatalf("step %d viewer %d got %q, want %q", i, j, got, s.want)
					}
				}
			}
			for j, v := range viewers {
				select {
				case l := <-v.C:
					t.Fatalf("viewer %d got an extra line %q", j, l.Format(true))
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func (s *fakeSource) followCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.follows
}

func (s *fakeSource) waitFollows(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.followCount() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d follows, want %d", s.followCount(), n)
		}
	}
}

// skewSource delivers lines of two replicas out of time order, as two
// engine followers do when one lags.
type skewSource struct{ lines map[string][]Line }

func (s skewSource) ActiveContainers(string) ([]Container, error) {
	return containers("c1", "c2"), nil
}

func (s skewSource) TimedLogs(ctx context.Context, id string, since time.Time, tail int, follow bool, w io.Writer) error {
	if !follow {
		return nil
	}
	if id == "c2" {
		time.Sleep(50 * time.Millisecond) // c2's follower lags behind c1's
	}
	for _, l := range s.lines[id] {
		fmt.Fprintf(w, "%s %s\n", l.Time.Format(time.RFC3339Nano), l.Text)
	}
	<-ctx.Done()
	return nil
}

func TestFeedTimesOnlyGrowSoResumeIsExact(t *testing.T) {
	src := skewSource{lines: map[string][]Line{
		"c1": {{Time: t0.Add(2 * time.Millisecond), Text: "c1 late stamp"}},
		"c2": {{Time: t0.Add(1 * time.Millisecond), Text: "c2 early stamp, arrives last"}},
	}}
	h := NewHub(src, Options{})
	got, v, err := h.Subscribe(context.Background(), "app", time.Time{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for len(got) < 2 { // c1's line may come with the backlog
		got = append(got, <-v.C)
	}
	first, second := got[0], got[1]
	if first.Text != "c1 late stamp" || !second.Time.After(first.Time) {
		t.Fatalf("lines %+v then %+v: feed times must grow in arrival order", first, second)
	}
	// A viewer that saw only the first line resumes with the second.
	lines, v2, err := h.Subscribe(context.Background(), "app", first.Time, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	if got := texts(lines); !equal(got, []string{second.Text}) {
		t.Fatalf("resumed with %q, want only %q", got, second.Text)
	}
}

func TestLineFormat(t *testing.T) {
	tests := []struct {
		line  Line
		multi bool
		want  string
	}{
		{Line{Text: "listening", Replica: "web.2"}, true, "web.2 | listening"},
		{Line{Text: "listening", Replica: "web.2"}, false, "listening"},
		{Line{Text: "no label"}, true, "no label"},
	}
	for _, tt := range tests {
		if got := tt.line.Format(tt.multi); got != tt.want {
			t.Errorf("%+v.Format(%v) = %q, want %q", tt.line, tt.multi, got, tt.want)
		}
	}
}
