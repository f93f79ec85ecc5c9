package deploy

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/plat-paas/plat/store"
	"golang.org/x/net/idna"
)

var (
	appNameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
	envKeyRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Config limits: the environment goes to the engine with every container
// start, and a value the engine refuses would fail every later deploy.
const (
	MaxEnvValueBytes = 32 << 10  // one value
	MaxEnvBytes      = 256 << 10 // all keys and values of an app
)

// reservedNames are host labels plat keeps for itself (plat.<domain> serves
// the API and dashboard).
var reservedNames = []string{APIHostLabel, "www", "api"}

// ValidateAppName checks that name can be a DNS label and is not reserved.
func ValidateAppName(name string) error {
	if !appNameRE.MatchString(name) {
		return fmt.Errorf("%w %q: use 1-63 lower-case letters, digits and dashes, starting with a letter and not ending with a dash", ErrInvalidName, name)
	}
	if slices.Contains(reservedNames, name) {
		return fmt.Errorf("%w %q: the name is reserved by plat, choose another", ErrInvalidName, name)
	}
	return nil
}

// ValidateEnvKey checks that key is a valid environment variable name.
func ValidateEnvKey(key string) error {
	if !envKeyRE.MatchString(key) {
		return fmt.Errorf("%w: %q is not a valid environment variable name (letters, digits and _, not starting with a digit)", ErrInvalidConfig, key)
	}
	if key == "PORT" {
		return fmt.Errorf("%w: PORT is set by plat; make your app listen on $PORT", ErrInvalidConfig)
	}
	return nil
}

// ValidateEnvValue checks one config value: the engine passes KEY=value as
// a C string, so a NUL would cut it (or make the start fail).
func ValidateEnvValue(key, value string) error {
	if i := strings.IndexByte(value, 0); i >= 0 {
		return fmt.Errorf("%w: the value of %s has a NUL byte at offset %d; environment values cannot hold NUL", ErrInvalidConfig, key, i)
	}
	if len(value) > MaxEnvValueBytes {
		return fmt.Errorf("%w: the value of %s is %d bytes; the limit is %d (32 KiB): put large data in a file or a service and pass its location", ErrInvalidConfig, key, len(value), MaxEnvValueBytes)
	}
	return nil
}

// ValidateConfigChange checks change against an app's current env and
// returns the env it makes: valid keys and values, within MaxEnvBytes.
func ValidateConfigChange(env map[string]string, change ConfigChange) (map[string]string, error) {
	for _, k := range slices.Sorted(maps.Keys(change.Set)) {
		if err := ValidateEnvKey(k); err != nil {
			return nil, err
		}
		if err := ValidateEnvValue(k, change.Set[k]); err != nil {
			return nil, err
		}
	}
	for _, k := range change.Unset {
		if err := ValidateEnvKey(k); err != nil {
			return nil, err
		}
	}
	out := maps.Clone(env)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, change.Set)
	for _, k := range change.Unset {
		delete(out, k)
	}
	total := 0
	for k, v := range out {
		total += len(k) + len(v)
	}
	if total > MaxEnvBytes {
		return nil, fmt.Errorf("%w: the config would hold %d bytes of keys and values; the limit is %d (256 KiB): unset some keys first", ErrInvalidConfig, total, MaxEnvBytes)
	}
	return out, nil
}

// Host-name limits (RFC 1035), without the trailing dot.
const (
	maxHostLen  = 253
	maxLabelLen = 63
)

// APIHostLabel names plat's own host under the base domain: plat.<domain>
// serves the dashboard, the API and git over HTTPS, so no app may be called
// that (reservedNames) nor hold a name under it (ValidateDomain).
const APIHostLabel = "plat"

var (
	hostLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// numericTLDRE matches a last label that browsers (WHATWG URL) parse as
	// the last part of an IPv4 address: 123.456 or 1.0x7f is no host name.
	numericTLDRE = regexp.MustCompile(`^([0-9]+|0x[0-9a-f]*)$`)
)

// ErrInvalidDomain: a custom domain is malformed or in plat's namespace.
var ErrInvalidDomain = errors.New("invalid domain")

// ValidateDomain checks host as a custom domain of app and returns it
// normalized: lower-case ASCII (internationalized names as xn-- labels), no
// trailing dot. Besides syntax it refuses plat's namespace under base: base
// itself, the names directly under it (default hosts of apps and of plat),
// anything under plat.<base> (the dashboard's host), and anything under
// another app's default host, since a page there could read that host's
// domain cookies. Names under app's own default host are fine. Conflicts
// with other apps' custom domains are the store's to find (AddDomain).
func ValidateDomain(host, base, app string) (string, error) {
	h := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(host), "."))
	if h == "" {
		return "", fmt.Errorf("%w: empty domain: give a host name like www.example.com", ErrInvalidDomain)
	}
	if !isASCII(h) {
		a, err := idna.Lookup.ToASCII(h)
		if err != nil {
			return "", fmt.Errorf("%w: %q is not a valid internationalized host name: %v", ErrInvalidDomain, h, err)
		}
		h = a
	}
	switch {
	case len(h) > maxHostLen:
		return "", fmt.Errorf("%w: domain %q is longer than %d characters", ErrInvalidDomain, h, maxHostLen)
	case net.ParseIP(strings.Trim(h, "[]")) != nil:
		return "", fmt.Errorf("%w: %q is an IP address: give a host name like www.example.com", ErrInvalidDomain, h)
	case strings.Contains(h, "*"):
		return "", fmt.Errorf("%w: %q: wildcard domains are not supported; add each host name", ErrInvalidDomain, h)
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if len(l) > maxLabelLen || !hostLabelRE.MatchString(l) {
			return "", fmt.Errorf("%w: %q is not a valid host name: each dot-separated part must be 1-%d letters, digits or dashes, not starting or ending with a dash", ErrInvalidDomain, h, maxLabelLen)
		}
	}
	if len(labels) < 2 {
		return "", fmt.Errorf("%w: %q is not a full host name: give one like www.example.com", ErrInvalidDomain, h)
	}
	if numericTLDRE.MatchString(labels[len(labels)-1]) {
		return "", fmt.Errorf("%w: %q ends in a number, so browsers read it as an IP address: give a host name like www.example.com", ErrInvalidDomain, h)
	}
	// xn-- labels must be punycode that decodes to a valid name and encodes
	// back to the same bytes; this also refuses other labels with "--" in
	// the third and fourth place, which IDNA reserves.
	u, err := idna.Registration.ToUnicode(h)
	if err == nil {
		var back string
		back, err = idna.Registration.ToASCII(u)
		if err == nil && back != h {
			err = fmt.Errorf("it encodes back as %q", back)
		}
	}
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a valid internationalized host name (%v): give the name as you would type it, or its exact xn-- form", ErrInvalidDomain, h, err)
	}
	if h == base {
		return "", fmt.Errorf("%w: %q is plat's own domain; apps are served at <app>.%s already", ErrInvalidDomain, h, base)
	}
	rest, under := strings.CutSuffix(h, "."+base)
	if !under {
		return h, nil
	}
	owner := rest[strings.LastIndexByte(rest, '.')+1:]
	switch {
	case rest == app:
		return "", fmt.Errorf("%w: %q is already the default host of %s", ErrInvalidDomain, h, app)
	case owner == app && isReleaseLabel(strings.TrimSuffix(rest, "."+app)):
		return "", fmt.Errorf("%w: %q is reserved: vN.%s.%s is where release N of %s answers (its preview host)", ErrInvalidDomain, h, app, base, app)
	case owner == app:
		return h, nil // under the app's own default host
	case owner == APIHostLabel:
		return "", fmt.Errorf("%w: %q is reserved: %s.%s and the names under it belong to plat's dashboard and API", ErrInvalidDomain, h, APIHostLabel, base)
	case rest == owner:
		return "", fmt.Errorf("%w: %q is reserved: names directly under %s are the default hosts of apps and of plat", ErrInvalidDomain, h, base)
	default:
		return "", fmt.Errorf("%w: %q is under %s.%s, the default host of app %s (or of an app of that name created later), and could read its cookies: use a name under %s.%s or outside %s", ErrInvalidDomain, h, owner, base, owner, app, base, base)
	}
}

// isReleaseLabel reports whether label names a release's preview host
// ("v8").
func isReleaseLabel(label string) bool {
	if len(label) < 2 || label[0] != 'v' {
		return false
	}
	for _, c := range label[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// ValidateHealth checks an app's health-check settings: zero fields take
// the defaults, set ones must lie within the bounds, and the deadline must
// leave room for at least one interval.
func ValidateHealth(hc store.HealthCheck) error {
	if hc.Path != "" {
		if err := validateHealthPath(hc.Path); err != nil {
			return err
		}
	}
	if hc.Timeout < 0 || (hc.Timeout > 0 && (hc.Timeout < MinHealthTimeout || hc.Timeout > MaxHealthTimeout)) {
		return fmt.Errorf("%w: timeout %s is out of range: give %s to %s", ErrInvalidHealth, hc.Timeout, MinHealthTimeout, MaxHealthTimeout)
	}
	if hc.Interval < 0 || (hc.Interval > 0 && hc.Interval < MinHealthInterval) {
		return fmt.Errorf("%w: interval %s is too short: give %s or more", ErrInvalidHealth, hc.Interval, MinHealthInterval)
	}
	if hc.Deadline < 0 || hc.Deadline > MaxHealthDeadline {
		return fmt.Errorf("%w: deadline %s is out of range: give at most %s", ErrInvalidHealth, hc.Deadline, MaxHealthDeadline)
	}
	interval, deadline := cmp.Or(hc.Interval, DefaultHealthInterval), cmp.Or(hc.Deadline, DefaultHealthDeadline)
	if deadline < interval {
		return fmt.Errorf("%w: deadline %s is shorter than the interval %s: give a deadline of at least the interval", ErrInvalidHealth, deadline, interval)
	}
	return nil
}

// validateHealthPath accepts an absolute request path of printable ASCII:
// it goes into the probe's request line, so CR, LF, spaces and other
// control characters could split or corrupt that request.
func validateHealthPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w: path %q must start with /", ErrInvalidHealth, p)
	}
	if len(p) > MaxHealthPathLen {
		return fmt.Errorf("%w: path is %d bytes long: give at most %d", ErrInvalidHealth, len(p), MaxHealthPathLen)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return fmt.Errorf("%w: path %q has a space, control, '#' or non-ASCII character at byte %d: percent-encode it", ErrInvalidHealth, p, i)
		}
	}
	if _, err := url.ParseRequestURI(p); err != nil {
		return fmt.Errorf("%w: path %q is not a valid request path: %v", ErrInvalidHealth, p, err)
	}
	return nil
}
