package deploy

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/plat-paas/plat/store"
)

// FuzzValidateDomain: whatever a client sends, an accepted domain is a
// normalized host name outside plat's namespace, and normalizing it again
// changes nothing.
func FuzzValidateDomain(f *testing.F) {
	for _, s := range []string{
		"www.example.com", "WWW.Example.COM.", "bücher.example", "xn--bcher-kva.example", "xn--zz.example",
		"123.456", "0x7f.1", "[::1]", "x.plat.localhost", "api.shop.localhost", "a..b", "ab--cd.example",
		"a\u200b.example", "ＥＸＡＭＰＬＥ.com", "\u0130.example", "xn--ls8h.example",
	} {
		f.Add(s)
	}
	const base, app = "localhost", "shop"
	f.Fuzz(func(t *testing.T, in string) {
		h, err := ValidateDomain(in, base, app)
		if err != nil {
			if h != "" {
				t.Fatalf("ValidateDomain(%q) returned %q with error %v", in, h, err)
			}
			return
		}
		if len(h) > maxHostLen || h != strings.ToLower(h) || !utf8.ValidString(h) {
			t.Fatalf("ValidateDomain(%q) = %q: not a lower-case name of at most %d bytes", in, h, maxHostLen)
		}
		labels := strings.Split(h, ".")
		if len(labels) < 2 {
			t.Fatalf("ValidateDomain(%q) = %q: fewer than two labels", in, h)
		}
		for _, l := range labels {
			if l == "" || len(l) > maxLabelLen || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
				t.Fatalf("ValidateDomain(%q) = %q: bad label %q", in, h, l)
			}
			for _, c := range []byte(l) {
				if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
					t.Fatalf("ValidateDomain(%q) = %q: byte %q in a label", in, h, c)
				}
			}
		}
		if net.ParseIP(h) != nil || numericTLDRE.MatchString(labels[len(labels)-1]) {
			t.Fatalf("ValidateDomain(%q) = %q: an address", in, h)
		}
		if h == base || strings.HasSuffix(h, "."+APIHostLabel+"."+base) || h == APIHostLabel+"."+base {
			t.Fatalf("ValidateDomain(%q) = %q: plat's own name", in, h)
		}
		if rest, ok := strings.CutSuffix(h, "."+base); ok && !strings.HasSuffix(rest, "."+app) {
			t.Fatalf("ValidateDomain(%q) = %q: under %s but not under %s.%s", in, h, base, app, base)
		}
		if again, err := ValidateDomain(h, base, app); err != nil || again != h {
			t.Fatalf("ValidateDomain(%q) = %q, but ValidateDomain(%q) = %q, %v", in, h, h, again, err)
		}
	})
}

// FuzzValidateConfigChange: an accepted change yields an env the engine
// can take: valid keys, no NUL, values and total within the limits.
func FuzzValidateConfigChange(f *testing.F) {
	f.Add("GREETING", "hello", "OLD", "x", "OLD")
	f.Add("A=B", "v", "", "", "")
	f.Add("1A", "v", "K", "v", "K")
	f.Add("K", "a\x00b", "", "", "")
	f.Add("_x", strings.Repeat("v", MaxEnvValueBytes), "Y", strings.Repeat("w", MaxEnvValueBytes), "PORT")
	f.Fuzz(func(t *testing.T, key, value, oldKey, oldValue, unset string) {
		env := map[string]string{oldKey: oldValue}
		got, err := ValidateConfigChange(env, ConfigChange{Set: map[string]string{key: value}, Unset: []string{unset}})
		if err != nil {
			return
		}
		if env[oldKey] != oldValue {
			t.Fatal("ValidateConfigChange changed the current env")
		}
		if got[key] != value && key != unset {
			t.Fatalf("set %q=%q is missing from %v", key, value, got)
		}
		for _, k := range []string{key, unset} {
			if k == "" || k == "PORT" || strings.ContainsAny(k, "=\x00") || (k[0] >= '0' && k[0] <= '9') {
				t.Fatalf("accepted key %q", k)
			}
		}
		if strings.IndexByte(value, 0) >= 0 || len(value) > MaxEnvValueBytes {
			t.Fatalf("accepted a value of %d bytes with NUL %v", len(value), strings.IndexByte(value, 0) >= 0)
		}
		total := 0
		for k, v := range got {
			total += len(k) + len(v)
		}
		if total > MaxEnvBytes {
			t.Fatalf("accepted an env of %d bytes", total)
		}
	})
}

// FuzzValidateHealthPath: an accepted path makes a probe request that
// net/http sends as it is, on one request line.
func FuzzValidateHealthPath(f *testing.F) {
	for _, s := range []string{"/", "/up?full=1", "/up\r\nX: y", "/a b", "/%zz", "//evil.example/x", "/é", "/#x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if path == "" || ValidateHealth(store.HealthCheck{Path: path}) != nil {
			return // "" is "the default path"
		}
		if strings.ContainsAny(path, " \r\n\t\x00#") || !strings.HasPrefix(path, "/") || len(path) > MaxHealthPathLen {
			t.Fatalf("accepted path %q", path)
		}
		req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:5000"+path, nil)
		if err != nil {
			t.Fatalf("accepted path %q, but the probe cannot be built: %v", path, err)
		}
		if req.URL.Host != "127.0.0.1:5000" {
			t.Fatalf("accepted path %q sends the probe to %q", path, req.URL.Host)
		}
	})
}
