package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/plat-paas/plat/bench/load"
)

type report struct {
	text, samplesCSV, deploysCSV string
	pass                         bool
}

func (r report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, content := range map[string]string{"report.md": r.text, "samples.csv": r.samplesCSV, "deploys.csv": r.deploysCSV} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (s *soak) report(kept, destroyed leftovers, tmpLeft, dataLeft []string, dataBefore int64) report {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	before, after := s.samples[0], s.samples[len(s.samples)-1]
	during := s.samples[1 : len(s.samples)-1]

	p("## Soak: %d deploys of %d app(s)\n\n", s.o.deploys, s.o.apps)
	p("Machine: %s; %s. Run took %s. Daemon: --retain %d, health deadline %s; load: %d keep-alive client(s) per app, %s pause.\n\n",
		machine(), runtime.Version(), time.Since(s.started).Round(time.Second), s.o.retain, s.o.healthDeadline, s.o.clients, s.o.pause)

	p("### Growth (last third of the samples during the deploys vs the first third)\n\n")
	p("| metric | before | first third | last third | after %s settle | trend per 100 deploys | verdict |\n", s.o.settle)
	p("|---|---:|---:|---:|---:|---:|---|\n")
	growthOK := true
	for _, m := range metrics {
		t := judge(m, before, during, after)
		verdict := t.verdict()
		growthOK = growthOK && t.ok()
		p("| %s | %s | %s | %s | %s | %+.1f | %s |\n", m.name, num(t.before, m.unit), num(t.first, m.unit), num(t.last, m.unit),
			num(t.after, m.unit), t.perHundred, verdict)
	}
	p("\n")

	p("### Deploys\n\n| op | count | unexpected outcome | median | max |\n|---|---:|---:|---:|---:|\n")
	unexpected := 0
	for _, st := range statsByOp(s.deploys) {
		unexpected += st.unexpected
		p("| %s | %d | %d | %s | %s |\n", st.op, st.count, st.unexpected, st.median.Round(time.Millisecond), st.max.Round(time.Millisecond))
	}
	for _, r := range s.deploys {
		if !r.ok {
			p("\n- deploy %d (%s %s): %s", r.n, r.app, r.op, r.problem)
		}
	}
	p("\n")

	var total load.Result
	for _, sm := range s.samples {
		total = mergeResults([]load.Result{total, sm.load})
	}
	p("### Requests through the router during the whole run\n\n")
	p("%d requests, %d ok, %d non-2xx, %d transport errors; slowest %s.\n",
		total.Requests, total.OK, total.Non2xx, total.Errors, total.Max.Round(time.Millisecond))
	for _, f := range total.Failures {
		p("- %s\n", f)
	}
	p("\n")

	p("### Left behind\n\n| check | %s | %s |\n|---|---|---|\n", kept.label, destroyed.label)
	p("| containers (found / expected) | %d / %d%s | %d / %d%s |\n", kept.containers, kept.containersWant, notRunning(kept),
		destroyed.containers, destroyed.containersWant, notRunning(destroyed))
	p("| images of the instance (found / kept releases need) | %d / %d%s | %d / %d%s |\n", kept.images, kept.imagesWant, imageDiff(kept),
		destroyed.images, destroyed.imagesWant, imageDiff(destroyed))
	p("| untagged layers no kept image needs | %s | %s |\n", list(kept.orphans), list(destroyed.orphans))
	p("| networks of the instance | %s | %s |\n", list(kept.networks), list(destroyed.networks))
	p("| other networks made during the run (not labelled as this instance's) | %s | %s |\n", list(kept.otherNetworks), list(destroyed.otherNetworks))
	p("\nAfter the daemon stopped: temp files in its TMPDIR: %s; temp files, git quarantines, locks or repositories in its data dir: %s. "+
		"Data dir %s before the deploys, %s after destroying the apps.\n\n",
		list(tmpLeft), list(dataLeft), size(dataBefore), size(dirSize(s.d.Data)))

	pass := growthOK && unexpected == 0 && total.Failed() == 0 && kept.ok() && destroyed.ok() && len(tmpLeft) == 0 && len(dataLeft) == 0
	verdict := "PASS"
	if !pass {
		var why []string
		if !growthOK {
			why = append(why, "something grows")
		}
		if unexpected > 0 {
			why = append(why, fmt.Sprintf("%d deploys ended unexpectedly", unexpected))
		}
		if total.Failed() > 0 {
			why = append(why, fmt.Sprintf("%d requests failed", total.Failed()))
		}
		if !kept.ok() || !destroyed.ok() || len(tmpLeft) > 0 || len(dataLeft) > 0 {
			why = append(why, "something was left behind")
		}
		verdict = "FAIL: " + strings.Join(why, "; ")
	}
	p("**Verdict: %s**\n\n", verdict)

	p("### Samples\n\n| sample | deploys | elapsed | RSS MB | heap live MB | Go total MB | goroutines | threads | fds | requests | failed |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	csv := "label,deploys,elapsed_s,rss_kb,heap_live_bytes,go_total_bytes,goroutines,threads,fds,requests,failed\n"
	for _, sm := range s.samples {
		p("| %s | %d | %s | %.1f | %.1f | %.1f | %d | %d | %d | %d | %d |\n", sm.label, sm.deploys, sm.elapsed.Round(time.Second),
			mb(uint64(sm.rssKB)*1024), mb(sm.heapLive), mb(sm.goTotal), sm.goroutines, sm.threads, sm.fds, sm.load.Requests, sm.load.Failed())
		csv += fmt.Sprintf("%s,%d,%.0f,%d,%d,%d,%d,%d,%d,%d,%d\n", sm.label, sm.deploys, sm.elapsed.Seconds(), sm.rssKB, sm.heapLive,
			sm.goTotal, sm.goroutines, sm.threads, sm.fds, sm.load.Requests, sm.load.Failed())
	}
	deploys := "n,app,op,took_ms,ok,problem\n"
	for _, r := range s.deploys {
		deploys += fmt.Sprintf("%d,%s,%s,%d,%t,%q\n", r.n, r.app, r.op, r.took.Milliseconds(), r.ok, r.problem)
	}
	return report{text: b.String(), samplesCSV: csv, deploysCSV: deploys, pass: pass}
}

func num(v float64, unit string) string {
	if unit == "" {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

func list(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	if len(xs) > 8 {
		return fmt.Sprintf("%d: %s, …", len(xs), strings.Join(xs[:8], ", "))
	}
	return fmt.Sprintf("%d: %s", len(xs), strings.Join(xs, ", "))
}

func notRunning(l leftovers) string {
	if l.notRunning == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d not running)", l.notRunning)
}

func imageDiff(l leftovers) string {
	s := ""
	if len(l.imagesExtra) > 0 {
		s += "; extra " + list(l.imagesExtra)
	}
	if len(l.imagesMissing) > 0 {
		s += "; MISSING " + list(l.imagesMissing)
	}
	return s
}

func size(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }
