//go:build race

package daemon_test

// raceEnabled makes the integration tests build the daemon with -race too.
const raceEnabled = true
