package cli

import (
	"bufio"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// isTerminal reports whether stdin or stdout (an io.Reader or io.Writer) is
// a terminal, that is a character device. golang.org/x/term is not a
// dependency; taking another character device (/dev/null) for a terminal
// only means stripping escapes nobody sees, or prompting nobody.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// C0 and C1 control codes the stripper treats specially.
const (
	esc   = 0x1b
	bel   = 0x07
	c1CSI = 0x9b
	c1ST  = 0x9c
	c1OSC = 0x9d
)

// stripControls returns s without terminal escape sequences (CSI such as
// colours and cursor moves, OSC such as window titles and hyperlinks, DCS,
// SOS, PM and APC strings, and two-byte escapes) and without other control
// characters, C0 and C1, except tab and newline. An app's output then
// cannot move the cursor, rewrite earlier lines, retitle the terminal or
// talk to it. Invalid UTF-8 becomes U+FFFD. A sequence cut off at the end
// of s (or of its line) is dropped.
func stripControls(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			b.WriteRune(utf8.RuneError)
			i++
			continue
		}
		switch {
		case r == '\t' || r == '\n':
			b.WriteRune(r)
			i += size
		case r == esc:
			i = skipEscape(s, i+size)
		case r == c1CSI:
			i = skipCSI(s, i+size)
		case r == c1OSC || r == 0x90 || r == 0x98 || r == 0x9e || r == 0x9f: // OSC, DCS, SOS, PM, APC
			i = skipString(s, i+size)
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			i += size
		default:
			b.WriteString(s[i : i+size])
			i += size
		}
	}
	return b.String()
}

// skipEscape skips the rest of a sequence whose ESC ended before i.
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch c := s[i]; {
	case c == '[':
		return skipCSI(s, i+1)
	case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_':
		return skipString(s, i+1)
	case c >= 0x20 && c <= 0x2f: // intermediates, then one final byte: ESC ( B
		for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
			i++
		}
		if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e {
			i++
		}
		return i
	case c >= 0x30 && c <= 0x7e: // ESC 7, ESC c, ESC M ...
		return i + 1
	}
	return i // a lone ESC: drop it, keep what follows
}

// skipCSI skips parameter and intermediate bytes up to and including the
// final byte of a control sequence.
func skipCSI(s string, i int) int {
	for i < len(s) {
		c := s[i]
		i++
		if c >= 0x40 && c <= 0x7e {
			return i
		}
		if c < 0x20 || c > 0x3f {
			// Not part of a CSI: the terminal aborts the sequence here.
			return i - 1
		}
	}
	return i
}

// skipString skips a control string (OSC, DCS, ...) up to and including its
// terminator: BEL, ESC \ or the C1 ST. An unterminated one ends before the
// next newline, so it cannot swallow the lines after it.
func skipString(s string, i int) int {
	for i < len(s) {
		switch {
		case s[i] == '\n':
			return i
		case s[i] == bel:
			return i + 1
		case s[i] == esc && i+1 < len(s) && s[i+1] == '\\':
			return i + 2
		case strings.HasPrefix(s[i:], string(rune(c1ST))):
			return i + len(string(rune(c1ST)))
		}
		i++
	}
	return i
}

// copyLogs copies an app's log stream to w, line by line through
// stripControls when w is a terminal: the lines are the app's output, and
// a terminal would obey the escape sequences in them. Elsewhere (a file, a
// pipe) the bytes pass unchanged.
func copyLogs(w io.Writer, r io.Reader, terminal bool) error {
	if !terminal {
		_, err := io.Copy(w, r)
		return err
	}
	br := bufio.NewReader(r)
	for {
		line, rerr := br.ReadString('\n')
		if line != "" {
			if _, err := io.WriteString(w, stripControls(line)); err != nil {
				return err
			}
		}
		if rerr != nil {
			return rerr
		}
	}
}
