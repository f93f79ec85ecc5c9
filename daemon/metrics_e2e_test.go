package daemon_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// appMetrics is the part of GET /api/apps/{app}/metrics the test reads.
type appMetrics struct {
	Totals struct {
		Requests    uint64  `json:"requests"`
		Status2xx   uint64  `json:"status_2xx"`
		Status5xx   uint64  `json:"status_5xx"`
		ProxyErrors uint64  `json:"proxy_errors"`
		Bytes       uint64  `json:"bytes"`
		P99Ms       float64 `json:"p99_ms"`
	} `json:"totals"`
	Points   []json.RawMessage `json:"points"`
	Releases []struct {
		Release string `json:"release"`
		Totals  struct {
			Requests uint64 `json:"requests"`
		} `json:"totals"`
	} `json:"releases"`
	RouterLogs bool `json:"router_logs"`
}

// TestRouterLogsAndMetrics: the router's request lines reach `plat logs`
// (and only with --source router), `plat metrics` counts the traffic per
// app and release across a deploy, and /metrics serves it to Prometheus
// with a token (401 without) and on the --metrics-addr loopback listener.
func TestRouterLogsAndMetrics(t *testing.T) {
	t.Parallel()
	metricsAddr := freePort(t)
	d := startDaemon(t, "--metrics-addr", metricsAddr)
	r := d.deployedApp("traffic", "1") // 1 request (200)
	for range 5 {
		if code, _, err := d.get("traffic", "/hello/world?token=secret"); err != nil || code != 200 {
			t.Fatalf("GET: %d %v", code, err)
		}
	}
	// Response headers over the router's limit: it answers 502 itself.
	if code, _, _ := d.get("traffic", "/?hugeheader=2000000"); code != http.StatusBadGateway {
		t.Fatalf("huge header: %d, want 502", code)
	}

	line := regexp.MustCompile(`(?m)^router \| GET /hello/world 200 \d+(ms|µs) \d+(\.\d)?K?B client=127\.0\.0\.1 release=v1 replica=web\.1$`)
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for {
		out = d.mustPlat("logs", "traffic", "--source", "router")
		if len(line.FindAllString(out, -1)) == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plat logs --source router: want 5 lines matching %s, got:\n%s", line, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !regexp.MustCompile(`(?m)^router \| GET / 502 `).MatchString(out) {
		t.Errorf("no 502 line:\n%s", out)
	}
	if strings.Contains(out, "secret") || strings.Contains(out, "starting in mode") {
		t.Errorf("router lines leak the query or include app output:\n%s", out)
	}
	if app := d.mustPlat("logs", "traffic", "--source", "app"); strings.Contains(app, "router |") || !strings.Contains(app, "starting in mode") {
		t.Errorf("plat logs --source app:\n%s", app)
	}
	if all := d.mustPlat("logs", "traffic"); !strings.Contains(all, "router | GET /hello/world 200") || !strings.Contains(all, "starting in mode") {
		t.Errorf("plat logs shows both sources:\n%s", all)
	}

	var m appMetrics
	if err := json.Unmarshal([]byte(d.mustPlat("metrics", "traffic", "--json")), &m); err != nil {
		t.Fatal(err)
	}
	if m.Totals.Requests != 7 || m.Totals.Status2xx != 6 || m.Totals.Status5xx != 1 || m.Totals.ProxyErrors != 1 ||
		m.Totals.Bytes == 0 || m.Totals.P99Ms <= 0 || len(m.Points) == 0 || !m.RouterLogs {
		t.Errorf("plat metrics --json: %+v", m)
	}
	if len(m.Releases) != 1 || m.Releases[0].Release != "v1" || m.Releases[0].Totals.Requests != 7 {
		t.Errorf("releases: %+v", m.Releases)
	}
	if human := d.mustPlat("metrics", "traffic", "--since", "15m"); !strings.Contains(human, "total") || !strings.Contains(human, "v1") {
		t.Errorf("plat metrics:\n%s", human)
	}
	if out, err := d.plat("metrics", "traffic", "--since", "48h"); err == nil || !strings.Contains(out, "24h") {
		t.Errorf("--since 48h: %v\n%s", err, out)
	}

	// Prometheus: with the token on the API, without on --metrics-addr.
	scrape := func(url, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := scrape("http://"+d.apiAddr+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d, want 401", code)
	}
	for _, url := range []string{"http://" + d.apiAddr + "/metrics", "http://" + metricsAddr + "/metrics"} {
		token := d.token
		if strings.Contains(url, metricsAddr) {
			token = ""
		}
		code, body := scrape(url, token)
		for _, want := range []string{
			`plat_http_requests_total{app="traffic",status_class="2xx"} 6`,
			`plat_http_requests_total{app="traffic",status_class="5xx"} 1`,
			`plat_http_proxy_errors_total{app="traffic"} 1`,
			`plat_http_release_requests_total{app="traffic",release="v1",status_class="2xx"} 6`,
			`plat_http_request_duration_seconds_count{app="traffic"} 7`,
			`plat_deploys_total{app="traffic",cause="push",outcome="succeeded"} 1`,
			`plat_deploy_duration_seconds_count{app="traffic",outcome="succeeded"} 1`,
			"go_goroutines ", "process_resident_memory_bytes ",
		} {
			if code != 200 || !strings.Contains(body, want) {
				t.Errorf("%s: %d, no %q in:\n%.3000s", url, code, want, body)
			}
		}
		// The app's requests (GETs) took the router's fast front end.
		served := 0
		if m := regexp.MustCompile(`plat_router_fast_path_total\{outcome="served"\} (\d+)`).FindStringSubmatch(body); len(m) == 2 {
			served, _ = strconv.Atoi(m[1])
		}
		if served < 7 {
			t.Errorf("%s: the fast path served %d requests, want at least the test's 7", url, served)
		}
	}

	// A deploy: the app's totals go on, v2 counts its own, and v1 keeps
	// what it served though it left the route before a sample.
	r.commit("2", "")
	r.mustPush("main")
	d.mustServe("traffic", "version=2")
	m = appMetrics{}
	if err := json.Unmarshal([]byte(d.mustPlat("metrics", "traffic", "--json")), &m); err != nil {
		t.Fatal(err)
	}
	if m.Totals.Requests != 8 || len(m.Releases) != 2 || m.Releases[0].Release != "v1" || m.Releases[0].Totals.Requests != 7 ||
		m.Releases[1].Release != "v2" || m.Releases[1].Totals.Requests != 1 {
		t.Errorf("after the deploy: totals %+v releases %+v", m.Totals, m.Releases)
	}

	// Off: no more router lines.
	if out := d.mustPlat("logs:router", "traffic", "off"); !strings.Contains(out, "off") {
		t.Errorf("logs:router off: %s", out)
	}
	before := strings.Count(d.mustPlat("logs", "traffic", "--source", "router"), "\n")
	d.mustServe("traffic", "version=2")
	time.Sleep(300 * time.Millisecond)
	if after := strings.Count(d.mustPlat("logs", "traffic", "--source", "router"), "\n"); after != before {
		t.Errorf("router lines went on after logs:router off: %d → %d", before, after)
	}
}
