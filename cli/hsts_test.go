package cli

import (
	"strings"
	"testing"
	"time"
)

func TestParseLongDuration(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1y", 365 * day, true},
		{"2y", 730 * day, true},
		{"180d", 180 * day, true},
		{"0.5d", 12 * time.Hour, true},
		{"12h", 12 * time.Hour, true},
		{"0d", 0, false},
		{"-1y", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := parseLongDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseLongDuration(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestHSTSSetRejectedLocally: bad arguments never reach the daemon.
func TestHSTSSetRejectedLocally(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"hsts:set", "web"}, "usage: plat hsts:set NAME on|off [--max-age 1y]"},
		{[]string{"hsts:set", "web", "maybe"}, "say on or off: plat hsts:set web on [--max-age 1y]"},
		{[]string{"hsts:set", "web", "on", "--max-age", "forever"}, `--max-age "forever": give a positive duration like 1y, 180d or 12h`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFake(t, nil)
			_, errOut, code := run(tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.wantErr)
			}
			if reqs := f.requests(); len(reqs) != 0 {
				t.Errorf("sent %v", reqs)
			}
		})
	}
}
