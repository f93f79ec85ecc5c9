// Package dora computes the four DORA delivery metrics (deployment
// frequency, lead time for changes, change failure rate and time to
// restore) from an app's release history. It is pure: the daemon reads the
// releases from the store and passes them in. docs/dora.md defines every
// number; the comments here say how the code follows it.
package dora

import (
	"cmp"
	"slices"
	"time"
)

// Defaults.
const (
	// DefaultFixWindow: a change replaced by another change within this
	// time of going live counts as failed (the second one was a fix).
	DefaultFixWindow = time.Hour
	// DefaultDays is the window `plat dora` and /api/dora measure.
	DefaultDays = 30
	// MaxDays bounds the window: releases older than a year say little
	// about delivery today.
	MaxDays = 365
	// TrendStep is the length of one trend period.
	TrendStep = 7 * 24 * time.Hour
)

// Release causes, as the store records them.
const (
	CausePush     = "push"
	CauseRollback = "rollback"
)

// Release is what the metrics need of one release.
type Release struct {
	App     string
	Version int
	Cause   string // push, config, resources, rollback
	// WentLive is when it started serving; zero if it never did (it
	// failed before the switch, or is still deploying).
	WentLive time.Time
	// CommittedAt is the commit time of a pushed release's sha; zero when
	// unknown.
	CommittedAt time.Time
}

// Change is a deploy: a push, config or resources release that went live.
// Rollbacks are not changes: they bring back one that was deployed.
type Change struct {
	App      string
	Version  int
	Cause    string
	WentLive time.Time
	// LeadTime is WentLive minus the commit time, for pushes whose commit
	// time is known (HasLeadTime).
	LeadTime    time.Duration
	HasLeadTime bool
	// Failed: it was replaced in production by a rollback, or by another
	// change within the fix window.
	Failed bool
	// ReplacedBy is the version of the release that took over from it
	// (0 while it serves).
	ReplacedBy int
}

// Incident is a time production served failed changes: from the first
// failed change going live to the next release that went live and did not
// fail (a rollback or a good change).
type Incident struct {
	App        string
	Start, End time.Time
	Versions   []int // the failed changes it spans, in the order they went live
}

// Restore is how long the incident lasted.
func (i Incident) Restore() time.Duration { return i.End.Sub(i.Start) }

// Classify turns one app's releases (in any order) into its changes and
// incidents. Only releases that went live take part, ordered by when they
// did (a later version can go live first when deploys overlap).
func Classify(rels []Release, fixWindow time.Duration) ([]Change, []Incident) {
	live := make([]Release, 0, len(rels))
	for _, r := range rels {
		if !r.WentLive.IsZero() {
			live = append(live, r)
		}
	}
	slices.SortStableFunc(live, func(a, b Release) int {
		return cmp.Or(a.WentLive.Compare(b.WentLive), cmp.Compare(a.Version, b.Version))
	})
	var changes []Change
	// failed[i]: live[i] is a change that failed.
	failed := make([]bool, len(live))
	for i, r := range live {
		if r.Cause == CauseRollback {
			continue
		}
		c := Change{App: r.App, Version: r.Version, Cause: r.Cause, WentLive: r.WentLive}
		if r.Cause == CausePush && !r.CommittedAt.IsZero() {
			// A commit stamped after it went live (a clock ahead) had no
			// wait: 0, not negative.
			c.LeadTime, c.HasLeadTime = max(r.WentLive.Sub(r.CommittedAt), 0), true
		}
		if i+1 < len(live) {
			next := live[i+1]
			c.ReplacedBy = next.Version
			c.Failed = next.Cause == CauseRollback || next.WentLive.Sub(r.WentLive) <= fixWindow
		}
		failed[i] = c.Failed
		changes = append(changes, c)
	}
	var incidents []Incident
	for i := 0; i < len(live); i++ {
		if !failed[i] {
			continue
		}
		in := Incident{App: live[i].App, Start: live[i].WentLive}
		for ; i < len(live) && failed[i]; i++ {
			in.Versions = append(in.Versions, live[i].Version)
		}
		// A failed change always has a successor, so i < len(live) here:
		// the first release after the run that did not fail ends it.
		in.End = live[i].WentLive
		incidents = append(incidents, in)
	}
	return changes, incidents
}

// Band is a DORA performance level; "" when there is nothing to rate.
type Band string

// Bands, best first.
const (
	Elite  Band = "elite"
	High   Band = "high"
	Medium Band = "medium"
	Low    Band = "low"
)

// Period holds the four metrics over [From, To).
type Period struct {
	From, To time.Time

	Deploys       int
	DeploysPerDay float64
	FrequencyBand Band

	LeadTimes    int           // changes with a lead time
	LeadTime     time.Duration // their median
	LeadTimeBand Band

	Failed      int     // failed changes among Deploys
	FailureRate float64 // Failed / Deploys; 0 without deploys
	FailureBand Band

	Restores      int           // incidents that started in the period
	TimeToRestore time.Duration // their median
	RestoreBand   Band
}

// Measure computes the metrics over [from, to) from changes and incidents
// (of one app, or of many for the host). A change belongs to the period it
// went live in, an incident to the one it started in.
func Measure(changes []Change, incidents []Incident, from, to time.Time) Period {
	p := Period{From: from, To: to}
	var leads, restores []time.Duration
	for _, c := range changes {
		if !in(c.WentLive, from, to) {
			continue
		}
		p.Deploys++
		if c.Failed {
			p.Failed++
		}
		if c.HasLeadTime {
			leads = append(leads, c.LeadTime)
		}
	}
	for _, i := range incidents {
		if in(i.Start, from, to) {
			restores = append(restores, i.Restore())
		}
	}
	if days := to.Sub(from).Hours() / 24; days > 0 {
		p.DeploysPerDay = float64(p.Deploys) / days
	}
	if p.Deploys > 0 {
		p.FrequencyBand = FrequencyBand(p.DeploysPerDay)
		p.FailureRate = float64(p.Failed) / float64(p.Deploys)
		p.FailureBand = FailureBand(p.FailureRate)
	}
	if p.LeadTimes = len(leads); p.LeadTimes > 0 {
		p.LeadTime = Median(leads)
		p.LeadTimeBand = LeadTimeBand(p.LeadTime)
	}
	if p.Restores = len(restores); p.Restores > 0 {
		p.TimeToRestore = Median(restores)
		p.RestoreBand = RestoreBand(p.TimeToRestore)
	}
	return p
}

func in(t, from, to time.Time) bool { return !t.Before(from) && t.Before(to) }

// Report is the metrics over a window and its trend.
type Report struct {
	Period
	// Trend splits the window into TrendStep periods, oldest first; the
	// oldest is shorter when the window is not whole weeks.
	Trend []Period
}

// Measured computes the report over the days before now.
func Measured(changes []Change, incidents []Incident, now time.Time, days int) Report {
	from := now.Add(-time.Duration(days) * 24 * time.Hour)
	r := Report{Period: Measure(changes, incidents, from, now)}
	for end := now; end.After(from); end = end.Add(-TrendStep) {
		start := end.Add(-TrendStep)
		if start.Before(from) {
			start = from
		}
		r.Trend = append(r.Trend, Measure(changes, incidents, start, end))
	}
	slices.Reverse(r.Trend)
	return r
}

// Median of ds (not empty): the mean of the middle two for an even count.
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return s[n/2-1] + (s[n/2]-s[n/2-1])/2
}

// Band limits, from the DORA State of DevOps report 2021 (docs/dora.md
// says how plat closes its gaps).
const (
	day   = 24 * time.Hour
	week  = 7 * day
	month = 30 * day
)

// FrequencyBand: elite on demand (at least once a day on average), high
// at least once a week, medium at least once a month, low less often.
func FrequencyBand(perDay float64) Band {
	switch {
	case perDay >= 1:
		return Elite
	case perDay*7 >= 1:
		return High
	case perDay*30 >= 1:
		return Medium
	}
	return Low
}

// LeadTimeBand: elite under an hour, high up to a week, medium up to six
// months, low beyond.
func LeadTimeBand(d time.Duration) Band {
	switch {
	case d < time.Hour:
		return Elite
	case d <= week:
		return High
	case d <= 6*month:
		return Medium
	}
	return Low
}

// FailureBand: elite up to 15%, high up to 30%, medium up to 45%, low
// beyond.
func FailureBand(rate float64) Band {
	switch {
	case rate <= 0.15:
		return Elite
	case rate <= 0.30:
		return High
	case rate <= 0.45:
		return Medium
	}
	return Low
}

// RestoreBand: elite under an hour, high under a day, medium up to a
// week, low beyond.
func RestoreBand(d time.Duration) Band {
	switch {
	case d < time.Hour:
		return Elite
	case d < day:
		return High
	case d <= week:
		return Medium
	}
	return Low
}
