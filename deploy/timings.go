package deploy

import (
	"strings"
	"time"
)

// timings measures the phases of one deploy (build, start, health, switch,
// drain, cleanup) for the push output and the release's "timings" event.
type timings struct {
	last   time.Time
	phases []phase
}

type phase struct {
	name string
	took time.Duration
}

func newTimings() *timings { return &timings{last: time.Now()} }

// mark ends the phase called name, which began at the previous mark. A nil
// *timings ignores marks (replicas started beside the first one).
func (t *timings) mark(name string) {
	if t == nil {
		return
	}
	now := time.Now()
	t.phases = append(t.phases, phase{name, now.Sub(t.last)})
	t.last = now
}

// String lists the phases, e.g. "build 310ms, start 120ms, total 430ms".
func (t *timings) String() string {
	var b strings.Builder
	var total time.Duration
	for _, p := range t.phases {
		b.WriteString(p.name + " " + roundDuration(p.took).String() + ", ")
		total += p.took
	}
	b.WriteString("total " + roundDuration(total).String())
	return b.String()
}

// roundDuration keeps durations readable: 1µs below 1ms (the switch takes
// microseconds), 0.1ms below 10ms, else 1ms.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	if d < 10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
