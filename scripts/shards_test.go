// Package scripts_test tests the shell scripts test.sh and install.sh source.
package scripts_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTestBinary behaves like a Go test binary for plat_test_shards: it
// lists its tests, and for -test.run runs the names in it: TestFail* fail
// (exit 1), TestKilled* die of SIGKILL, TestSigint* fail if SIGINT is
// ignored (tests that Ctrl-C a child need it), the rest pass.
const fakeTestBinary = `#!/usr/bin/env bash
case "$1" in
-test.list) printf '%s\n' $FAKE_TESTS; exit ;;
esac
run=""
for a in "$@"; do case "$a" in -test.run) run=next ;; *) [ "$run" = next ] && run="$a" ;; esac; done
case "$run" in
*TestSigint*)
  ign=$(awk '/^SigIgn/ { print $2 }' /proc/$$/status)
  if (( 0x$ign & 2 )); then echo "--- FAIL: TestSigint: SIGINT is ignored"; exit 1; fi ;;
esac
case "$run" in
*TestKilled*) echo "=== RUN TestKilled"; kill -9 $$ ;;
*TestFail*) echo "--- FAIL: TestFail"; echo FAIL; exit 1 ;;
esac
echo PASS
echo "ok shard $run"
`

// TestShards runs plat_test_shards under test.sh's set -euo pipefail: each
// shard's exit status is collected, a failing or killed shard is reported
// with its output and fails the run, and the others still report ok.
func TestShards(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to run test.sh's scripts")
	}
	bin := filepath.Join(t.TempDir(), "fake.test")
	if err := os.WriteFile(bin, []byte(fakeTestBinary), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		tests string // shard 1 runs the 1st and 3rd, shard 2 the 2nd and 4th
		ok    bool
		want  []string
	}{
		{"all pass", "TestA TestB TestC TestD", true, []string{
			"ok  \tplat/x (shard 1/2)\tok shard ^(TestA|TestC)$",
			"ok  \tplat/x (shard 2/2)\tok shard ^(TestB|TestD)$",
		}},
		{"a shard fails", "TestFailX TestB TestC TestD", false, []string{
			"--- FAIL: TestFail",
			"FAIL\tplat/x (shard 1/2, exit status 1)",
			"ok  \tplat/x (shard 2/2)\tok shard ^(TestB|TestD)$",
		}},
		{"a shard is killed", "TestA TestKilledY TestC TestD", false, []string{
			"ok  \tplat/x (shard 1/2)\tok shard ^(TestA|TestC)$",
			"=== RUN TestKilled",
			"FAIL\tplat/x (shard 2/2, exit status 137)",
		}},
		{"both fail", "TestFailX TestFailY", false, []string{
			"FAIL\tplat/x (shard 1/2, exit status 1)",
			"FAIL\tplat/x (shard 2/2, exit status 1)",
		}},
		{"no tests", "", false, []string{"FAIL\tplat/x: " + bin + " lists no tests"}},
		{"SIGINT reaches the tests", "TestSigintA TestSigintB", true, []string{
			"ok  \tplat/x (shard 1/2)\tok shard ^(TestSigintA)$",
			"ok  \tplat/x (shard 2/2)\tok shard ^(TestSigintB)$",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("bash", "-c", `set -euo pipefail; . ./shards.sh; plat_test_shards "$0" 2 plat/x`, bin)
			cmd.Env = append(os.Environ(), "FAKE_TESTS="+tc.tests)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			switch {
			case tc.ok && err != nil:
				t.Errorf("plat_test_shards failed (%v); want success", err)
			case !tc.ok && !(errors.As(err, &exit) && exit.ExitCode() == 1):
				t.Errorf("plat_test_shards: %v; want exit status 1", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
			// bash itself reports a job killed by a signal; nothing else may
			// go to stderr (a missing status file did: "cat: ...: No such file").
			if s := stderr.String(); s != "" && !strings.Contains(s, "Killed") {
				t.Errorf("stderr: %s", s)
			}
		})
	}
}
