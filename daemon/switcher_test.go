package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/router"
	"github.com/plat-paas/plat/store"
)

// newTestSwitcher returns a switcher over a real router and store, with an
// HTTP server in front of the router.
func newTestSwitcher(t *testing.T) (*switcher, *httptest.Server) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "plat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateApp(store.App{Name: "web", Domains: []string{"www.shop.test"}}); err != nil {
		t.Fatal(err)
	}
	rt := router.New(router.Options{Logger: slog.New(slog.DiscardHandler)})
	front := httptest.NewServer(rt)
	t.Cleanup(func() { front.Close(); rt.CloseIdleConnections() })
	return &switcher{router: rt, domain: "localhost", store: st}, front
}

// replica starts a backend answering name; release unblocks requests to
// ?slow=1.
func replica(t *testing.T, name string, release <-chan struct{}) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Query().Get("slow") != "" {
			<-release
		}
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func fetch(t *testing.T, front *httptest.Server, host, query string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/"+query, nil)
	req.Host = host
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", host, resp.StatusCode, b)
	}
	return string(b)
}

// TestSwitcherSplit: SwitchSplit routes both groups on every host of the
// app, keeps a backend's object when its address moves between groups (so
// a request in flight there is not drained nor lost from its counts), and
// drainOld waits only for the backends that left.
func TestSwitcherSplit(t *testing.T) {
	sw, front := newTestSwitcher(t)
	release := make(chan struct{})
	v1, v2 := replica(t, "v1", release), replica(t, "v2", release)

	steps := []struct {
		name      string
		split     deploy.Split
		wantLeft  []string // addresses drainOld waits for
		wantRoute string   // what a cookie in bucket 0 gets
	}{
		{"stable alone", deploy.Split{Stable: deploy.Group{Release: "v1", Addrs: []string{v1}}}, nil, "v1"},
		{"canary at 0%", deploy.Split{Stable: deploy.Group{Release: "v1", Addrs: []string{v1}}, Canary: &deploy.Group{Release: "v2", Addrs: []string{v2}}}, nil, "v1"},
		{"canary at 50%", deploy.Split{Stable: deploy.Group{Release: "v1", Addrs: []string{v1}}, Canary: &deploy.Group{Release: "v2", Addrs: []string{v2}}, Weight: 50}, nil, "v2"},
		{"promoted", deploy.Split{Stable: deploy.Group{Release: "v2", Addrs: []string{v2}}}, []string{v1}, "v2"},
	}
	var canaryObj *router.Backend
	for _, st := range steps {
		drain, err := sw.SwitchSplit("web", st.split)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for _, host := range []string{"web.localhost", "www.shop.test"} {
			req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
			req.Host = host
			req.Header.Set("Cookie", router.BucketCookie+"=0")
			resp, err := front.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != st.wantRoute {
				t.Errorf("%s: %s (bucket 0) served by %q, want %s", st.name, host, b, st.wantRoute)
			}
		}
		rt, _ := sw.router.Lookup("web.localhost")
		for _, b := range append(rt.Backends, canaryBackends(rt)...) {
			if b.Addr() == v2 {
				if canaryObj != nil && b != canaryObj {
					t.Errorf("%s: v2's backend object was replaced; its in-flight requests would be lost", st.name)
				}
				canaryObj = b
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := drain(ctx); err != nil {
			t.Errorf("%s: drain: %v", st.name, err)
		}
		cancel()
	}

	// A request in flight on v2 while a rehost and a plain Switch keep v2:
	// nothing to drain, the request finishes.
	done := make(chan string)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/?slow=1", nil)
		req.Host = "web.localhost"
		resp, err := front.Client().Do(req)
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	waitInFlight(t, canaryObj, 1)
	if err := sw.Rehost("web"); err != nil {
		t.Fatal(err)
	}
	drain, err := sw.Switch("web", []string{v2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := drain(ctx); err != nil {
		t.Errorf("Switch drained a backend that stayed: %v", err)
	}
	close(release)
	if got := <-done; got != "v2" {
		t.Errorf("the request in flight got %q", got)
	}
	if st, ok := sw.ReleaseStats("web", ""); !ok || st.Requests != 0 {
		t.Errorf("after Switch the unlabelled release has stats %+v, %v; want fresh ones", st, ok)
	}
}

func canaryBackends(rt router.Route) []*router.Backend {
	if rt.Canary == nil {
		return nil
	}
	return rt.Canary.Backends
}

func waitInFlight(t *testing.T, b *router.Backend, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.InFlight() != n {
		if time.Now().After(deadline) {
			t.Fatalf("backend %s: %d in flight, want %d", b.Addr(), b.InFlight(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSwitcherRehostKeepsSplit: a domain change while a canary runs keeps
// the split, its weight and its counters.
func TestSwitcherRehostKeepsSplit(t *testing.T) {
	sw, front := newTestSwitcher(t)
	v1, v2 := replica(t, "v1", nil), replica(t, "v2", nil)
	if _, err := sw.SwitchSplit("web", deploy.Split{Stable: deploy.Group{Release: "v1", Addrs: []string{v1}},
		Canary: &deploy.Group{Release: "v2", Addrs: []string{v2}}, Weight: 100}); err != nil {
		t.Fatal(err)
	}
	if got := fetch(t, front, "web.localhost", ""); got != "v2" {
		t.Fatalf("weight 100 served by %s", got)
	}
	if err := sw.store.UpdateApp("web", func(a *store.App) error { a.Domains = append(a.Domains, "new.shop.test"); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := sw.Rehost("web"); err != nil {
		t.Fatal(err)
	}
	if got := fetch(t, front, "new.shop.test", ""); got != "v2" {
		t.Errorf("after rehost the new domain is served by %s, want the canary at 100%%", got)
	}
	st, ok := sw.ReleaseStats("web", "v2")
	if !ok || st.Requests != 2 || st.Status2xx != 2 || st.Latency.Count() != 2 {
		t.Errorf("canary stats after rehost: %+v %v, want 2 requests carried over", st, ok)
	}
}

// TestSwitcherHold: requests during Hold wait for the next switch; the old
// backends are returned to drain.
func TestSwitcherHold(t *testing.T) {
	sw, front := newTestSwitcher(t)
	v1, v2 := replica(t, "v1", nil), replica(t, "v2", nil)
	if _, err := sw.SwitchSplit("web", deploy.Split{Stable: deploy.Group{Release: "v1", Addrs: []string{v1}}}); err != nil {
		t.Fatal(err)
	}
	drain, err := sw.Hold("web", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
		req.Host = "web.localhost"
		resp, err := front.Client().Do(req)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- resp.Status + " " + string(b)
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case g := <-got:
		t.Fatalf("a held request was answered before the switch: %s", g)
	default:
	}
	if _, err := sw.SwitchSplit("web", deploy.Split{Stable: deploy.Group{Release: "v2", Addrs: []string{v2}}}); err != nil {
		t.Fatal(err)
	}
	if g := <-got; !strings.HasSuffix(g, "v2") || !strings.HasPrefix(g, "200") {
		t.Fatalf("held request got %q, want 200 from v2", g)
	}
}

// TestSwitcherPreview: a release's preview host is a route of its own:
// it serves only its release, its requests are not counted as the app's,
// a production switch leaves it alone, and removing it leaves production.
func TestSwitcherPreview(t *testing.T) {
	sw, front := newTestSwitcher(t)
	v1, v2 := replica(t, "v1", nil), replica(t, "v2", nil)
	if _, err := sw.Switch("web", []string{v1}); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.SwitchPreview("web", 2, []string{v2}, false); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := fetch(t, front, "v2.web.localhost", ""); got != "v2" {
			t.Fatalf("v2.web.localhost answered %q", got)
		}
	}
	if got := fetch(t, front, "web.localhost", ""); got != "v1" {
		t.Errorf("web.localhost answered %q beside a preview; want v1", got)
	}
	if st, _ := sw.Stats("web"); st.Requests != 1 {
		t.Errorf("production counted %d requests; want 1 (the preview's are its own)", st.Requests)
	}
	if st, ok := sw.PreviewStats("web", 2); !ok || st.Requests != 3 {
		t.Errorf("preview stats %+v, %v; want 3 requests", st, ok)
	}
	if _, err := sw.Switch("web", []string{v1}); err != nil {
		t.Fatal(err)
	}
	if got := fetch(t, front, "v2.web.localhost", ""); got != "v2" {
		t.Errorf("after a production switch v2.web.localhost answered %q", got)
	}
	_ = sw.RemovePreview("web", 2)
	if sw.router.Serves("v2.web.localhost") {
		t.Error("v2.web.localhost is still routed after RemovePreview")
	}
	if got := fetch(t, front, "web.localhost", ""); got != "v1" {
		t.Errorf("after RemovePreview web.localhost answered %q", got)
	}
	if got, want := sw.PreviewURL("web", 2), "http://v2.web.localhost/"; got != want {
		t.Errorf("PreviewURL = %q, want %q", got, want)
	}
}
