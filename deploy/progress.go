package deploy

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxProgressLines bounds the kept output of one deploy; builds can be chatty.
const maxProgressLines = 5000

// Progress is the output of an app's latest deploy (build, start, health
// check, switch), kept in memory so the dashboard can show a deploy in
// progress whichever client started it.
type Progress struct {
	Version  int       `json:"version"`
	Running  bool      `json:"running"`
	Started  time.Time `json:"started"`
	Lines    []string  `json:"lines"`
	Dropped  int       `json:"dropped,omitempty"` // lines cut from the front
	Finished time.Time `json:"finished,omitzero"`

	part []byte // unterminated last line
}

// progressLogs holds the latest Progress of each app. Deploys of one app
// can overlap (a push builds while another deploys): each writes to its
// own Progress, the latest started is the one shown.
type progressLogs struct {
	mu   sync.Mutex
	apps map[string]*Progress
	// save keeps a finished deploy's output.
	save func(app string, version int, pr *Progress)
}

// track starts recording app's deploy of version and returns out teed into it.
func (p *progressLogs) track(app string, version int, out io.Writer) (io.Writer, func()) {
	p.mu.Lock()
	if p.apps == nil {
		p.apps = map[string]*Progress{}
	}
	pr := &Progress{Version: version, Running: true, Started: time.Now().UTC()}
	p.apps[app] = pr
	p.mu.Unlock()
	w := progressWriter{p: p, pr: pr}
	return io.MultiWriter(out, w), func() {
		p.mu.Lock()
		if len(pr.part) > 0 {
			pr.Lines = append(pr.Lines, string(pr.part))
			pr.part = nil
		}
		pr.Running, pr.Finished = false, time.Now().UTC()
		done := Progress{Version: pr.Version, Lines: slices.Clone(pr.Lines), Dropped: pr.Dropped}
		p.mu.Unlock()
		if p.save != nil {
			p.save(app, version, &done)
		}
	}
}

// keepProgress stores a finished deploy's output with its release, so it
// outlives the daemon's memory (a reload, a restart shows it again).
func (d *Deployer) keepProgress(app string, version int, pr *Progress) {
	var b strings.Builder
	if pr.Dropped > 0 {
		fmt.Fprintf(&b, "[... %d earlier lines truncated ...]\n", pr.Dropped)
	}
	for _, l := range pr.Lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if err := d.store.SetDeployLog(app, version, []byte(b.String())); err != nil {
		d.log.Warn("saving deploy output", "app", app, "release", version, "err", err)
	}
}

type progressWriter struct {
	p  *progressLogs
	pr *Progress
}

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	pr := w.pr
	buf := append(pr.part, b...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		pr.Lines = append(pr.Lines, string(buf[:i]))
		buf = buf[i+1:]
	}
	pr.part = buf
	if n := len(pr.Lines) - maxProgressLines; n > 0 {
		pr.Lines, pr.Dropped = pr.Lines[n:], pr.Dropped+n
	}
	return len(b), nil
}

// Progress returns app's latest deploy output from line from on (0: all);
// ok is false when no deploy ran since the daemon started.
func (d *Deployer) Progress(app string, from int) (Progress, bool) {
	p := &d.progress
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, ok := p.apps[app]
	if !ok {
		return Progress{}, false
	}
	out := *pr
	out.part = nil
	from -= pr.Dropped
	out.Lines = append([]string{}, pr.Lines[min(max(from, 0), len(pr.Lines)):]...)
	return out, true
}
