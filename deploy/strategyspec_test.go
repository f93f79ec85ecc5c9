package deploy

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/plat-paas/plat/store"
)

func specPtr[T any](v T) *T { return &v }

func TestParseStrategy(t *testing.T) {
	tests := []struct {
		name    string
		spec    StrategySpec
		want    store.Strategy
		wantErr string // substring; "" means no error
	}{
		{"empty name is blue-green", StrategySpec{}, store.Strategy{Name: store.StrategyBlueGreen}, ""},
		{"blue-green", StrategySpec{Name: "blue-green"}, store.Strategy{Name: store.StrategyBlueGreen}, ""},
		{"name case and spaces", StrategySpec{Name: " Canary "}, store.Strategy{Name: store.StrategyCanary, Steps: []int{10, 50, 100},
			StepTime: time.Minute, MaxErrorRate: 1, MinRequests: 50}, ""},
		{"canary defaults", StrategySpec{Name: "canary"}, store.Strategy{Name: store.StrategyCanary, Steps: []int{10, 50, 100},
			StepTime: DefaultStepTime, MaxErrorRate: DefaultMaxErrorRate, MinRequests: DefaultMinRequests}, ""},
		{"canary all set", StrategySpec{Name: "canary", Steps: []int{5, 25, 100}, StepTime: specPtr("5s"), MaxErrorRate: specPtr(2.5),
			MaxP99: specPtr("800ms"), MinRequests: specPtr(0)},
			store.Strategy{Name: store.StrategyCanary, Steps: []int{5, 25, 100}, StepTime: 5 * time.Second, MaxErrorRate: 2.5,
				MaxP99: 800 * time.Millisecond}, ""},
		{"canary zero error rate is kept", StrategySpec{Name: "canary", MaxErrorRate: specPtr(0.0)},
			store.Strategy{Name: store.StrategyCanary, Steps: []int{10, 50, 100}, StepTime: time.Minute, MinRequests: 50}, ""},
		{"canary one step", StrategySpec{Name: "canary", Steps: []int{100}},
			store.Strategy{Name: store.StrategyCanary, Steps: []int{100}, StepTime: time.Minute, MaxErrorRate: 1, MinRequests: 50}, ""},
		{"rolling default", StrategySpec{Name: "rolling"}, store.Strategy{Name: store.StrategyRolling, Batch: 1}, ""},
		{"rolling batch", StrategySpec{Name: "rolling", Batch: specPtr(3)}, store.Strategy{Name: store.StrategyRolling, Batch: 3}, ""},
		{"in-place default", StrategySpec{Name: "in-place"}, store.Strategy{Name: store.StrategyInPlace, Hold: 30 * time.Second}, ""},
		{"in-place hold", StrategySpec{Name: "in-place", Hold: specPtr("1m")}, store.Strategy{Name: store.StrategyInPlace, Hold: time.Minute}, ""},

		{"unknown", StrategySpec{Name: "recreate"}, store.Strategy{}, `unknown strategy "recreate": choose one of blue-green, canary, rolling, in-place`},
		{"batch with canary", StrategySpec{Name: "canary", Batch: specPtr(2)}, store.Strategy{},
			"batch is not a setting of canary: canary takes steps, step_time, max_error_rate, max_p99, min_requests; batch is a setting of rolling"},
		{"hold with blue-green", StrategySpec{Name: "blue-green", Hold: specPtr("5s")}, store.Strategy{},
			"hold is not a setting of blue-green: blue-green takes no settings; hold is a setting of in-place"},
		{"steps with rolling", StrategySpec{Name: "rolling", Steps: []int{100}}, store.Strategy{}, "steps is a setting of canary"},
		{"steps empty", StrategySpec{Name: "canary", Steps: []int{}}, store.Strategy{}, "steps are empty"},
		{"steps not ending at 100", StrategySpec{Name: "canary", Steps: []int{10, 50}}, store.Strategy{}, "end at 50%, not 100%"},
		{"steps decreasing", StrategySpec{Name: "canary", Steps: []int{50, 10, 100}}, store.Strategy{}, "do not increase at 10%"},
		{"steps repeated", StrategySpec{Name: "canary", Steps: []int{10, 10, 100}}, store.Strategy{}, "do not increase at 10%"},
		{"step zero", StrategySpec{Name: "canary", Steps: []int{0, 100}}, store.Strategy{}, "step 0% is out of range"},
		{"step above 100", StrategySpec{Name: "canary", Steps: []int{10, 150}}, store.Strategy{}, "step 150% is out of range"},
		{"too many steps", StrategySpec{Name: "canary", Steps: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 100}},
			store.Strategy{}, "21 steps are too many"},
		{"step time not a duration", StrategySpec{Name: "canary", StepTime: specPtr("soon")}, store.Strategy{}, `step_time "soon" is not a duration`},
		{"step time too short", StrategySpec{Name: "canary", StepTime: specPtr("500ms")}, store.Strategy{}, "step_time 500ms is out of range: give 1s to 24h"},
		{"step time too long", StrategySpec{Name: "canary", StepTime: specPtr("25h")}, store.Strategy{}, "step_time 25h0m0s is out of range"},
		{"error rate negative", StrategySpec{Name: "canary", MaxErrorRate: specPtr(-1.0)}, store.Strategy{}, "max_error_rate -1 is out of range"},
		{"error rate above 100", StrategySpec{Name: "canary", MaxErrorRate: specPtr(101.0)}, store.Strategy{}, "max_error_rate 101 is out of range"},
		{"error rate NaN", StrategySpec{Name: "canary", MaxErrorRate: specPtr(math.NaN())}, store.Strategy{}, "max_error_rate NaN is out of range"},
		{"p99 negative", StrategySpec{Name: "canary", MaxP99: specPtr("-1s")}, store.Strategy{}, "max_p99 -1s is out of range"},
		{"p99 too long", StrategySpec{Name: "canary", MaxP99: specPtr("11m")}, store.Strategy{}, "max_p99 11m0s is out of range"},
		{"min requests negative", StrategySpec{Name: "canary", MinRequests: specPtr(-1)}, store.Strategy{}, "min_requests -1 is out of range"},
		{"batch zero", StrategySpec{Name: "rolling", Batch: specPtr(0)}, store.Strategy{}, "batch 0 is out of range: give 1 to 100"},
		{"hold too long", StrategySpec{Name: "in-place", Hold: specPtr("10m")}, store.Strategy{}, "hold 10m0s is out of range: give 1s to 5m"},
		{"hold zero", StrategySpec{Name: "in-place", Hold: specPtr("0s")}, store.Strategy{}, "hold 0s is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStrategy(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseStrategy = %+v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStrategy: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseStrategy = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// ValidateStrategy checks stored settings too: another strategy's settings
// left over are an error, every problem is reported at once.
func TestValidateStrategy(t *testing.T) {
	tests := []struct {
		name     string
		s        store.Strategy
		wantErrs []string
	}{
		{"zero value is blue-green", store.Strategy{}, nil},
		{"rolling with hold", store.Strategy{Name: store.StrategyRolling, Batch: 1, Hold: time.Second}, []string{"hold is a setting of in-place, not of rolling"}},
		{"blue-green with canary steps", store.Strategy{Name: store.StrategyBlueGreen, Steps: []int{100}}, []string{"canary settings given for blue-green"}},
		{"canary missing everything", store.Strategy{Name: store.StrategyCanary}, []string{"steps are empty", "step_time 0s is out of range"}},
		{"unknown", store.Strategy{Name: "shadow"}, []string{`unknown strategy "shadow"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateStrategy(tt.s)
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("ValidateStrategy: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateStrategy = nil, want %q", tt.wantErrs)
			}
			for _, w := range tt.wantErrs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseSteps(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"10,50,100", []int{10, 50, 100}, false},
		{" 10% , 50%,100% ", []int{10, 50, 100}, false},
		{"100", []int{100}, false},
		{"10,,100", nil, true},
		{"ten,100", nil, true},
		{"", nil, true},
		{"1.5,100", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseSteps(tt.in)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseSteps(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if got := FormatSteps([]int{10, 50, 100}); got != "10,50,100" {
		t.Errorf("FormatSteps = %q", got)
	}
}

// The API shows a stored strategy in the shape it accepts: a GET's answer
// PUT back gives the same settings.
func TestSpecOfRoundTrip(t *testing.T) {
	for _, spec := range []StrategySpec{
		{},
		{Name: "canary", Steps: []int{20, 100}, StepTime: specPtr("5s"), MaxErrorRate: specPtr(0.0), MaxP99: specPtr("800ms"), MinRequests: specPtr(10)},
		{Name: "canary"},
		{Name: "rolling", Batch: specPtr(2)},
		{Name: "in-place", Hold: specPtr("1m30s")},
	} {
		stored, err := ParseStrategy(spec)
		if err != nil {
			t.Fatalf("ParseStrategy(%+v): %v", spec, err)
		}
		raw, err := json.Marshal(SpecOf(stored))
		if err != nil {
			t.Fatal(err)
		}
		var back StrategySpec
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		again, err := ParseStrategy(back)
		if err != nil {
			t.Fatalf("ParseStrategy(%s): %v", raw, err)
		}
		if !reflect.DeepEqual(again, stored) {
			t.Errorf("%s: parsed back as %+v, want %+v", raw, again, stored)
		}
	}
	raw, _ := json.Marshal(SpecOf(store.Strategy{Name: store.StrategyCanary, Steps: []int{10, 50, 100}, StepTime: time.Minute, MaxErrorRate: 1, MinRequests: 50}))
	if want := `{"name":"canary","steps":[10,50,100],"step_time":"1m","max_error_rate":1,"max_p99":"0s","min_requests":50}`; string(raw) != want {
		t.Errorf("SpecOf JSON = %s, want %s", raw, want)
	}
}

func TestDescribeStrategy(t *testing.T) {
	tests := []struct {
		s    store.Strategy
		want string
	}{
		{store.Strategy{}, "blue-green (the new release starts beside the old one and takes all traffic once healthy)"},
		{store.Strategy{Name: store.StrategyCanary, Steps: []int{10, 50, 100}, StepTime: time.Minute, MaxErrorRate: 1, MinRequests: 50},
			"canary (steps 10,50,100 every 1m, max 5xx 1%, max p99 off, min 50 requests per step)"},
		{store.Strategy{Name: store.StrategyCanary, Steps: []int{100}, StepTime: 90 * time.Minute, MaxErrorRate: 0.5, MaxP99: 800 * time.Millisecond},
			"canary (steps 100 every 1h30m, max 5xx 0.5%, max p99 800ms, min 0 requests per step)"},
		{store.Strategy{Name: store.StrategyRolling, Batch: 2}, "rolling (2 replica(s) at a time)"},
		{store.Strategy{Name: store.StrategyInPlace, Hold: 30 * time.Second}, "in-place (requests held up to 30s while the new release starts)"},
	}
	for _, tt := range tests {
		if got := DescribeStrategy(tt.s); got != tt.want {
			t.Errorf("DescribeStrategy(%+v) = %q, want %q", tt.s, got, tt.want)
		}
	}
	if got := StrategyOf(store.App{}); got.Name != store.StrategyBlueGreen {
		t.Errorf("StrategyOf(app without a strategy) = %+v, want blue-green", got)
	}
}
