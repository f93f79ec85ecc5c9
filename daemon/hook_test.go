package daemon

import "testing"

func TestSameRef(t *testing.T) {
	const zero = "0000000000000000000000000000000000000000"
	tests := []struct {
		current, old string
		want         bool
	}{
		{"", zero, true},
		{"09c9588aa", "09c9588aa", true}, // a SHA starting with 0 (once refused)
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"", "abc", false},
		{"abc", zero, false},
	}
	for _, tt := range tests {
		if got := sameRef(tt.current, tt.old); got != tt.want {
			t.Errorf("sameRef(%q, %q) = %v, want %v", tt.current, tt.old, got, tt.want)
		}
	}
}
