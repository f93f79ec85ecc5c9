package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plat-paas/plat/store"
)

func TestValidateDomain(t *testing.T) {
	const base, app = "localhost", "shop"
	for _, tc := range []struct {
		in, want, err string
	}{
		{"www.example.com", "www.example.com", ""},
		{"WWW.Example.COM.", "www.example.com", ""},
		{"a.b.test", "a.b.test", ""},
		{"shop.test", "shop.test", ""},
		{"123.example.com", "123.example.com", ""}, // a numeric label is fine, a numeric TLD is not
		{"example.com123", "example.com123", ""},
		{"", "", "empty"},
		{"example", "", "not a full host name"},
		{"not a host.com", "", "not a valid host name"},
		{"bad-.example.com", "", "not a valid host name"},
		{"a..example.com", "", "not a valid host name"},
		{".example.com", "", "not a valid host name"},
		{"under_score.example.com", "", "not a valid host name"},
		{"a\x00b.example.com", "", "not a valid host name"},
		{"a\r\n.example.com", "", "not a valid host name"},
		{strings.Repeat("a", 63) + ".com", strings.Repeat("a", 63) + ".com", ""},
		{strings.Repeat("a", 64) + ".com", "", "not a valid host name"},
		{strings.Repeat("abcdefgh.", 27) + "com", strings.Repeat("abcdefgh.", 27) + "com", ""}, // 246
		{strings.Repeat("abcdefgh.", 30) + "com", "", "longer than 253"},
		{"192.168.1.1", "", "IP address"},
		{"[::1]", "", "IP address"},
		{"123.456", "", "ends in a number"},
		{"1.2.3.4.5", "", "ends in a number"},
		{"0x7f.1", "", "ends in a number"},
		{"a.0x7f", "", "ends in a number"},
		{"*.example.com", "", "wildcard"},
		// Internationalized names: typed in Unicode, or as exact punycode.
		{"bücher.example", "xn--bcher-kva.example", ""},
		{"BÜCHER.example", "xn--bcher-kva.example", ""},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", ""},
		{"xn--zz.example", "", "not a valid internationalized host name"},
		{"xn--.example", "", "not a valid host name"},
		{"xn--abc-.example", "", "not a valid host name"},
		{"xn--ls8h.example", "xn--ls8h.example", ""},                         // an emoji label: punycode that round-trips
		{"xn--a-ecp.example", "", "not a valid internationalized host name"}, // decodes to a disallowed rune
		{"xn--abc.example", "", "not a valid internationalized host name"},   // decodes to C1 control characters
		{"ab--cd.example", "", "not a valid internationalized host name"},
		{"xn--80ak6aa92e.com", "xn--80ak6aa92e.com", ""}, // "аррӏе" in Cyrillic: valid IDNA (homographs are the registrar's business)
		{"a\u200b.example", "a.example", ""},             // mapped away as browsers do
		// plat's namespace under the base domain.
		{"localhost", "", "not a full host name"},
		{"LOCALHOST.", "", "not a full host name"},
		{"other.localhost", "", "reserved: names directly under localhost are the default hosts"},
		{"shop.localhost", "", "already the default host of shop"},
		{"plat.localhost", "", "belong to plat's dashboard"},
		{"x.plat.localhost", "", "belong to plat's dashboard"},
		{"a.b.plat.localhost", "", "belong to plat's dashboard"},
		{"x.other.localhost", "", "under other.localhost, the default host of app other"},
		{"x.www.localhost", "", "the default host of app www"},
		{"api.shop.localhost", "api.shop.localhost", ""},
		{"v8.shop.localhost", "", "preview host"},
		{"v.shop.localhost", "v.shop.localhost", ""},
		{"x.v8.shop.localhost", "x.v8.shop.localhost", ""},
		{"a.b.shop.localhost", "a.b.shop.localhost", ""},
		{"shop.localhost.example", "shop.localhost.example", ""},
		{"notlocalhost.test", "notlocalhost.test", ""},
	} {
		got, err := ValidateDomain(tc.in, base, app)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("ValidateDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("ValidateDomain(%q) = %q, %v; want ErrInvalidDomain containing %q", tc.in, got, err, tc.err)
		}
	}
	// A base domain with several labels: names above it are outside plat's namespace.
	for in, want := range map[string]string{"example.com": "example.com", "x.apps.example.com": "", "x.plat.apps.example.com": "", "www.example.com": "www.example.com"} {
		got, err := ValidateDomain(in, "apps.example.com", app)
		if (err == nil) != (want != "") || got != want {
			t.Errorf("ValidateDomain(%q, apps.example.com) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestValidateHealth(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		hc   store.HealthCheck
		err  string // "" = accepted
	}{
		{"defaults", store.HealthCheck{}, ""},
		{"usual", store.HealthCheck{Path: "/up?full=1", Timeout: 2 * time.Second, Interval: 500 * ms, Deadline: time.Minute}, ""},
		{"bounds inclusive", store.HealthCheck{Timeout: 100 * ms, Interval: 100 * ms, Deadline: 15 * time.Minute}, ""},
		{"max timeout", store.HealthCheck{Timeout: 60 * time.Second}, ""},
		{"interval 1ns", store.HealthCheck{Interval: 1}, "interval 1ns is too short: give 100ms or more"},
		{"interval 99ms", store.HealthCheck{Interval: 99 * ms}, "too short"},
		{"timeout too short", store.HealthCheck{Timeout: 10 * ms}, "timeout 10ms is out of range: give 100ms to 1m0s"},
		{"timeout too long", store.HealthCheck{Timeout: 61 * time.Second}, "out of range"},
		{"deadline 10000h", store.HealthCheck{Deadline: 10000 * time.Hour}, "deadline 10000h0m0s is out of range: give at most 15m0s"},
		{"negative", store.HealthCheck{Deadline: -time.Second}, "out of range"},
		{"deadline below interval", store.HealthCheck{Interval: 2 * time.Second, Deadline: time.Second}, "shorter than the interval"},
		{"interval above default deadline", store.HealthCheck{Interval: 2 * time.Minute}, "deadline 1m0s is shorter than the interval 2m0s"},
		{"relative path", store.HealthCheck{Path: "up"}, "must start with /"},
		{"CRLF", store.HealthCheck{Path: "/up\r\nX-Evil: 1"}, "control"},
		{"LF", store.HealthCheck{Path: "/up\n"}, "control"},
		{"NUL", store.HealthCheck{Path: "/up\x00"}, "control"},
		{"space", store.HealthCheck{Path: "/up now"}, "space"},
		{"tab", store.HealthCheck{Path: "/up\t"}, "control"},
		{"DEL", store.HealthCheck{Path: "/up\x7f"}, "control"},
		{"non-ASCII", store.HealthCheck{Path: "/é"}, "non-ASCII"},
		{"fragment", store.HealthCheck{Path: "/up#x"}, "'#'"},
		{"too long", store.HealthCheck{Path: "/" + strings.Repeat("a", MaxHealthPathLen)}, "at most 1024"},
		{"bad escape", store.HealthCheck{Path: "/%zz"}, "not a valid request path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateHealth(tc.hc)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("ValidateHealth(%+v): %v", tc.hc, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalidHealth) {
				t.Fatalf("ValidateHealth(%+v) = %v; want ErrInvalidHealth containing %q", tc.hc, err, tc.err)
			}
		})
	}
}

// TestStoredHealthClamped: settings stored before the bounds existed are
// used within them, and ClampHealth turns them into valid settings.
func TestStoredHealthClamped(t *testing.T) {
	old := store.HealthCheck{Path: "/up\r\nX: y", Timeout: time.Nanosecond, Interval: time.Nanosecond, Deadline: 10000 * time.Hour}
	got := withHealthDefaults(old)
	want := store.HealthCheck{Path: "/", Timeout: MinHealthTimeout, Interval: MinHealthInterval, Deadline: MaxHealthDeadline}
	if got != want {
		t.Errorf("withHealthDefaults(%+v) = %+v; want %+v", old, got, want)
	}
	if err := ValidateHealth(ClampHealth(old)); err != nil {
		t.Errorf("ClampHealth(%+v) = %+v is refused: %v", old, ClampHealth(old), err)
	}
	if c := ClampHealth(store.HealthCheck{Interval: time.Nanosecond}); c != (store.HealthCheck{Interval: MinHealthInterval}) {
		t.Errorf("ClampHealth keeps zero fields zero: got %+v", c)
	}
	if c := ClampHealth(store.HealthCheck{Interval: 5 * time.Minute}); ValidateHealth(c) != nil {
		t.Errorf("ClampHealth(interval 5m) = %+v, refused: %v", c, ValidateHealth(c))
	}
}

// TestStoredTinyIntervalDoesNotSpin: an app stored with interval 1ns (the
// audit's CPU burner) probes a few times in 400ms, not thousands.
func TestStoredTinyIntervalDoesNotSpin(t *testing.T) {
	var attempts atomic.Int32
	h := healthChecker{
		check: store.HealthCheck{Interval: time.Nanosecond, Deadline: 400 * time.Millisecond},
		probe: func(context.Context) (int, error) { attempts.Add(1); return 503, nil },
		alive: func(context.Context) error { return nil },
	}
	if err := h.wait(context.Background()); err == nil {
		t.Fatal("wait succeeded against a probe that always answers 503")
	}
	// 20+40+80+100+100 ms of pauses: about 6 probes.
	if n := attempts.Load(); n > 10 {
		t.Errorf("%d probes in 400ms with a stored interval of 1ns; want at most 10", n)
	}
}

func TestValidateAppName(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "my-app": true, "app2": true, strings.Repeat("a", 63): true,
		"": false, "My": false, "2app": false, "app-": false, "a_b": false, "a.b": false,
		strings.Repeat("a", 64): false, "plat": false,
	} {
		if err := ValidateAppName(name); (err == nil) != ok {
			t.Errorf("ValidateAppName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestValidateEnvKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"DATABASE_URL", true}, {"GREETING", true}, {"_x", true}, {"a1", true},
		{"", false}, {"1A", false}, {"9", false}, {"A=B", false}, {"A\x00B", false},
		{"A B", false}, {"A-B", false}, {"Ä", false}, {"PORT", false},
	} {
		err := ValidateEnvKey(tc.key)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
			t.Errorf("ValidateEnvKey(%q) = %v; want ok=%v", tc.key, err, tc.ok)
		}
	}
}

func TestValidateConfigChange(t *testing.T) {
	big := strings.Repeat("x", MaxEnvValueBytes)
	// Eight values of 32 KiB minus their keys fill the 256 KiB exactly.
	full := map[string]string{}
	for i := range 8 {
		k := fmt.Sprintf("K%d", i)
		full[k] = big[:MaxEnvValueBytes-len(k)]
	}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		change ConfigChange
		err    string
		want   map[string]string
	}{
		{name: "set and unset", env: map[string]string{"A": "1", "B": "2"},
			change: ConfigChange{Set: map[string]string{"C": "3"}, Unset: []string{"A"}}, want: map[string]string{"B": "2", "C": "3"}},
		{name: "value of 32 KiB", change: ConfigChange{Set: map[string]string{"V": big}}, want: map[string]string{"V": big}},
		{name: "value over 32 KiB", change: ConfigChange{Set: map[string]string{"V": big + "x"}}, err: "the value of V is 32769 bytes; the limit is 32768"},
		{name: "NUL", change: ConfigChange{Set: map[string]string{"V": "a\x00b"}}, err: "NUL byte at offset 1"},
		{name: "bad key", change: ConfigChange{Set: map[string]string{"1X": "a"}}, err: "not a valid environment variable name"},
		{name: "bad unset key", change: ConfigChange{Unset: []string{"A=B"}}, err: "not a valid environment variable name"},
		{name: "total at the limit", env: full, change: ConfigChange{Set: map[string]string{}}, want: full},
		{name: "total over the limit", env: full, change: ConfigChange{Set: map[string]string{"Z": "1"}}, err: "262146 bytes of keys and values; the limit is 262144"},
		{name: "unset makes room", env: full, change: ConfigChange{Set: map[string]string{"Z": "1"}, Unset: []string{"K0"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ValidateConfigChange(tc.env, tc.change)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("error %v; want ErrInvalidConfig containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && !maps.Equal(got, tc.want) {
				t.Errorf("env %v; want %v", got, tc.want)
			}
		})
	}
	env := map[string]string{"A": "1"}
	if _, err := ValidateConfigChange(env, ConfigChange{Set: map[string]string{"A": "2"}, Unset: []string{"A"}}); err != nil || env["A"] != "1" {
		t.Errorf("the current env was changed: %v, %v", env, err)
	}
}
