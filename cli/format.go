package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/plat-paas/plat/api"
)

// now is replaced in tests.
var now = time.Now

// ago formats t relative to now: "just now", "45s ago", "3m ago", "5h ago",
// "12d ago", and the date for older times. The zero time is "-".
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now().Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
	}
	return t.Local().Format("2006-01-02")
}

// fmtDur prints a duration without trailing zero units: 1m, not 1m0s.
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

func shortImage(s string) string {
	if rest, ok := strings.CutPrefix(s, "sha256:"); ok && len(rest) > 12 {
		return rest[:12]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func vstr(v int) string {
	if v <= 0 {
		return "-"
	}
	return fmt.Sprintf("v%d", v)
}

func healthString(h api.HealthCheck) string {
	var parts []string
	if h.Path != "" {
		parts = append(parts, "path "+h.Path)
	}
	if h.Timeout != 0 {
		parts = append(parts, "timeout "+fmtDur(time.Duration(h.Timeout)))
	}
	if h.Interval != 0 {
		parts = append(parts, "interval "+fmtDur(time.Duration(h.Interval)))
	}
	if h.Deadline != 0 {
		parts = append(parts, "deadline "+fmtDur(time.Duration(h.Deadline)))
	}
	if len(parts) == 0 {
		return "defaults"
	}
	return strings.Join(parts, ", ")
}

// table writes tab-separated rows aligned in columns.
func table(w io.Writer, rows [][]string) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	for _, l := range strings.SplitAfter(buf.String(), "\n") {
		if l != "" {
			io.WriteString(w, strings.TrimRight(l, " \n")+"\n")
		}
	}
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// writeRawJSON re-indents JSON received from the daemon, keeping every field.
func writeRawJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// jsonOrDecode writes the daemon's answer as it is under --json (done is
// true: nothing more to print) or decodes it into v for the human output.
func (e *env) jsonOrDecode(raw []byte, v any) (done bool, err error) {
	if e.json {
		return true, writeRawJSON(e.stdout, raw)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("unexpected answer: %v", err)
	}
	return false, nil
}
