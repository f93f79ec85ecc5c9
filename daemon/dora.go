package daemon

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/dora"
	"github.com/plat-paas/plat/store"
)

func (s *server) doraRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/dora", s.hostDORA)
	mux.HandleFunc("GET /api/apps/{app}/dora", s.appDORA)
}

// hostDORA answers the DORA metrics of every app together.
func (s *server) hostDORA(w http.ResponseWriter, r *http.Request) {
	days, ok := doraDays(w, r)
	if !ok {
		return
	}
	apps, err := s.store.ListApps()
	if err != nil {
		s.internalError(w, err)
		return
	}
	var changes []dora.Change
	var incidents []dora.Incident
	for _, a := range apps {
		if a.Preview != nil {
			continue // a preview's pushes are not deployments to production
		}
		c, i, err := s.classify(a.Name)
		if err != nil {
			s.internalError(w, err)
			return
		}
		changes, incidents = append(changes, c...), append(incidents, i...)
	}
	writeJSON(w, http.StatusOK, apiDORA("", days, dora.Measured(changes, incidents, time.Now().UTC(), days)))
}

// appDORA answers the DORA metrics of one app.
func (s *server) appDORA(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	days, ok := doraDays(w, r)
	if !ok {
		return
	}
	changes, incidents, err := s.classify(app.Name)
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiDORA(app.Name, days, dora.Measured(changes, incidents, time.Now().UTC(), days)))
}

// doraDays reads ?days= (default dora.DefaultDays), answering 400 itself.
func doraDays(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("days")
	if v == "" {
		return dora.DefaultDays, true
	}
	days, err := strconv.Atoi(v)
	if err != nil || days < 1 || days > dora.MaxDays {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("days %q must be a whole number of days from 1 to %d", v, dora.MaxDays))
		return 0, false
	}
	return days, true
}

// classify reads app's releases for the metrics: a release went live when
// it is (or was) the active one; FinishedAt is when it did.
func (s *server) classify(app string) ([]dora.Change, []dora.Incident, error) {
	rels, err := s.store.ListReleases(app)
	if err != nil {
		return nil, nil, err
	}
	in := make([]dora.Release, len(rels))
	for i, r := range rels {
		in[i] = dora.Release{App: r.App, Version: r.Version, Cause: string(r.Cause), CommittedAt: r.CommittedAt}
		if r.Status == store.StatusActive || r.Status == store.StatusSuperseded {
			in[i].WentLive = r.FinishedAt
		}
	}
	changes, incidents := dora.Classify(in, dora.DefaultFixWindow)
	return changes, incidents, nil
}

func apiDORA(app string, days int, r dora.Report) api.DORA {
	out := api.DORA{App: app, Days: days, FixWindow: api.Duration(dora.DefaultFixWindow), DORAPeriod: apiDORAPeriod(r.Period)}
	out.Trend = make([]api.DORAPeriod, len(r.Trend))
	for i, p := range r.Trend {
		out.Trend[i] = apiDORAPeriod(p)
	}
	return out
}

func apiDORAPeriod(p dora.Period) api.DORAPeriod {
	out := api.DORAPeriod{
		From: p.From, To: p.To,
		DeploymentFrequency: api.DeploymentFrequency{
			Deploys: p.Deploys, PerDay: round2(p.DeploysPerDay), PerWeek: round2(p.DeploysPerDay * 7), Band: string(p.FrequencyBand),
		},
		LeadTime:          doraTime(p.LeadTimes, p.LeadTime, p.LeadTimeBand),
		ChangeFailureRate: api.ChangeFailureRate{Failed: p.Failed, Deploys: p.Deploys, Band: string(p.FailureBand)},
		TimeToRestore:     doraTime(p.Restores, p.TimeToRestore, p.RestoreBand),
	}
	if p.Deploys > 0 {
		rate := round2(p.FailureRate)
		out.ChangeFailureRate.Rate = &rate
	}
	return out
}

func doraTime(n int, median time.Duration, band dora.Band) api.DORATime {
	t := api.DORATime{Samples: n, Band: string(band)}
	if n > 0 {
		d := api.Duration(median.Round(time.Second))
		t.Median = &d
	}
	return t
}

// round2 keeps two decimals: rates and frequencies are read, not summed.
func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
