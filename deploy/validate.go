package deploy

import (
	"fmt"
	"regexp"
	"slices"
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
