package deploy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/plat-paas/plat/store"
)

func TestScaleChangeApply(t *testing.T) {
	n := func(v int) *int { return &v }
	dur := func(v time.Duration) *time.Duration { return &v }
	tests := []struct {
		name    string
		from    store.Scale
		change  ScaleChange
		want    store.Scale
		wantErr string
	}{
		{name: "never set is one replica", change: ScaleChange{}, want: store.Scale{Min: 1, Max: 1, Idle: DefaultIdle, Target: DefaultTarget, ColdAfter: DefaultColdAfter}},
		{name: "web=3", change: ScaleChange{Replicas: n(3)}, want: store.Scale{Min: 3, Max: 3, Idle: DefaultIdle, Target: DefaultTarget, ColdAfter: DefaultColdAfter}},
		{name: "scale to zero keeps max", from: store.Scale{Min: 2, Max: 2}, change: ScaleChange{Min: n(0), Idle: dur(time.Minute)},
			want: store.Scale{Min: 0, Max: 2, Idle: time.Minute, Target: DefaultTarget, ColdAfter: DefaultColdAfter}},
		{name: "min above max raises max", from: store.Scale{Min: 1, Max: 1}, change: ScaleChange{Min: n(4)},
			want: store.Scale{Min: 4, Max: 4, Idle: DefaultIdle, Target: DefaultTarget, ColdAfter: DefaultColdAfter}},
		{name: "autoscale bounds", change: ScaleChange{Min: n(1), Max: n(5), Target: n(4)},
			want: store.Scale{Min: 1, Max: 5, Idle: DefaultIdle, Target: 4, ColdAfter: DefaultColdAfter}},
		{name: "cold after 1h", change: ScaleChange{Min: n(0), ColdAfter: dur(time.Hour)},
			want: store.Scale{Min: 0, Max: 1, Idle: DefaultIdle, Target: DefaultTarget, ColdAfter: time.Hour}},
		{name: "cold after 0 is stored as at once", change: ScaleChange{Min: n(0), ColdAfter: dur(0)},
			want: store.Scale{Min: 0, Max: 1, Idle: DefaultIdle, Target: DefaultTarget, ColdAfter: -1}},
		{name: "negative cold after", change: ScaleChange{ColdAfter: dur(-time.Second)}, wantErr: "cold-after -1s"},
		{name: "web=0 is refused with the way to sleep", change: ScaleChange{Replicas: n(0)}, wantErr: "--min 0"},
		{name: "too many", change: ScaleChange{Replicas: n(MaxReplicas + 1)}, wantErr: "1 to 20"},
		{name: "min above explicit max", change: ScaleChange{Min: n(3), Max: n(2)}, wantErr: "min 3 is above max 2"},
		{name: "max 0", change: ScaleChange{Max: n(0)}, wantErr: "max 0"},
		{name: "negative min", change: ScaleChange{Min: n(-1)}, wantErr: "min -1"},
		{name: "idle too short", change: ScaleChange{Min: n(0), Idle: dur(time.Millisecond)}, wantErr: "at least 1s"},
		{name: "target 0", change: ScaleChange{Target: n(0)}, wantErr: "target 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.change.apply(tt.from)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidScale) {
					t.Fatalf("apply: %v, want ErrInvalidScale containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("apply = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAwakeReplicas(t *testing.T) {
	tests := []struct {
		app  store.App
		want int
	}{
		{store.App{}, 1},
		{store.App{Scale: store.Scale{Min: 0, Max: 3}}, 1},
		{store.App{Scale: store.Scale{Min: 0, Max: 3}, Replicas: 2}, 2},
		{store.App{Scale: store.Scale{Min: 2, Max: 3}, Replicas: 1}, 2},
		{store.App{Scale: store.Scale{Min: 1, Max: 3}, Replicas: 9}, 3},
	}
	for _, tt := range tests {
		if got := awakeReplicas(tt.app); got != tt.want {
			t.Errorf("awakeReplicas(%+v) = %d, want %d", tt.app, got, tt.want)
		}
	}
}

// TestObserve drives the autoscaler's decisions with a sequence of
// traffic samples, one per second.
func TestObserve(t *testing.T) {
	cfg := Config{ScaleUpDelay: 2 * time.Second, ScaleDownDelay: 5 * time.Second}
	sleepy := EffectiveScale(store.Scale{Min: 0, Max: 1, Idle: 3 * time.Second})
	auto := EffectiveScale(store.Scale{Min: 1, Max: 4, Target: 10})
	type sample struct {
		inFlight int64
		requests uint64
		backends int
	}
	tests := []struct {
		name    string
		scale   store.Scale
		samples []sample
		want    []decision // decision after each sample (why ignored)
	}{
		{
			name:    "idle app sleeps after its idle period, once",
			scale:   sleepy,
			samples: []sample{{0, 5, 1}, {0, 5, 1}, {0, 5, 1}, {0, 5, 1}, {0, 5, 1}},
			want:    []decision{{}, {}, {}, {sleep: true, idle: 3 * time.Second}, {}},
		},
		{
			name:    "requests keep it awake",
			scale:   sleepy,
			samples: []sample{{0, 1, 1}, {0, 2, 1}, {0, 3, 1}, {0, 4, 1}, {0, 5, 1}},
			want:    []decision{{}, {}, {}, {}, {}},
		},
		{
			name:    "a long request in flight keeps it awake",
			scale:   sleepy,
			samples: []sample{{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
			want:    []decision{{}, {}, {}, {}, {}},
		},
		{
			name:  "sustained load adds replicas to fit the target",
			scale: auto,
			samples: []sample{
				{35, 1, 1}, {35, 2, 1}, {35, 3, 1}, {35, 4, 1}, {35, 5, 1}, {35, 6, 1}, {35, 7, 1},
			},
			// the average climbs: 10.5, 17.9, 23, ... → need 2 at the first sample
			want: []decision{{}, {}, {replicas: 3}, {}, {}, {}, {}},
		},
		{
			name:    "a one-sample burst adds nothing",
			scale:   auto,
			samples: []sample{{40, 1, 1}, {0, 2, 1}, {0, 3, 1}, {0, 4, 1}},
			want:    []decision{{}, {}, {}, {}},
		},
		{
			name:  "load gone: one replica fewer after the down delay",
			scale: auto,
			samples: []sample{
				{0, 1, 3}, {0, 2, 3}, {0, 3, 3}, {0, 4, 3}, {0, 5, 3}, {0, 6, 3}, {0, 7, 3},
			},
			want: []decision{{}, {}, {}, {}, {}, {replicas: 2}, {}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l appLoads
			start := time.Unix(1000, 0)
			for i, s := range tt.samples {
				got := l.observe("app", TrafficStats{InFlight: s.inFlight, Requests: s.requests, Backends: s.backends}, start.Add(time.Duration(i)*time.Second), tt.scale, cfg)
				got.why = ""
				if got != tt.want[i] {
					t.Errorf("sample %d %+v: decision %+v, want %+v", i, s, got, tt.want[i])
				}
			}
		})
	}
}
