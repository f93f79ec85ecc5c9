package deploy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/store"
)

// Release strategy settings: the defaults a setting takes when the user
// leaves it out, and the bounds ValidateStrategy keeps them in.
const (
	// DefaultStepTime is how long a canary step lasts before it is judged.
	DefaultStepTime = time.Minute
	// MinStepTime allows short steps (tests, tiny apps); MaxStepTime keeps a
	// rollout from holding the app's deploy lock for days.
	MinStepTime = time.Second
	MaxStepTime = 24 * time.Hour
	// DefaultMaxErrorRate is the percentage of a step's canary requests
	// that may fail (5xx answers and proxy errors) before it aborts.
	DefaultMaxErrorRate = 1.0
	// MaxMaxP99 bounds the p99 latency check (0 turns it off).
	MaxMaxP99 = 10 * time.Minute
	// DefaultMinRequests is how many requests the canary must see in a
	// step for its numbers to count; fewer leave the step inconclusive.
	DefaultMinRequests = 50
	MaxMinRequests     = 1_000_000
	// MaxCanarySteps bounds how many steps a canary may take.
	MaxCanarySteps = 20
	// DefaultBatch is how many replicas a rolling release replaces at once.
	DefaultBatch = 1
	MaxBatch     = 100
	// DefaultHold is how long the router holds requests while an in-place
	// release swaps its containers; MinHold..MaxHold bound it (clients
	// give up on a held request after a minute or so anyway).
	DefaultHold = 30 * time.Second
	MinHold     = time.Second
	MaxHold     = 5 * time.Minute
)

// DefaultCanarySteps returns the default canary steps (percent of traffic).
func DefaultCanarySteps() []int { return []int{10, 50, 100} }

// StrategyNames are the strategies a user may choose, the default first.
var StrategyNames = []store.StrategyName{store.StrategyBlueGreen, store.StrategyCanary, store.StrategyRolling, store.StrategyInPlace}

// StrategySpec is a strategy as the API reads and writes it (PUT and GET
// /api/apps/{app}/strategy): durations as Go duration strings ("1m",
// "800ms"). In a request, nil settings take their defaults and a setting of
// another strategy is an error; in a response every setting of the strategy
// is present.
type StrategySpec struct {
	Name         store.StrategyName `json:"name"`
	Steps        []int              `json:"steps,omitempty"`
	StepTime     *string            `json:"step_time,omitempty"`
	MaxErrorRate *float64           `json:"max_error_rate,omitempty"`
	MaxP99       *string            `json:"max_p99,omitempty"` // "0s": off
	MinRequests  *int               `json:"min_requests,omitempty"`
	Batch        *int               `json:"batch,omitempty"`
	Hold         *string            `json:"hold,omitempty"`
}

// strategySettings lists the settings each strategy takes, by API name.
var strategySettings = map[store.StrategyName][]string{
	store.StrategyBlueGreen: nil,
	store.StrategyCanary:    {"steps", "step_time", "max_error_rate", "max_p99", "min_requests"},
	store.StrategyRolling:   {"batch"},
	store.StrategyInPlace:   {"hold"},
}

// given returns the API names of the settings spec sets.
func (spec StrategySpec) given() []string {
	var names []string
	add := func(set bool, name string) {
		if set {
			names = append(names, name)
		}
	}
	add(spec.Steps != nil, "steps")
	add(spec.StepTime != nil, "step_time")
	add(spec.MaxErrorRate != nil, "max_error_rate")
	add(spec.MaxP99 != nil, "max_p99")
	add(spec.MinRequests != nil, "min_requests")
	add(spec.Batch != nil, "batch")
	add(spec.Hold != nil, "hold")
	return names
}

// ParseStrategyName reads a strategy's name ("" is blue-green).
func ParseStrategyName(name string) (store.StrategyName, error) {
	if name == "" {
		return store.StrategyBlueGreen, nil
	}
	n := store.StrategyName(strings.ToLower(strings.TrimSpace(name)))
	if _, ok := strategySettings[n]; !ok {
		return "", fmt.Errorf("unknown strategy %q: choose one of %s", name, strategyList())
	}
	return n, nil
}

func strategyList() string {
	var names []string
	for _, n := range StrategyNames {
		names = append(names, string(n))
	}
	return strings.Join(names, ", ")
}

// ParseStrategy turns a requested strategy into the settings to store:
// the defaults filled in for what spec leaves out, and every value checked
// by ValidateStrategy. Its errors are meant for the user as they are.
func ParseStrategy(spec StrategySpec) (store.Strategy, error) {
	name, err := ParseStrategyName(string(spec.Name))
	if err != nil {
		return store.Strategy{}, err
	}
	allowed := strategySettings[name]
	for _, g := range spec.given() {
		if !slices.Contains(allowed, g) {
			takes := "takes no settings"
			if len(allowed) > 0 {
				takes = "takes " + strings.Join(allowed, ", ")
			}
			return store.Strategy{}, fmt.Errorf("%s is not a setting of %s: %s %s; %s", g, name, name, takes, settingOwner(g))
		}
	}
	s := store.Strategy{Name: name}
	switch name {
	case store.StrategyCanary:
		s.Steps, s.StepTime, s.MaxErrorRate, s.MinRequests = DefaultCanarySteps(), DefaultStepTime, DefaultMaxErrorRate, DefaultMinRequests
		if spec.Steps != nil {
			s.Steps = append([]int(nil), spec.Steps...)
		}
		if s.StepTime, err = optDuration("step_time", spec.StepTime, s.StepTime); err != nil {
			return store.Strategy{}, err
		}
		if spec.MaxErrorRate != nil {
			s.MaxErrorRate = *spec.MaxErrorRate
		}
		if s.MaxP99, err = optDuration("max_p99", spec.MaxP99, 0); err != nil {
			return store.Strategy{}, err
		}
		if spec.MinRequests != nil {
			s.MinRequests = *spec.MinRequests
		}
	case store.StrategyRolling:
		s.Batch = DefaultBatch
		if spec.Batch != nil {
			s.Batch = *spec.Batch
		}
	case store.StrategyInPlace:
		if s.Hold, err = optDuration("hold", spec.Hold, DefaultHold); err != nil {
			return store.Strategy{}, err
		}
	}
	if err := ValidateStrategy(s); err != nil {
		return store.Strategy{}, err
	}
	return s, nil
}

// settingOwner says which strategy a setting belongs to.
func settingOwner(setting string) string {
	for _, n := range StrategyNames {
		if slices.Contains(strategySettings[n], setting) {
			return fmt.Sprintf("%s is a setting of %s", setting, n)
		}
	}
	return "unknown setting"
}

// optDuration parses an optional duration setting.
func optDuration(name string, v *string, def time.Duration) (time.Duration, error) {
	if v == nil {
		return def, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(*v))
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a duration: give one like 30s, 1m or 800ms", name, *v)
	}
	return d, nil
}

// ValidateStrategy checks a strategy's settings as they are stored: the
// settings of its strategy in bounds, those of the others zero. It returns
// every problem at once.
func ValidateStrategy(s store.Strategy) error {
	name, err := ParseStrategyName(string(s.Name))
	if err != nil {
		return err
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if name != store.StrategyCanary {
		if s.Steps != nil || s.StepTime != 0 || s.MaxErrorRate != 0 || s.MaxP99 != 0 || s.MinRequests != 0 {
			bad("canary settings given for %s", name)
		}
	}
	if name != store.StrategyRolling && s.Batch != 0 {
		bad("batch is a setting of rolling, not of %s", name)
	}
	if name != store.StrategyInPlace && s.Hold != 0 {
		bad("hold is a setting of in-place, not of %s", name)
	}
	switch name {
	case store.StrategyCanary:
		if err := validateSteps(s.Steps); err != nil {
			errs = append(errs, err)
		}
		if s.StepTime < MinStepTime || s.StepTime > MaxStepTime {
			bad("step_time %s is out of range: give %s to %s", s.StepTime, strategyDuration(MinStepTime), strategyDuration(MaxStepTime))
		}
		if math.IsNaN(s.MaxErrorRate) || s.MaxErrorRate < 0 || s.MaxErrorRate > 100 {
			bad("max_error_rate %v is out of range: give a percentage from 0 to 100", s.MaxErrorRate)
		}
		if s.MaxP99 < 0 || s.MaxP99 > MaxMaxP99 || (s.MaxP99 > 0 && s.MaxP99 < time.Millisecond) {
			bad("max_p99 %s is out of range: give 1ms to %s, or 0 to turn the latency check off", s.MaxP99, strategyDuration(MaxMaxP99))
		}
		if s.MinRequests < 0 || s.MinRequests > MaxMinRequests {
			bad("min_requests %d is out of range: give 0 to %d", s.MinRequests, MaxMinRequests)
		}
	case store.StrategyRolling:
		if s.Batch < 1 || s.Batch > MaxBatch {
			bad("batch %d is out of range: give 1 to %d replicas at a time", s.Batch, MaxBatch)
		}
	case store.StrategyInPlace:
		if s.Hold < MinHold || s.Hold > MaxHold {
			bad("hold %s is out of range: give %s to %s", s.Hold, strategyDuration(MinHold), strategyDuration(MaxHold))
		}
	}
	return errors.Join(errs...)
}

// validateSteps checks canary steps: 1 to MaxCanarySteps percentages in
// 1..100, strictly increasing, the last 100 (the canary takes all traffic).
func validateSteps(steps []int) error {
	const how = "give strictly increasing percentages from 1 to 100 ending at 100, like 10,50,100"
	switch {
	case len(steps) == 0:
		return fmt.Errorf("steps are empty: %s", how)
	case len(steps) > MaxCanarySteps:
		return fmt.Errorf("%d steps are too many: give at most %d", len(steps), MaxCanarySteps)
	}
	for i, p := range steps {
		if p < 1 || p > 100 {
			return fmt.Errorf("step %d%% is out of range: %s", p, how)
		}
		if i > 0 && p <= steps[i-1] {
			return fmt.Errorf("steps %s do not increase at %d%%: %s", FormatSteps(steps), p, how)
		}
	}
	if last := steps[len(steps)-1]; last != 100 {
		return fmt.Errorf("steps %s end at %d%%, not 100%%: %s", FormatSteps(steps), last, how)
	}
	return nil
}

// ParseSteps reads canary steps written as a comma-separated list of
// percentages ("10,50,100", "10%, 50%, 100%"); ValidateStrategy checks them.
func ParseSteps(s string) ([]int, error) {
	var steps []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSuffix(strings.TrimSpace(f), "%")
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("steps %q: %q is not a whole percentage; give a list like 10,50,100", s, f)
		}
		steps = append(steps, n)
	}
	return steps, nil
}

// FormatSteps writes steps as ParseSteps reads them: "10,50,100".
func FormatSteps(steps []int) string {
	parts := make([]string, len(steps))
	for i, p := range steps {
		parts[i] = strconv.Itoa(p)
	}
	return strings.Join(parts, ",")
}

// StrategyOf returns an app's strategy with the blue-green default named.
func StrategyOf(app store.App) store.Strategy {
	s := app.Strategy
	if s.Name == "" {
		s.Name = store.StrategyBlueGreen
	}
	return s
}

// SpecOf returns a stored strategy as the API shows it: every setting of the
// strategy present, durations as strings.
func SpecOf(s store.Strategy) StrategySpec {
	str := func(d time.Duration) *string { v := strategyDuration(d); return &v }
	spec := StrategySpec{Name: s.Name}
	if spec.Name == "" {
		spec.Name = store.StrategyBlueGreen
	}
	switch spec.Name {
	case store.StrategyCanary:
		rate, minReq := s.MaxErrorRate, s.MinRequests
		spec.Steps, spec.StepTime, spec.MaxErrorRate, spec.MaxP99, spec.MinRequests =
			append([]int(nil), s.Steps...), str(s.StepTime), &rate, str(s.MaxP99), &minReq
	case store.StrategyRolling:
		batch := s.Batch
		spec.Batch = &batch
	case store.StrategyInPlace:
		spec.Hold = str(s.Hold)
	}
	return spec
}

// DescribeStrategy says in one line what a strategy does with its settings,
// e.g. "canary (steps 10,50,100 every 1m, max 5xx 1%, max p99 off, min 50
// requests per step)".
func DescribeStrategy(s store.Strategy) string {
	switch s.Name {
	case store.StrategyCanary:
		p99 := "off"
		if s.MaxP99 > 0 {
			p99 = strategyDuration(s.MaxP99)
		}
		return fmt.Sprintf("canary (steps %s every %s, max 5xx %s%%, max p99 %s, min %d requests per step)",
			FormatSteps(s.Steps), strategyDuration(s.StepTime), strconv.FormatFloat(s.MaxErrorRate, 'f', -1, 64), p99, s.MinRequests)
	case store.StrategyRolling:
		return fmt.Sprintf("rolling (%d replica(s) at a time)", s.Batch)
	case store.StrategyInPlace:
		return fmt.Sprintf("in-place (requests held up to %s while the new release starts)", strategyDuration(s.Hold))
	}
	return "blue-green (the new release starts beside the old one and takes all traffic once healthy)"
}

// strategyDuration writes d without Go's trailing zero units: "1m", not "1m0s".
func strategyDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
