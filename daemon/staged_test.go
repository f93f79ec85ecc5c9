package daemon

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/router"
)

// TestReleaseHostRoutesAreNotApps: the metrics see apps, not the routes
// of vN.APP hosts, and a release host's router lines go to its app.
func TestReleaseHostRoutesAreNotApps(t *testing.T) {
	rt := router.New(router.Options{Logger: slog.New(slog.DiscardHandler)})
	for _, rte := range []router.Route{
		{App: "web", Hosts: []string{"web.localhost"}},
		{App: deploy.PreviewKey("web", 2), Hosts: []string{"v2.web.localhost"}},
		{App: deploy.PreviewName("web", "feature"), Hosts: []string{"feature.web.localhost"}},
	} {
		if _, err := rt.Set(rte); err != nil {
			t.Fatal(err)
		}
	}
	got := (appsOnly{rt}).Apps()
	slices.Sort(got)
	if want := []string{"web", deploy.PreviewName("web", "feature")}; !slices.Equal(got, want) {
		t.Errorf("Apps() = %v, want %v", got, want)
	}
	for key, want := range map[string]string{"web": "web", deploy.PreviewKey("web", 2): "web", "web_feature": "web_feature"} {
		if got := routeApp(key); got != want {
			t.Errorf("routeApp(%q) = %q, want %q", key, got, want)
		}
	}
}
