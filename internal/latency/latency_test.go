package latency

import (
	"sync"
	"testing"
	"time"
)

func TestIndexBounds(t *testing.T) {
	// Every bucket's lower bound maps back to it, and the value just below
	// it to the previous bucket.
	for i := 1; i < NumBuckets; i++ {
		lo := lowerBound(i)
		if got := index(lo); got != i {
			t.Fatalf("index(lowerBound(%d)=%d) = %d", i, lo, got)
		}
		if got := index(lo - 1); got != i-1 {
			t.Fatalf("index(%d) = %d, want %d", lo-1, got, i-1)
		}
	}
	if got := index(1 << 62); got != NumBuckets-1 {
		t.Fatalf("huge value in bucket %d, want the last (%d)", got, NumBuckets-1)
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name  string
		durs  map[time.Duration]int // duration → how many
		q     float64
		want  time.Duration
		empty bool
	}{
		{name: "empty", q: 0.99, empty: true},
		{name: "one value", durs: map[time.Duration]int{10 * time.Millisecond: 1}, q: 0.5, want: 10 * time.Millisecond},
		{name: "p99 of 99 fast and 1 slow is fast", durs: map[time.Duration]int{time.Millisecond: 99, time.Second: 1}, q: 0.99, want: time.Millisecond},
		{name: "p99 of 98 fast and 2 slow is slow", durs: map[time.Duration]int{time.Millisecond: 98, time.Second: 2}, q: 0.99, want: time.Second},
		{name: "p50", durs: map[time.Duration]int{5 * time.Millisecond: 50, 200 * time.Millisecond: 50}, q: 0.5, want: 5 * time.Millisecond},
		{name: "p100 is the max", durs: map[time.Duration]int{5 * time.Millisecond: 50, 800 * time.Millisecond: 1}, q: 1, want: 800 * time.Millisecond},
		{name: "p0 is the min", durs: map[time.Duration]int{3 * time.Microsecond: 1, 800 * time.Millisecond: 10}, q: 0, want: 3 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			n := 0
			for d, k := range tt.durs {
				for range k {
					h.Record(d)
				}
				n += k
			}
			s := h.Snapshot()
			if got := s.Count(); got != uint64(n) {
				t.Fatalf("Count = %d, want %d", got, n)
			}
			got := s.Quantile(tt.q)
			if tt.empty {
				if got != 0 {
					t.Fatalf("Quantile of empty = %v, want 0", got)
				}
				return
			}
			if diff := float64(got-tt.want) / float64(tt.want); diff < -0.0625 || diff > 0.0625 {
				t.Fatalf("Quantile(%v) = %v, want %v ± 6.25%%", tt.q, got, tt.want)
			}
		})
	}
}

func TestSubIsTheInterval(t *testing.T) {
	var h Histogram
	for range 1000 {
		h.Record(2 * time.Millisecond)
	}
	before := h.Snapshot()
	for range 100 {
		h.Record(300 * time.Millisecond)
	}
	step := h.Snapshot().Sub(before)
	if step.Count() != 100 {
		t.Fatalf("step count = %d, want 100", step.Count())
	}
	if p := step.Quantile(0.5); p < 280*time.Millisecond || p > 320*time.Millisecond {
		t.Fatalf("step p50 = %v, want ~300ms (the earlier fast requests are not in the step)", p)
	}
	if m := step.Mean(); m != 300*time.Millisecond {
		t.Fatalf("step mean = %v, want 300ms", m)
	}
	if z := (Snapshot{}).Sub(h.Snapshot()); z.Count() != 0 || z.Sum != 0 {
		t.Fatalf("older minus newer = %d values, want none", z.Count())
	}
}

func TestConcurrentRecord(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if n := h.Snapshot().Count(); n != 8000 {
		t.Fatalf("Count = %d, want 8000", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(1)
		for pb.Next() {
			h.Record(d)
			d = d*3 + 7
			if d > time.Minute {
				d = 1
			}
		}
	})
}

func TestCountBelow(t *testing.T) {
	var h Histogram
	h.Record(time.Duration(1<<20) - 1) // just under 2^20 ns
	h.Record(time.Duration(1 << 20))   // exactly: in the next bucket
	h.Record(time.Second)
	s := h.Snapshot()
	for _, tt := range []struct {
		d    time.Duration
		want uint64
	}{{1 << 19, 0}, {1 << 20, 1}, {1 << 21, 2}, {1 << 29, 2}, {1 << 30, 3}} {
		if got := s.CountBelow(tt.d); got != tt.want {
			t.Errorf("CountBelow(2^%d ns) = %d, want %d", log2(tt.d), got, tt.want)
		}
	}
}

func log2(d time.Duration) int {
	n := 0
	for d > 1 {
		d >>= 1
		n++
	}
	return n
}
