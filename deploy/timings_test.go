package deploy

import (
	"testing"
	"time"
)

func TestProbePause(t *testing.T) {
	tests := []struct {
		attempt  int
		interval time.Duration
		want     time.Duration
	}{
		{1, 200 * time.Millisecond, 20 * time.Millisecond},
		{2, 200 * time.Millisecond, 40 * time.Millisecond},
		{4, 200 * time.Millisecond, 160 * time.Millisecond},
		{5, 200 * time.Millisecond, 200 * time.Millisecond},
		{100, 200 * time.Millisecond, 200 * time.Millisecond},
		{1, 5 * time.Millisecond, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := probePause(tt.attempt, tt.interval); got != tt.want {
			t.Errorf("probePause(%d, %s) = %s, want %s", tt.attempt, tt.interval, got, tt.want)
		}
	}
}

func TestTimingsString(t *testing.T) {
	tests := []struct {
		phases []phase
		want   string
	}{
		{nil, "total 0s"},
		{[]phase{{"build", 310 * time.Millisecond}, {"switch", 1234 * time.Microsecond}}, "build 310ms, switch 1.2ms, total 311ms"},
		{[]phase{{"switch", 23456 * time.Nanosecond}}, "switch 23µs, total 23µs"},
	}
	for _, tt := range tests {
		tm := &timings{phases: tt.phases}
		if got := tm.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
