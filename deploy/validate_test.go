package deploy

import (
	"strings"
	"testing"
)

func TestValidateDomain(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"www.example.com", "www.example.com", ""},
		{"WWW.Example.COM.", "www.example.com", ""},
		{"a.b.localhost", "a.b.localhost", ""},
		{"shop.test", "shop.test", ""},
		{"", "", "empty"},
		{"example", "", "not a full host name"},
		{"not a host.com", "", "not a valid host name"},
		{"bad-.example.com", "", "not a valid host name"},
		{"a..example.com", "", "not a valid host name"},
		{"under_score.example.com", "", "not a valid host name"},
		{strings.Repeat("a", 64) + ".com", "", "not a valid host name"},
		{strings.Repeat("abcdefgh.", 30) + "com", "", "longer than"},
		{"192.168.1.1", "", "IP address"},
		{"*.example.com", "", "wildcard"},
		{"localhost", "", "not a full host name"},
		{"other.localhost", "", "reserved"},
		{"plat.localhost", "", "reserved"},
	} {
		got, err := ValidateDomain(tc.in, "localhost")
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("ValidateDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ValidateDomain(%q) error %v; want one containing %q", tc.in, err, tc.err)
		}
	}
}
