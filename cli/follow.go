package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/api"
)

// Reconnecting `plat logs -f`: a stream that ends while the user still
// follows (the daemon was upgraded or restarted) is opened again from the
// last line shown, so nothing is lost and nothing shown twice.
const (
	// followRetryFor is how long -f keeps trying to reach the daemon again.
	followRetryFor = 2 * time.Minute
	followRetryMin = 100 * time.Millisecond
	followRetryMax = 2 * time.Second
)

// formatLine is l as `plat logs` prints it.
func formatLine(l api.LogLine) string {
	if l.Source == "router" {
		return "router | " + l.Text
	}
	if l.Replica != "" {
		return l.Replica + " | " + l.Text
	}
	return l.Text
}

// followLogs streams name's output until Ctrl-C, reconnecting as needed.
func followLogs(e *env, c *client, name, source string, tail int) error {
	since := time.Time{}
	began := time.Now()
	terminal := isTerminal(e.stdout)
	var brokenAt time.Time // when the stream last broke; zero while it runs
	wait := followRetryMin
	for {
		q := url.Values{"follow": {"1"}, "format": {"json"}, "tail": {strconv.Itoa(tail)}}
		if source != "" {
			q.Set("source", source)
		}
		switch {
		case !since.IsZero():
			q.Set("since", since.Format(time.RFC3339Nano))
		case !brokenAt.IsZero() || tail == 0:
			// Nothing shown yet: only lines newer than the first connection.
			q.Set("since", began.UTC().Format(time.RFC3339Nano))
		}
		resp, err := c.do(e.ctx, true, http.MethodGet, appPath(name, "logs")+"?"+q.Encode(), nil)
		if errors.Is(err, errInterrupted) || e.ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// After a break, transport errors and 5xx (a daemon between
			// workers) are retried; a 4xx (a revoked token) is final.
			var ae *apiError
			retryable := !brokenAt.IsZero() && (!errors.As(err, &ae) || ae.Status >= 500)
			if !retryable || time.Since(brokenAt) > followRetryFor {
				return err
			}
			select {
			case <-e.ctx.Done():
				return nil
			case <-time.After(wait):
			}
			wait = min(2*wait, followRetryMax)
			continue
		}
		brokenAt, wait = time.Time{}, followRetryMin
		err = copyLogLines(e, name, resp.Body, terminal, &since)
		resp.Body.Close()
		if e.ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) && !isBrokenStream(err) {
			return err
		}
		fmt.Fprintln(e.stderr, "plat: the log stream ended (the daemon restarted?); reconnecting…")
		brokenAt = time.Now()
	}
}

// isBrokenStream: the connection went away under the stream.
func isBrokenStream(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "unexpected EOF") || strings.Contains(s, "broken pipe") || strings.Contains(s, "use of closed")
}

// copyLogLines prints the NDJSON lines of r, recording the last one's time.
func copyLogLines(e *env, name string, r io.Reader, terminal bool, since *time.Time) error {
	br := bufio.NewReader(r)
	enc := json.NewEncoder(e.stdout)
	for {
		raw, rerr := br.ReadBytes('\n')
		if len(raw) > 0 && raw[len(raw)-1] == '\n' {
			var l api.LogLine
			if err := json.Unmarshal(raw, &l); err != nil {
				return fmt.Errorf("bad log line from the daemon: %v", err)
			}
			text := formatLine(l)
			var err error
			switch {
			case e.json:
				err = enc.Encode(map[string]string{"app": name, "line": text})
			case terminal:
				_, err = io.WriteString(e.stdout, stripControls(text+"\n"))
			default:
				_, err = io.WriteString(e.stdout, text+"\n")
			}
			if err != nil {
				return err
			}
			if l.Time.After(*since) {
				*since = l.Time
			}
		}
		if rerr != nil {
			return rerr
		}
	}
}
