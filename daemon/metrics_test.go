package daemon

import (
	"strings"
	"testing"
)

func TestCheckMetricsAddr(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr string
	}{
		{"127.0.0.1:9100", ""},
		{"[::1]:9100", ""},
		{"localhost:9100", ""},
		{"127.0.0.2:9100", ""},
		{"0.0.0.0:9100", "loopback"},
		{":9100", "loopback"},
		{"10.0.0.5:9100", "loopback"},
		{"example.com:9100", "loopback"},
		{"127.0.0.1", "host:port"},
	}
	for _, tt := range tests {
		err := checkMetricsAddr(tt.addr)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.addr, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want one saying %q", tt.addr, err, tt.wantErr)
		}
	}
}
