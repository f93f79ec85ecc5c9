//go:build !linux && !darwin

package cli

import "errors"

// makeRaw is not supported here: the terminal stays as it is.
func makeRaw(any) (func(), error) {
	return nil, errors.New("raw terminal mode is not supported on this platform")
}
