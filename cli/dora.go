package cli

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/plat-paas/plat/api"
)

// defaultDORADays is the window `plat dora` asks for without --days.
const defaultDORADays = 30

// cmdDora prints the four DORA metrics of an app, or of every app.
func cmdDora(e *env, args []string) error {
	fs := e.flags()
	days := fs.Int("days", defaultDORADays, "the window: the last N days (1 to 365)")
	pos, err := e.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if *days < 1 || *days > 365 {
		return usagef("--days %d: give 1 to 365", *days)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	path, what := "/api/dora", "all apps"
	if len(pos) == 1 {
		path, what = appPath(pos[0], "dora"), pos[0]
	}
	var d api.DORA
	raw, err := c.get(e.ctx, path+"?"+url.Values{"days": {strconv.Itoa(*days)}}.Encode(), &d)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	fmt.Fprintf(e.stdout, "DORA metrics of %s, last %d days (%s to %s)\n\n", what, d.Days, d.From.Local().Format("2006-01-02 15:04"), d.To.Local().Format("2006-01-02 15:04"))
	df, lt, cf, tr := d.DeploymentFrequency, d.LeadTime, d.ChangeFailureRate, d.TimeToRestore
	table(e.stdout, [][]string{
		{"METRIC", "VALUE", "BAND"},
		{"deployment frequency", fmt.Sprintf("%s (%s/week)", plural(df.Deploys, "deploy"), strconv.FormatFloat(df.PerWeek, 'f', -1, 64)), orDash(df.Band)},
		{"lead time for changes", doraTime(lt), orDash(lt.Band)},
		{"change failure rate", failureRate(cf), orDash(cf.Band)},
		{"time to restore", doraTime(tr), orDash(tr.Band)},
	})
	if df.Deploys == 0 {
		fmt.Fprintf(e.stdout, "\nNo deploys in this window: push, change config or resources to deploy.\n")
	}
	fmt.Fprintf(e.stdout, "\nTrend (periods of 7 days, oldest first):\n")
	rows := [][]string{{"FROM", "DEPLOYS", "LEAD TIME", "FAILURE RATE", "TIME TO RESTORE"}}
	for _, p := range d.Trend {
		rows = append(rows, []string{
			p.From.Local().Format("2006-01-02"), strconv.Itoa(p.DeploymentFrequency.Deploys),
			medianOf(p.LeadTime), rateOf(p.ChangeFailureRate), medianOf(p.TimeToRestore),
		})
	}
	table(e.stdout, rows)
	fmt.Fprintf(e.stdout, "\nA change failed when a rollback replaced it, or another change within %s; see docs/dora.md.\n", fmtDur(d.FixWindow.D()))
	return nil
}

// doraTime is "1h20m (median of 4)", or "-" without samples.
func doraTime(t api.DORATime) string {
	if t.Median == nil {
		return "-"
	}
	return fmt.Sprintf("%s (median of %d)", longDur(t.Median.D()), t.Samples)
}

func medianOf(t api.DORATime) string {
	if t.Median == nil {
		return "-"
	}
	return longDur(t.Median.D())
}

// failureRate is "17% (2 of 12)", or "-" without deploys.
func failureRate(r api.ChangeFailureRate) string {
	if r.Rate == nil {
		return "-"
	}
	return fmt.Sprintf("%s (%d of %d)", rateOf(r), r.Failed, r.Deploys)
}

func rateOf(r api.ChangeFailureRate) string {
	if r.Rate == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", *r.Rate*100)
}

// longDur prints durations of days as days and hours ("3d4h"), shorter
// ones like fmtDur.
func longDur(d time.Duration) string {
	if d >= 48*time.Hour {
		days, rest := d/(24*time.Hour), d%(24*time.Hour)
		return fmt.Sprintf("%dd%dh", days, rest/time.Hour)
	}
	return fmtDur(d)
}
