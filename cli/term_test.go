package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStripControls(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "GET / 200 12ms\n", "GET / 200 12ms\n"},
		{"tab and unicode kept", "a\tb ünï 日本 ✓\n", "a\tb ünï 日本 ✓\n"},
		{"colour", "\x1b[31mred\x1b[0m done\n", "red done\n"},
		{"256 colour and bold", "\x1b[1;38;5;196mX\x1b[m", "X"},
		{"cursor up and erase line", "ok\x1b[1A\x1b[2Kfake\n", "okfake\n"},
		{"clear screen", "\x1b[2J\x1b[Hhi", "hi"},
		{"private mode", "\x1b[?1049hx\x1b[?25l", "x"},
		{"OSC title BEL", "\x1b]0;pwned\x07after", "after"},
		{"OSC title ST", "\x1b]2;pwned\x1b\\after", "after"},
		{"OSC 8 hyperlink", "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\", "click"},
		{"OSC 52 clipboard", "\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07x", "x"},
		{"unterminated OSC", "a\x1b]0;title with no end\nnext", "a\nnext"},
		{"DCS", "\x1bPq#0;2;0;0;0\x1b\\x", "x"},
		{"APC", "\x1b_Gf=100;AAAA\x1b\\x", "x"},
		{"charset", "\x1b(0lqk\x1b(B", "lqk"},
		{"two-byte escapes", "\x1b7\x1bM\x1bcx\x1b8", "x"},
		{"lone ESC at the end", "x\x1b", "x"},
		{"ESC before a non-final byte", "x\x1b\x01y", "xy"},
		{"CSI cut short", "x\x1b[31", "x"},
		{"CSI aborted by a control", "x\x1b[3\ny", "x\ny"},
		{"carriage return overwrite", "password: hunter2\rpassword: *******\n", "password: hunter2password: *******\n"},
		{"backspace", "ab\b\bXY", "abXY"},
		{"bell, NUL, DEL, vertical tab, form feed", "\a\x00\x7f\v\fz", "z"},
		{"C1 CSI", "\u009b31mred", "red"},
		{"C1 OSC", "\u009d0;t\u009cafter", "after"},
		{"other C1", "\u0085\u0084x", "x"},
		{"invalid UTF-8", "a\xffb\x9bc", "a\uFFFDb\uFFFDc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stripControls(tc.in); got != tc.want {
				t.Errorf("stripControls(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestStripControlsInvariant: whatever goes in, what comes out is valid
// UTF-8 with no control character but tab and newline.
func TestStripControlsInvariant(t *testing.T) {
	var all []byte
	for b := range 256 {
		all = append(all, byte(b), '[', byte(b), ']', 0x1b, byte(b))
	}
	for _, in := range []string{string(all), strings.Repeat("\x1b[", 100), "\u009b\u009d\u0090"} {
		checkStripped(t, in, stripControls(in))
	}
}

func checkStripped(t *testing.T, in, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("stripControls(%q) = %q: not valid UTF-8", in, out)
	}
	for _, r := range out {
		if (r < 0x20 && r != '\t' && r != '\n') || (r >= 0x7f && r <= 0x9f) {
			t.Fatalf("stripControls(%q) = %q keeps control %U", in, out, r)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	for name, tc := range map[string]struct {
		v    any
		want bool
	}{
		"buffer":       {&bytes.Buffer{}, false},
		"regular file": {file, false},
		"pipe":         {pw, false},
		"nil file":     {(*os.File)(nil), false},
	} {
		if got := isTerminal(tc.v); got != tc.want {
			t.Errorf("isTerminal(%s) = %v; want %v", name, got, tc.want)
		}
	}
	// A pseudo-terminal is a character device.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("open /dev/ptmx: %v", err)
		}
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if !isTerminal(ptmx) {
		t.Error("isTerminal(/dev/ptmx) = false; want true")
	}
}

// TestCopyLogs: escapes are stripped for a terminal and passed unchanged
// to a file or pipe, where they may be wanted (less -R, a log file).
func TestCopyLogs(t *testing.T) {
	in := "\x1b[32mok\x1b[0m line one\n\x1b]0;pwned\x07line two\r\npartial \x1b[1m"
	var term, pipe bytes.Buffer
	if err := copyLogs(&term, strings.NewReader(in), true); err == nil || err.Error() != "EOF" {
		t.Fatalf("copyLogs to a terminal: %v; want EOF at the end", err)
	}
	if want := "ok line one\nline two\npartial "; term.String() != want {
		t.Errorf("to a terminal: %q; want %q", term.String(), want)
	}
	if err := copyLogs(&pipe, strings.NewReader(in), false); err != nil {
		t.Fatal(err)
	}
	if pipe.String() != in {
		t.Errorf("to a pipe: %q; want the bytes unchanged", pipe.String())
	}
}

// FuzzStripControls: whatever an app prints, the terminal gets valid UTF-8
// with no control character but tab and newline, and stripping twice
// changes nothing more.
func FuzzStripControls(f *testing.F) {
	for _, s := range []string{"plain\n", "\x1b[31mred\x1b[0m", "\x1b]0;t\x07x", "\x1b]8;;u\x1b\\l", "\u009b1m", "a\xffb", "x\x1b", "\r\b\a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := stripControls(in)
		checkStripped(t, in, out)
		if again := stripControls(out); again != out {
			t.Fatalf("stripControls is not idempotent on %q: %q then %q", in, out, again)
		}
		if strings.Count(out, "\n") > strings.Count(in, "\n") {
			t.Fatalf("stripControls(%q) = %q adds lines", in, out)
		}
	})
}
