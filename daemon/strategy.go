package daemon

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/store"
)

// newStrategyInfo is the API's view of an app's release strategy: the
// settings in the shape PUT takes, and a one-line description.
func newStrategyInfo(app store.App) api.Strategy {
	s := deploy.StrategyOf(app)
	spec := deploy.SpecOf(s)
	return api.Strategy{
		Name: string(spec.Name), Steps: spec.Steps, StepTime: deref(spec.StepTime),
		MaxErrorRate: spec.MaxErrorRate, MaxP99: deref(spec.MaxP99), MinRequests: spec.MinRequests,
		Batch: spec.Batch, Hold: deref(spec.Hold), Description: deploy.DescribeStrategy(s),
	}
}

// deref is *p, or "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *server) strategyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/apps/{app}/strategy", s.getStrategy)
	mux.HandleFunc("PUT /api/apps/{app}/strategy", s.setStrategy)
}

func (s *server) getStrategy(w http.ResponseWriter, r *http.Request) {
	if app, ok := s.app(w, r); ok {
		writeJSON(w, http.StatusOK, newStrategyInfo(app))
	}
}

// setStrategy sets how the app's next releases go live. It only stores the
// settings: a deploy in progress keeps the strategy it started with.
func (s *server) setStrategy(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	var raw json.RawMessage
	if !readJSON(w, r, &raw) {
		return
	}
	// Strict: a misspelt setting ("step-time") must not silently take
	// its default.
	var spec deploy.StrategySpec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if len(raw) > 0 {
		if err := dec.Decode(&spec); err != nil {
			writeError(w, http.StatusBadRequest, "strategy is not valid: "+err.Error()+
				" (fields: name, steps, step_time, max_error_rate, max_p99, min_requests, batch, hold)")
			return
		}
	}
	if spec.Name == "" {
		writeError(w, http.StatusBadRequest, `say which strategy: {"name": "canary"}; choose one of blue-green, canary, rolling, in-place`)
		return
	}
	strategy, err := deploy.ParseStrategy(spec)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.store.UpdateApp(app.Name, func(a *store.App) error { a.Strategy = strategy; return nil }); err != nil {
		s.internalError(w, err)
		return
	}
	app.Strategy = strategy
	desc := deploy.DescribeStrategy(strategy)
	s.log.Info("strategy set", "app", app.Name, "strategy", strategy.Name, "settings", desc)
	if err := s.store.AddEvent(store.Event{App: app.Name, Kind: "strategy", Message: "strategy set to " + desc}); err != nil {
		s.log.Warn("record event", "app", app.Name, "err", err)
	}
	writeJSON(w, http.StatusOK, newStrategyInfo(app))
}
