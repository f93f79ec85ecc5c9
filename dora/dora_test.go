package dora

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// at is t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

func push(v int, live, committed time.Duration) Release {
	return Release{App: "web", Version: v, Cause: CausePush, WentLive: at(live), CommittedAt: at(committed)}
}

func rollback(v int, live time.Duration) Release {
	return Release{App: "web", Version: v, Cause: CauseRollback, WentLive: at(live)}
}

func config(v int, live time.Duration) Release {
	return Release{App: "web", Version: v, Cause: "config", WentLive: at(live)}
}

// neverLive is a release that failed before the switch (or still deploys).
func neverLive(v int) Release {
	return Release{App: "web", Version: v, Cause: CausePush, CommittedAt: t0}
}

// summary renders changes and incidents compactly: "v1 v2! v3" (! failed),
// then each incident as [start-end versions].
func summary(changes []Change, incidents []Incident) string {
	s := ""
	for _, c := range changes {
		s += fmt.Sprintf("v%d", c.Version)
		if c.Failed {
			s += "!"
		}
		s += " "
	}
	s += "|"
	for _, i := range incidents {
		s += fmt.Sprintf(" [%s-%s %v]", i.Start.Sub(t0), i.End.Sub(t0), i.Versions)
	}
	return s
}

func TestClassify(t *testing.T) {
	h := time.Hour
	tests := []struct {
		name string
		rels []Release
		want string
	}{
		{"no releases", nil, "|"},
		{"one deploy", []Release{push(1, 0, -h)}, "v1 |"},
		{"a push that never went live is no deploy and no failure",
			[]Release{push(1, 0, -h), neverLive(2), push(3, 5*h, 4*h)}, "v1 v3 |"},
		{"rolled back", []Release{push(1, 0, 0), push(2, 2*h, 0), rollback(3, 5*h)},
			"v1 v2! | [2h0m0s-5h0m0s [2]]"},
		{"rolled back to an older release than the one before",
			[]Release{push(1, 0, 0), push(2, 2*h, 0), push(3, 4*h, 0), rollback(4, 6*h)},
			"v1 v2 v3! | [4h0m0s-6h0m0s [3]]"},
		{"replaced by a fix within the window", []Release{push(1, 0, 0), push(2, 2*h, 0), push(3, 2*h+30*time.Minute, 0)},
			"v1 v2! v3 | [2h0m0s-2h30m0s [2]]"},
		{"replaced exactly at the window's end is a fix", []Release{push(1, 0, 0), push(2, h, 0)},
			"v1! v2 | [0s-1h0m0s [1]]"},
		{"replaced a second after the window is not", []Release{push(1, 0, 0), push(2, h+time.Second, 0)},
			"v1 v2 |"},
		{"a config change can be the fix", []Release{push(1, 0, 0), config(2, 10*time.Minute)},
			"v1! v2 | [0s-10m0s [1]]"},
		{"fixes chained into one incident",
			[]Release{push(1, 0, 0), push(2, 3*h, 0), push(3, 3*h+10*time.Minute, 0), push(4, 3*h+20*time.Minute, 0), push(5, 9*h, 0)},
			"v1 v2! v3! v4 v5 | [3h0m0s-3h20m0s [2 3]]"},
		{"a fix that is rolled back stays in the incident",
			[]Release{push(1, 0, 0), push(2, 3*h, 0), push(3, 3*h+10*time.Minute, 0), rollback(4, 5*h)},
			"v1 v2! v3! | [3h0m0s-5h0m0s [2 3]]"},
		{"rollbacks chained: only the change counts",
			[]Release{push(1, 0, 0), push(2, 2*h, 0), rollback(3, 4*h), rollback(4, 6*h), rollback(5, 8*h)},
			"v1 v2! | [2h0m0s-4h0m0s [2]]"},
		{"a failed rollback does not end the incident",
			[]Release{push(1, 0, 0), push(2, 2*h, 0), {App: "web", Version: 3, Cause: CauseRollback}, rollback(4, 7*h)},
			"v1 v2! | [2h0m0s-7h0m0s [2]]"},
		{"the release serving now has not failed, however recent",
			[]Release{push(1, 0, 0), push(2, 10*h, 0)}, "v1 v2 |"},
		{"order is when releases went live, not their versions",
			[]Release{push(2, 2*h, 0), push(1, 0, 0), config(3, 2*h+5*time.Minute)},
			"v1 v2! v3 | [2h0m0s-2h5m0s [2]]"},
		{"separate incidents", []Release{push(1, 0, 0), push(2, 2*h, 0), rollback(3, 3*h), push(4, 10*h, 0), rollback(5, 12*h)},
			"v1 v2! v4! | [2h0m0s-3h0m0s [2]] [10h0m0s-12h0m0s [4]]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summary(Classify(tt.rels, DefaultFixWindow)); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLeadTime(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	tests := []struct {
		name      string
		rel       Release
		want      time.Duration
		hasLead   bool
		isAChange bool
	}{
		{"push", push(1, 3*time.Hour, 0), 3 * time.Hour, true, true},
		// The same instant written in another zone: zones do not matter.
		{"commit time in another zone", Release{Version: 1, Cause: CausePush, WentLive: at(90 * time.Minute), CommittedAt: t0.In(tokyo)},
			90 * time.Minute, true, true},
		{"commit after going live (clock skew) is 0", push(1, 0, time.Minute), 0, true, true},
		{"commit time unknown", Release{Version: 1, Cause: CausePush, WentLive: t0}, 0, false, true},
		{"config change has none", config(1, 0), 0, false, true},
		{"rollback is no change", rollback(1, 0), 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, _ := Classify([]Release{tt.rel}, DefaultFixWindow)
			if (len(changes) == 1) != tt.isAChange {
				t.Fatalf("changes %+v; a change: %v", changes, tt.isAChange)
			}
			if len(changes) == 1 && (changes[0].LeadTime != tt.want || changes[0].HasLeadTime != tt.hasLead) {
				t.Errorf("lead time %v (%v), want %v (%v)", changes[0].LeadTime, changes[0].HasLeadTime, tt.want, tt.hasLead)
			}
		})
	}
}

func TestMeasure(t *testing.T) {
	h := time.Hour
	day := 24 * h
	// v2 is rolled back after 2h, v4 fixed by v5 after 30m.
	changes, incidents := Classify([]Release{
		push(1, 0, -h), push(2, day, day-3*h), rollback(3, day+2*h),
		push(4, 3*day, 3*day-5*h), push(5, 3*day+30*time.Minute, 3*day), neverLive(6),
	}, DefaultFixWindow)
	tests := []struct {
		name     string
		from, to time.Time
		want     Period
	}{
		{"all", t0, at(4 * day), Period{
			Deploys: 4, DeploysPerDay: 1, FrequencyBand: Elite,
			LeadTimes: 4, LeadTime: (h + 3*h) / 2, LeadTimeBand: High, // 30m, 1h, 3h, 5h
			Failed: 2, FailureRate: 0.5, FailureBand: Low,
			Restores: 2, TimeToRestore: (30*time.Minute + 2*h) / 2, RestoreBand: High,
		}},
		{"from is inclusive, to exclusive", t0, at(day), Period{
			Deploys: 1, DeploysPerDay: 1, FrequencyBand: Elite, LeadTimes: 1, LeadTime: h, LeadTimeBand: High, FailureBand: Elite,
		}},
		// The incident of v2 started in the window; its rollback after it.
		{"an incident belongs to the period it started in", at(day), at(day + h), Period{
			Deploys: 1, DeploysPerDay: 24, FrequencyBand: Elite, LeadTimes: 1, LeadTime: 3 * h, LeadTimeBand: High,
			Failed: 1, FailureRate: 1, FailureBand: Low, Restores: 1, TimeToRestore: 2 * h, RestoreBand: High,
		}},
		{"no deploys", at(10 * day), at(20 * day), Period{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Measure(changes, incidents, tt.from, tt.to)
			tt.want.From, tt.want.To = tt.from, tt.to
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestHostAggregates: the host's numbers are those of all apps' changes
// and incidents together.
func TestHostAggregates(t *testing.T) {
	a, ai := Classify([]Release{push(1, 0, 0), push(2, time.Hour, 0)}, DefaultFixWindow)
	b, bi := Classify([]Release{{App: "api", Version: 1, Cause: "config", WentLive: at(2 * time.Hour)}}, DefaultFixWindow)
	p := Measure(append(a, b...), append(ai, bi...), t0, at(24*time.Hour))
	if p.Deploys != 3 || p.Failed != 1 || p.Restores != 1 || p.LeadTimes != 2 {
		t.Errorf("host: %+v", p)
	}
}

func TestMeasuredTrend(t *testing.T) {
	now := at(30 * 24 * time.Hour)
	var rels []Release
	for d := range 30 {
		rels = append(rels, push(d+1, time.Duration(d)*24*time.Hour+time.Hour, time.Duration(d)*24*time.Hour))
	}
	changes, incidents := Classify(rels, DefaultFixWindow)
	r := Measured(changes, incidents, now, 30)
	if r.Deploys != 30 || !r.From.Equal(t0) || !r.To.Equal(now) {
		t.Fatalf("window: %+v", r.Period)
	}
	// 30 days: a 2-day period, then four weeks, oldest first, back to back.
	var lengths []time.Duration
	total := 0
	for i, p := range r.Trend {
		lengths = append(lengths, p.To.Sub(p.From))
		total += p.Deploys
		if i > 0 && !p.From.Equal(r.Trend[i-1].To) {
			t.Errorf("gap before period %d", i)
		}
	}
	want := []time.Duration{48 * time.Hour, TrendStep, TrendStep, TrendStep, TrendStep}
	if !slices.Equal(lengths, want) || total != 30 || !r.Trend[0].From.Equal(t0) || !r.Trend[4].To.Equal(now) {
		t.Errorf("trend lengths %v (want %v), %d deploys in all", lengths, want, total)
	}
	if r.Trend[4].Deploys != 7 || r.Trend[4].FrequencyBand != Elite {
		t.Errorf("last week: %+v", r.Trend[4])
	}
	if r := Measured(nil, nil, now, 7); len(r.Trend) != 1 || r.Deploys != 0 || r.FrequencyBand != "" {
		t.Errorf("empty week: %+v", r)
	}
}

func TestBands(t *testing.T) {
	h, d := time.Hour, 24*time.Hour
	tests := []struct {
		name string
		got  Band
		want Band
	}{
		{"1 deploy a day", FrequencyBand(1), Elite},
		{"just under a day", FrequencyBand(0.99), High},
		{"1 a week", FrequencyBand(1.0 / 7), High},
		{"under 1 a week", FrequencyBand(0.99 / 7), Medium},
		{"1 a month", FrequencyBand(1.0 / 30), Medium},
		{"under 1 a month", FrequencyBand(0.99 / 30), Low},
		{"lead 59m", LeadTimeBand(59 * time.Minute), Elite},
		{"lead 1h", LeadTimeBand(h), High},
		{"lead 1 week", LeadTimeBand(7 * d), High},
		{"lead 8 days", LeadTimeBand(8 * d), Medium},
		{"lead 180 days", LeadTimeBand(180 * d), Medium},
		{"lead 181 days", LeadTimeBand(181 * d), Low},
		{"cfr 0", FailureBand(0), Elite},
		{"cfr 15%", FailureBand(0.15), Elite},
		{"cfr 16%", FailureBand(0.16), High},
		{"cfr 30%", FailureBand(0.30), High},
		{"cfr 45%", FailureBand(0.45), Medium},
		{"cfr 46%", FailureBand(0.46), Low},
		{"restore 59m", RestoreBand(59 * time.Minute), Elite},
		{"restore 1h", RestoreBand(h), High},
		{"restore 23h", RestoreBand(23 * h), High},
		{"restore 1 day", RestoreBand(d), Medium},
		{"restore 1 week", RestoreBand(7 * d), Medium},
		{"restore 8 days", RestoreBand(8 * d), Low},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, tt.got, tt.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{[]time.Duration{5}, 5},
		{[]time.Duration{9, 1, 5}, 5},
		{[]time.Duration{4, 1, 2, 3}, 2}, // (2+3)/2 in integer nanoseconds
		{[]time.Duration{10, 20}, 15},
	} {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
