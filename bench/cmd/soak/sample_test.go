package main

import "testing"

// TestJudge checks the growth verdict on made-up series: noise, warm-up and
// small steps are not growth; a steady climb is; a count that rises during
// the deploys passes only if it comes back after the settle period.
func TestJudge(t *testing.T) {
	goroutines := metrics[3]
	rss := metrics[0]
	if goroutines.name != "goroutines" || rss.name != "RSS" {
		t.Fatal("metrics table changed order")
	}
	series := func(vals ...int) []sample {
		var ss []sample
		for i, v := range vals {
			ss = append(ss, sample{deploys: (i + 1) * 10, goroutines: v, rssKB: v * 1024})
		}
		return ss
	}
	at := func(v int) sample { return sample{goroutines: v, rssKB: v * 1024} }
	tests := []struct {
		name          string
		m             metric
		before, after int
		during        []sample
		wantGrows     bool
		wantOK        bool
	}{
		{"flat with noise", goroutines, 30, 31, series(31, 35, 29, 33, 30, 34, 32, 30, 31), false, true},
		{"warm-up step then flat", rss, 20, 40, series(38, 40, 41, 40, 39, 41, 40, 41, 40), false, true},
		{"steady climb", rss, 20, 80, series(22, 28, 34, 40, 46, 52, 58, 64, 70), true, false},
		{"climb below the absolute floor", goroutines, 30, 38, series(30, 31, 32, 33, 34, 35, 36, 37, 38), false, true},
		{"rises, back after the settle", goroutines, 30, 32, series(30, 40, 50, 60, 70, 80, 90, 100, 110), true, true},
		{"rises, not back after the settle", goroutines, 30, 110, series(30, 40, 50, 60, 70, 80, 90, 100, 110), true, false},
		{"flat during, but not back", goroutines, 30, 60, series(31, 30, 32, 31, 30, 31, 32, 30, 31), false, false},
		{"a single sample", rss, 20, 21, series(22), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := judge(tt.m, at(tt.before), tt.during, at(tt.after))
			if tr.grows != tt.wantGrows || tr.ok() != tt.wantOK {
				t.Errorf("grows %v ok %v (first %.1f last %.1f after %.1f: %s), want grows %v ok %v",
					tr.grows, tr.ok(), tr.first, tr.last, tr.after, tr.verdict(), tt.wantGrows, tt.wantOK)
			}
		})
	}
}

func TestSlope(t *testing.T) {
	ss := []sample{{deploys: 10, goroutines: 5}, {deploys: 20, goroutines: 7}, {deploys: 30, goroutines: 9}}
	if got := slope(metrics[3], ss); got < 0.199 || got > 0.201 {
		t.Errorf("slope = %v, want 0.2 per deploy", got)
	}
	if got := slope(metrics[3], ss[:1]); got != 0 {
		t.Errorf("slope of one sample = %v, want 0", got)
	}
}

// TestKeptImages checks which images the leftover check expects: the
// newest releases as of the last successful deploy, the failed ones since,
// and the active one however old.
func TestKeptImages(t *testing.T) {
	rels := []release{
		{1, "i1", "superseded"}, {2, "i2", "superseded"}, {3, "i3", "active"}, {4, "", "failed"},
		{5, "i5", "superseded"}, {6, "i6", "superseded"}, {7, "i7", "failed"},
	}
	// v3 active after v5 and v6: as after a rollback to v3 (its image then
	// serves, however old it is).
	tests := []struct {
		name   string
		retain int
		active int
		want   []string
	}{
		{"retain more than there are", 10, 3, []string{"i1", "i2", "i3", "i5", "i6", "i7"}},
		{"retain 2: last success v6 keeps v5, v6; v7 failed since; v3 active", 2, 3, []string{"i3", "i5", "i6", "i7"}},
		{"retain 1", 1, 6, []string{"i6", "i7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := keptImages(rels, tt.retain, tt.active)
			if len(got) != len(tt.want) {
				t.Fatalf("kept %v, want %v", got, tt.want)
			}
			for _, id := range tt.want {
				if !got[id] {
					t.Fatalf("kept %v, want %v", got, tt.want)
				}
			}
		})
	}
}
