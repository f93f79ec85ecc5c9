package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/plat-paas/plat/api"
)

// metricsRows is about how many rows the table shows when --step is not
// given: the window is cut into steps of whole minutes to fit.
const metricsRows = 12

func cmdMetrics(e *env, args []string) error {
	fs := e.flags()
	since := fs.String("since", "1h", "how far back: 15m, 1h, up to 24h")
	step := fs.String("step", "", "width of a row, whole minutes (default: the window cut in about 12 rows)")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	d, err := time.ParseDuration(*since)
	if err != nil || d <= 0 {
		return usagef("--since %q: give a duration like 15m, 1h or 24h", *since)
	}
	st := *step
	if st == "" {
		st = max(time.Minute, (d/metricsRows+time.Minute-1)/time.Minute*time.Minute).String()
	} else if sd, err := time.ParseDuration(st); err != nil || sd <= 0 {
		return usagef("--step %q: give a duration like 1m or 5m", st)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	q := url.Values{"since": {*since}, "step": {st}}
	raw, err := c.call(e.ctx, http.MethodGet, appPath(name, "metrics")+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	var m api.AppMetrics
	if done, err := e.jsonOrDecode(raw, &m); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s traffic, last %s (rows of %s; kept %s, in memory)\n\n", m.App, m.Since, m.Step, m.Retention)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "UNTIL\tREQS\t2xx\t3xx\t4xx\t5xx\t5xx%\tp50\tp95\tp99\tBYTES\tIN FLIGHT\t")
	row := func(label string, p api.MetricsPoint) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t\n", label, p.Requests, p.Status2xx, p.Status3xx,
			p.Status4xx, p.Status5xx, percent(p.ErrorRate, p.Requests), ms(p.P50Ms, p.Requests), ms(p.P95Ms, p.Requests),
			ms(p.P99Ms, p.Requests), humanBytes(p.Bytes), p.InFlight)
	}
	for _, p := range m.Points {
		label := p.Time.Local().Format("15:04")
		if p.Partial {
			label = "now"
		}
		row(label, p)
	}
	row("total", m.Totals)
	tw.Flush()
	if len(m.Releases) > 0 {
		fmt.Fprintln(e.stdout)
		tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "RELEASE\tREQS\t2xx\t3xx\t4xx\t5xx\t5xx%\tp50\tp95\tp99\tBYTES\tIN FLIGHT\t")
		for _, r := range m.Releases {
			row(r.Release, r.Totals)
		}
		tw.Flush()
	}
	if !m.RouterLogs {
		fmt.Fprintf(e.stdout, "\nrouter request lines are off for %s (plat logs:router %s on)\n", m.App, m.App)
	}
	return nil
}

func percent(rate float64, n uint64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", rate*100)
}

func ms(v float64, n uint64) string {
	if n == 0 {
		return "-"
	}
	if v < 1 {
		return fmt.Sprintf("%.2fms", v)
	}
	return fmt.Sprintf("%.0fms", v)
}

// humanBytes renders n like the router's log lines: 512B, 1.2KB, 3.4MB.
func humanBytes(n uint64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%cB", float64(n)/float64(div), "KMGT"[exp])
}

func cmdLogsRouter(e *env, args []string) error {
	fs := e.flags()
	pos, err := e.parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	name := pos[0]
	var on bool
	switch strings.ToLower(pos[1]) {
	case "on":
		on = true
	case "off":
	default:
		return usagef("say on or off: plat logs:router %s on", name)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodPut, appPath(name, "router-logs"), api.RouterLogs{Enabled: on})
	if err != nil {
		return err
	}
	var out api.RouterLogs
	if done, err := e.jsonOrDecode(raw, &out); done || err != nil {
		return err
	}
	state := "off"
	if out.Enabled {
		state = "on"
	}
	fmt.Fprintf(e.stdout, "%s router request lines: %s\n", name, state)
	return nil
}
