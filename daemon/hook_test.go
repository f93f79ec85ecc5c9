package daemon

import "testing"

func TestSameRef(t *testing.T) {
	zero := "0000000000000000000000000000000000000000"
	sha := "0761b58c2b1f0d3e8e0e6f2b7f1b2c3d4e5f6a7b" // a leading zero, on purpose
	tests := []struct {
		current, seen string
		want          bool
	}{
		{"", zero, true},
		{sha, sha, true},
		{sha, zero, false},
		{"", sha, false},
		{"1761b58c2b1f0d3e8e0e6f2b7f1b2c3d4e5f6a7b", sha, false},
	}
	for _, tt := range tests {
		if got := sameRef(tt.current, tt.seen); got != tt.want {
			t.Errorf("sameRef(%q, %q) = %v, want %v", tt.current, tt.seen, got, tt.want)
		}
	}
}
