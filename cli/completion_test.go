package cli

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeFetch answers completion's daemon calls from canned JSON.
func fakeFetch(answers map[string]string) func(string, any) error {
	return func(path string, out any) error {
		a, ok := answers[path]
		if !ok {
			return errors.New("404")
		}
		return json.Unmarshal([]byte(a), out)
	}
}

func TestComplete(t *testing.T) {
	cp := &completer{fetch: fakeFetch(map[string]string{
		"/api/apps":              "[" + appWeb + "," + appAPI + "]",
		"/api/apps/web/releases": releasesJSON,
		"/api/apps/web":          appWeb,
		"/api/tokens":            `[{"name":"laptop"},{"name":"ci"}]`,
	})}
	tests := []struct {
		words []string
		want  []string
	}{
		{[]string{""}, commandNames()},
		{[]string{"apps:"}, []string{"apps:create", "apps:info", "apps:destroy"}},
		{[]string{"--json", "rel"}, []string{"releases", "releases:log", "releases:dockerfile", "release-mode", "release-mode:set", "releases:unstage"}},
		{[]string{"-"}, []string{"--json", "--help", "--version"}},
		{[]string{"apps:info", ""}, []string{"web", "api"}},
		{[]string{"apps:info", "w"}, []string{"web"}},
		{[]string{"apps:info", "web", ""}, nil},                       // takes one app
		{[]string{"apps:create", ""}, nil},                            // a new name
		{[]string{"rollback", "web", ""}, []string{"v3", "v2", "v1"}}, // newest first
		{[]string{"rollback", "web", "2"}, []string{"2"}},
		{[]string{"releases:log", "--json", "web", "v"}, []string{"v3", "v2", "v1"}},
		{[]string{"rollback", "nope", ""}, nil}, // daemon error: silent
		{[]string{"logs", "web", "-"}, []string{"-f", "--json", "-n", "--preview", "--source"}},
		{[]string{"logs", "-n", ""}, nil},                         // a flag's value
		{[]string{"logs", "-n", "5", "w"}, []string{"web"}},       // the value is not an argument
		{[]string{"logs", "-f", "w"}, []string{"web"}},            // a bool flag takes no value
		{[]string{"tokens:revoke", ""}, []string{"laptop", "ci"}}, // tokens, not apps
		{[]string{"config:unset", "web", ""}, []string{"SECRET", "A_KEY"}},
		{[]string{"config:unset", "web", "SECRET", "A"}, []string{"A_KEY"}}, // KEY... repeats
		{[]string{"config:set", "web", ""}, nil},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}},
		{[]string{"hsts:set", "web", "o"}, []string{"on", "off"}},
		{[]string{"strategy:set", "web", ""}, []string{"blue-green", "canary", "rolling", "in-place"}},
		{[]string{"strategy:set", "web", "canary", "--st"}, []string{"--step-time", "--steps"}},
		{[]string{"help", "sc"}, []string{"scale"}},
		{[]string{"apps:destroy", "web", "--confirm", ""}, nil},
		{[]string{"nosuch", ""}, nil},
		{[]string{"__complete", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.words, " "), func(t *testing.T) {
			got := cp.complete(tt.words)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("complete(%q) = %q, want %q", tt.words, got, tt.want)
			}
		})
	}
	if got := (&completer{}).complete([]string{"apps:info", ""}); got != nil {
		t.Fatalf("without a daemon: %q, want nothing", got)
	}
}

// Every command hands its FlagSet to the completion before it does anything.
func TestCompletionDescribesEveryCommand(t *testing.T) {
	t.Setenv("PLAT_URL", "http://127.0.0.1:1") // nothing may be reached
	t.Setenv("PLAT_TOKEN", testToken)
	for _, c := range commands {
		var fs = describeFlags(c)
		if fs.Lookup("json") == nil {
			t.Errorf("%s: its flags were not described (does it call e.parse first?)", c.name)
		}
	}
}

func TestPositionals(t *testing.T) {
	tests := []struct {
		cmd     string
		kinds   []argKind
		repeats bool
	}{
		{"apps:destroy", []argKind{argApp}, false}, // --confirm NAME is a flag
		{"login", []argKind{argNone}, false},
		{"rollback", []argKind{argApp, argRelease}, false},
		{"resources:set", []argKind{argApp}, false},
		{"scale", []argKind{argApp, argNone}, false},
		{"config:set", []argKind{argApp, argNone}, true},
		{"hsts:set", []argKind{argApp, argChoice}, false},
		{"strategy:set", []argKind{argApp, argChoice}, false},
		{"tokens:revoke", []argKind{argToken}, false},
	}
	for _, tt := range tests {
		specs, repeats := positionals(findCommand(tt.cmd))
		var kinds []argKind
		for _, s := range specs {
			kinds = append(kinds, s.kind)
		}
		if !slices.Equal(kinds, tt.kinds) || repeats != tt.repeats {
			t.Errorf("%s: kinds %v repeats %v, want %v %v", tt.cmd, kinds, repeats, tt.kinds, tt.repeats)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out := runOK(t, []string{"completion", sh}, "plat __complete")
		if sh == "zsh" && !strings.HasPrefix(out, "#compdef plat") {
			t.Errorf("zsh script does not start with #compdef: %q", out[:40])
		}
	}
	if _, errOut, code := run("completion", "tcsh"); code != 2 || !strings.Contains(errOut, "choose bash, zsh or fish") {
		t.Fatalf("completion tcsh: exit %d %q", code, errOut)
	}
}

// The bash script, sourced in a real bash, completes through `plat
// __complete` (this test binary stands in for plat) against a daemon.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed for this test")
	}
	f := newFake(t, nil)
	bin := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(bin, "plat")); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "plat.bash")
	out := runOK(t, []string{"completion", "bash"})
	if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(line, token string) []string {
		t.Helper()
		// COMP_WORDS as bash splits them (COMP_WORDBREAKS has ':').
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", `source "$1"
COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}
COMP_WORDBREAKS=$' \t\n"'"'"'><=;|&(:'
_plat
printf '%s\n' "${COMPREPLY[@]}"`, "bash", script, line)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "PLAT_CLI_TEST_MAIN=1", "PLAT_URL="+f.URL, "PLAT_TOKEN="+token)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, b)
		}
		return strings.Fields(string(b))
	}
	tests := []struct {
		line string
		want []string
	}{
		{"plat apps:i", []string{"info"}}, // bash replaces only what follows the ':'
		{"plat rel", []string{"releases", "releases:log", "releases:dockerfile", "release-mode", "release-mode:set", "releases:unstage"}},
		{"plat apps:info ", []string{"web", "api"}},
		{"plat rollback web ", []string{"v3", "v2", "v1"}},
		{"plat logs web -", []string{"-f", "--json", "-n", "--preview", "--source"}},
		{"plat completion z", []string{"zsh"}},
	}
	for _, tt := range tests {
		if got := complete(tt.line, testToken); !slices.Equal(got, tt.want) {
			t.Errorf("%q: COMPREPLY %q, want %q", tt.line, got, tt.want)
		}
	}
	// The daemon refusing the token: no candidates, no noise.
	if got := complete("plat apps:info ", "wrong-token"); len(got) != 0 {
		t.Errorf("refused: COMPREPLY %q, want none", got)
	}
}
