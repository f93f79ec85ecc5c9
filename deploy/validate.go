package deploy

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
)

var (
	appNameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
	envKeyRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// reservedNames are host labels plat keeps for itself (plat.<domain> serves
// the API and dashboard).
var reservedNames = []string{"plat", "www", "api"}

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

// maxHostLen is the longest DNS name (RFC 1035), without the trailing dot.
const maxHostLen = 253

var hostLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateDomain checks a custom domain and returns it normalized (lower
// case, no trailing dot). Names directly under the base domain are refused:
// they are the default hosts of apps and of plat itself.
func ValidateDomain(host, base string) (string, error) {
	h := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(host), "."))
	switch {
	case h == "":
		return "", errors.New("empty domain: give a host name like www.example.com")
	case len(h) > maxHostLen:
		return "", fmt.Errorf("domain %q is longer than %d characters", h, maxHostLen)
	case net.ParseIP(strings.Trim(h, "[]")) != nil:
		return "", fmt.Errorf("%q is an IP address: give a host name like www.example.com", h)
	case strings.Contains(h, "*"):
		return "", fmt.Errorf("%q: wildcard domains are not supported; add each host name", h)
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if !hostLabelRE.MatchString(l) {
			return "", fmt.Errorf("%q is not a valid host name: each dot-separated part must be 1-63 letters, digits or dashes, not starting or ending with a dash", h)
		}
	}
	if len(labels) < 2 {
		return "", fmt.Errorf("%q is not a full host name: give one like www.example.com", h)
	}
	if h == base || (strings.HasSuffix(h, "."+base) && !strings.Contains(strings.TrimSuffix(h, "."+base), ".")) {
		return "", fmt.Errorf("%q is reserved: names directly under %s are the default hosts of apps and of plat", h, base)
	}
	return h, nil
}
