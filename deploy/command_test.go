package deploy

import (
	"errors"
	"slices"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "./migrate up", want: []string{"./migrate", "up"}},
		{in: "  /app   args\ta  ", want: []string{"/app", "args", "a"}},
		{in: `/app args 'two words' "and three words"`, want: []string{"/app", "args", "two words", "and three words"}},
		{in: `echo it\'s "a \"quoted\" \$x" '$HOME' a\ b`, want: []string{"echo", "it's", `a "quoted" $x`, "$HOME", "a b"}},
		{in: `x ""`, want: []string{"x", ""}},
		{in: `a'b'"c"d`, want: []string{"abcd"}},
		{in: `"unclosed`, wantErr: true},
		{in: `'unclosed`, wantErr: true},
		{in: `trailing\`, wantErr: true},
		{in: "   ", wantErr: true},
	}
	for _, tt := range tests {
		got, err := SplitCommand(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("SplitCommand(%q): err %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !slices.Equal(got, tt.want) {
			t.Errorf("SplitCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCommandFor(t *testing.T) {
	got, err := commandFor(`./migrate up && echo "$X"`, true)
	if err != nil || !slices.Equal(got, []string{"/bin/sh", "-c", `./migrate up && echo "$X"`}) {
		t.Errorf("with a shell: %q %v", got, err)
	}
	got, err = commandFor(`/app args 'a b' c`, false)
	if err != nil || !slices.Equal(got, []string{"/app", "args", "a b", "c"}) {
		t.Errorf("without a shell: %q %v", got, err)
	}
	if _, err := commandFor(`/app "x`, false); !errors.Is(err, ErrBadCommand) {
		t.Errorf("unclosed quote without a shell: err %v, want ErrBadCommand", err)
	}
}
