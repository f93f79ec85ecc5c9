package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestAPIRefusesBadInput sends out-of-bounds health checks, config, JSON
// bodies and domains to a real daemon: each gets its status and a reason,
// and nothing is stored or deployed. Release lists carry config keys, not
// values.
func TestAPIRefusesBadInput(t *testing.T) {
	t.Parallel() // its own daemon, ports and engine instance
	d := startDaemon(t)
	d.deployedApp("shop", "one")
	d.createApp("blog")

	type call struct {
		method, path, body string
		want               int
		msg                string
	}
	check := func(c call) string {
		t.Helper()
		code, body := d.apiCall(c.method, c.path, c.body)
		if code != c.want || !strings.Contains(body, c.msg) {
			t.Errorf("%s %s %.100q: %d %.300s; want %d with %q", c.method, c.path, c.body, code, body, c.want, c.msg)
		}
		return body
	}

	t.Run("health", func(t *testing.T) {
		for _, c := range []call{
			{body: `{"interval":"1ns"}`, want: 400, msg: "interval 1ns is too short: give 100ms or more"},
			{body: `{"deadline":"10000h"}`, want: 400, msg: "give at most 15m0s"},
			{body: `{"timeout":"90s"}`, want: 400, msg: "give 100ms to 1m0s"},
			{body: `{"interval":"2s","deadline":"1s"}`, want: 400, msg: "shorter than the interval"},
			{body: `{"path":"/up\r\nX-Evil: 1"}`, want: 400, msg: "control"},
			{body: `{"path":"/up now"}`, want: 400, msg: "space"},
			{body: `{"path":"/up","interval":"100ms","deadline":"15m"}`, want: 200, msg: `"path": "/up"`},
		} {
			c.method, c.path = http.MethodPut, "/api/apps/shop/health"
			check(c)
		}
	})

	releases := func() []map[string]any {
		t.Helper()
		code, body := d.apiCall(http.MethodGet, "/api/apps/shop/releases", "")
		var rs []map[string]any
		if err := json.Unmarshal([]byte(body), &rs); code != 200 || err != nil {
			t.Fatalf("releases: %d %v %s", code, err, body)
		}
		return rs
	}
	before := len(releases())

	t.Run("config", func(t *testing.T) {
		var huge strings.Builder
		for i := range 9 {
			fmt.Fprintf(&huge, `%q:%q,`, fmt.Sprintf("K%d", i), strings.Repeat("v", 32000))
		}
		for _, c := range []call{
			{body: `{"set":{"A":"x\u0000y"}}`, want: 400, msg: "the value of A has a NUL byte"},
			{body: `{"set":{"A":"` + strings.Repeat("v", 32<<10+1) + `"}}`, want: 400, msg: "the limit is 32768 (32 KiB)"},
			{body: `{"set":{` + strings.TrimSuffix(huge.String(), ",") + `}}`, want: 400, msg: "the limit is 262144 (256 KiB)"},
			{body: `{"set":{"1A":"x"}}`, want: 400, msg: "not a valid environment variable name"},
			{body: `{"unset":["A=B"]}`, want: 400, msg: "not a valid environment variable name"},
			{body: `{"set":{"A":"x"}} {"set":{"B":"y"}}`, want: 400, msg: "more than one JSON value"},
			{body: `{"set":{"A":"` + strings.Repeat("v", 3<<20) + `"}}`, want: 413, msg: "request body is over"},
		} {
			c.method, c.path = http.MethodPost, "/api/apps/shop/config"
			check(c)
		}
		if n := len(releases()); n != before {
			t.Errorf("refused config changes made releases: %d, was %d", n, before)
		}
		if _, body := d.apiCall(http.MethodGet, "/api/apps/shop/config", ""); strings.TrimSpace(body) != "{}" {
			t.Errorf("refused config changes were stored: %s", body)
		}
	})

	t.Run("releases carry config keys, not values", func(t *testing.T) {
		const secret = "s3cr3t-value-1234"
		body := check(call{http.MethodPost, "/api/apps/shop/config", `{"set":{"API_KEY":"` + secret + `"}}`, 200, `"config_keys":["API_KEY"]`})
		if strings.Contains(body, secret) {
			t.Errorf("config:set's answer holds the value:\n%s", body)
		}
		code, list := d.apiCall(http.MethodGet, "/api/apps/shop/releases", "")
		if code != 200 || strings.Contains(list, secret) || strings.Contains(list, `"env"`) {
			t.Errorf("releases hold config values:\n%s", list)
		}
		rs := releases()
		keys, _ := rs[len(rs)-1]["config_keys"].([]any)
		if len(keys) != 1 || keys[0] != "API_KEY" {
			t.Errorf("last release config_keys = %v; want [API_KEY]", rs[len(rs)-1]["config_keys"])
		}
		if _, cfg := d.apiCall(http.MethodGet, "/api/apps/shop/config", ""); !strings.Contains(cfg, secret) {
			t.Errorf("the config endpoint lost the value: %s", cfg)
		}
		if out := d.mustPlat("releases", "shop"); strings.Contains(out, secret) {
			t.Errorf("plat releases shows the value:\n%s", out)
		}
	})

	t.Run("domains", func(t *testing.T) {
		for _, c := range []call{
			{path: "shop", body: `{"domain":"x.plat.localhost"}`, want: 400, msg: "belong to plat's dashboard and API"},
			{path: "shop", body: `{"domain":"plat.localhost"}`, want: 400, msg: "belong to plat's dashboard and API"},
			{path: "shop", body: `{"domain":"x.blog.localhost"}`, want: 400, msg: "the default host of app blog"},
			{path: "shop", body: `{"domain":"123.456"}`, want: 400, msg: "ends in a number"},
			{path: "shop", body: `{"domain":"xn--zz.example"}`, want: 400, msg: "not a valid internationalized host name"},
			{path: "shop", body: `{"domain":"` + strings.Repeat("a", 64) + `.example"}`, want: 400, msg: "1-63 letters"},
			{path: "shop", body: `{"domain":"a.example"}trailing`, want: 400, msg: "unexpected data after the JSON object"},
			{path: "shop", body: `{"domain":"api.shop.localhost"}`, want: 201, msg: `"api.shop.localhost"`},
			{path: "shop", body: `{"domain":"www.example.com"}`, want: 201, msg: `"www.example.com"`},
			{path: "blog", body: `{"domain":"www.example.com"}`, want: 409, msg: "already belongs to app shop"},
			{path: "blog", body: `{"domain":"cdn.www.example.com"}`, want: 409, msg: "overlaps www.example.com of app shop"},
			{path: "blog", body: `{"domain":"example.com"}`, want: 409, msg: "overlaps www.example.com of app shop"},
			{path: "blog", body: `{"domain":"bücher.example"}`, want: 201, msg: `"xn--bcher-kva.example"`},
		} {
			c.method, c.path = http.MethodPost, "/api/apps/"+c.path+"/domains"
			check(c)
		}
		if code, body := d.getHost("api.shop.localhost", "/"); code != 200 || !strings.Contains(body, "version=one") {
			t.Errorf("api.shop.localhost answered %d %q; want shop", code, body)
		}
		var got struct{ Domains []string }
		_, body := d.apiCall(http.MethodGet, "/api/apps/blog/domains", "")
		if json.Unmarshal([]byte(body), &got); !slices.Equal(got.Domains, []string{"xn--bcher-kva.example"}) {
			t.Errorf("blog's domains: %s", body)
		}
	})

	t.Run("static lists no directory", func(t *testing.T) {
		for path, want := range map[string]int{"/static/": 404, "/static/app.js": 200} {
			resp, err := http.Get("http://" + d.apiAddr + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
			}
		}
	})
}
