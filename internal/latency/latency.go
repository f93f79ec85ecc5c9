// Package latency records durations in a fixed log-linear histogram.
//
// Recording is lock-free (one atomic add per bucket and one for the sum),
// so it fits a request path. A Snapshot is a plain value: the difference of
// two cumulative snapshots (Sub) describes the interval between them, e.g.
// "the p99 of this canary step".
//
// Buckets: durations below 8 ns have one bucket each; above, every power of
// two is split into 8 equal buckets, so a bucket is at most 12.5% wide and
// Quantile, which answers a bucket's midpoint, is within ±6.25% of the true
// value. Durations of MaxTracked or more share the last bucket.
package latency

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits  = 3
	subCount = 1 << subBits // buckets per power of two
	// maxExp is the largest power of two with its own buckets: 2^40 ns
	// (~18 min). Longer durations count in the last bucket.
	maxExp = 40
	// NumBuckets is the number of buckets of a histogram.
	NumBuckets = (maxExp-subBits+1)*subCount + subCount
)

// MaxTracked is the lower bound of the last bucket: longer durations are
// counted but their quantiles read as about this value.
var MaxTracked = time.Duration(lowerBound(NumBuckets - 1))

// Histogram counts durations. The zero value is ready to use; it is safe
// for concurrent use and must not be copied after first use.
type Histogram struct {
	counts [NumBuckets]atomic.Uint64
	sum    atomic.Uint64 // nanoseconds
}

// Record counts one duration; a negative one counts as 0.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[index(v)].Add(1)
	h.sum.Add(v)
}

// Snapshot returns the counts so far. Concurrent Records may or may not be
// in it (each bucket is read atomically, not all of them at one instant).
func (h *Histogram) Snapshot() Snapshot {
	var s Snapshot
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// Snapshot is a histogram's counts at one moment (cumulative since the
// histogram was created), or the difference of two such (Sub).
type Snapshot struct {
	Counts [NumBuckets]uint64
	Sum    time.Duration // of all recorded durations
}

// Sub returns the durations recorded after older was taken: s - older,
// bucket by bucket. older must be an earlier snapshot of the same histogram.
func (s Snapshot) Sub(older Snapshot) Snapshot {
	var d Snapshot
	for i := range s.Counts {
		if s.Counts[i] > older.Counts[i] {
			d.Counts[i] = s.Counts[i] - older.Counts[i]
		}
	}
	d.Sum = max(s.Sum-older.Sum, 0)
	return d
}

// Count returns how many durations the snapshot holds.
func (s Snapshot) Count() uint64 {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// Mean returns the average duration, 0 for an empty snapshot.
func (s Snapshot) Mean() time.Duration {
	n := s.Count()
	if n == 0 {
		return 0
	}
	return s.Sum / time.Duration(n)
}

// Quantile returns the duration below which a fraction q (0..1) of the
// recorded durations fall: the midpoint of the bucket holding the
// ceil(q·n)-th smallest one. It returns 0 for an empty snapshot.
func (s Snapshot) Quantile(q float64) time.Duration {
	n := s.Count()
	if n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := max(uint64(math.Ceil(q*float64(n))), 1)
	var seen uint64
	for i, c := range s.Counts {
		if seen += c; seen >= rank {
			lo, hi := lowerBound(i), lowerBound(i+1)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return MaxTracked // not reached
}

// index returns the bucket of v nanoseconds.
func index(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - 1 // v >= 2^e, e >= subBits
	if e > maxExp {
		return NumBuckets - 1
	}
	mant := int(v>>(e-subBits)) & (subCount - 1)
	return (e-subBits+1)*subCount + mant
}

// lowerBound returns the smallest value of bucket i (i may be NumBuckets,
// the end of the last bucket).
func lowerBound(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	e := i/subCount + subBits - 1
	mant := uint64(i % subCount)
	return (subCount + mant) << (e - subBits)
}

// CountBelow returns how many durations fell in buckets that end at or
// before d: exactly those < d when d is a bucket boundary (every power of
// two nanoseconds is), for cumulative histogram buckets (Prometheus' le).
func (s Snapshot) CountBelow(d time.Duration) uint64 {
	var n uint64
	for i, c := range s.Counts {
		if lowerBound(i+1) > uint64(max(d, 0)) {
			break
		}
		n += c
	}
	return n
}
