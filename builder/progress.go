package builder

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// failureTail is how many of the failing step's last output lines the
// error of a failed build carries.
const failureTail = 10

// redacted replaces a build secret's value wherever it shows in the output.
const redacted = "****"

// minRedactAnywhere is the length from which a secret value is masked
// wherever it shows; a shorter one only as a whole word, or "v" would
// mask every v of the output.
const minRedactAnywhere = 4

// progressWriter turns BuildKit's status updates into the readable lines
// of `docker build --progress=plain`: "#5 [2/4] RUN npm ci", the step's
// output as "#5 ..." lines, then "#5 DONE 3.1s", "#5 CACHED" or
// "#5 ERROR: ...". Build secret values are replaced by ****.
type progressWriter struct {
	out     io.Writer
	secrets []string
	short   []*regexp.Regexp // secret values under minRedactAnywhere
	steps   map[digest.Digest]*stepState
	next    int // the number of the next step to start
	failed  *stepState
	err     error // the first write error
}

// stepState is what the writer remembers of one vertex (build step).
type stepState struct {
	num     int
	name    string
	started bool
	done    bool
	partial []byte   // output after its last newline
	tail    []string // its last output lines
}

func newProgressWriter(out io.Writer, secrets map[string]string) *progressWriter {
	p := &progressWriter{out: out, steps: map[digest.Digest]*stepState{}, next: 1}
	for _, v := range secrets {
		if v == "" {
			continue
		}
		if len(v) < minRedactAnywhere {
			p.short = append(p.short, regexp.MustCompile(`\b`+regexp.QuoteMeta(v)+`\b`))
			continue
		}
		p.secrets = append(p.secrets, v)
		// A multi-line secret may be printed a line at a time.
		for l := range strings.SplitSeq(v, "\n") {
			if l = strings.TrimSpace(l); len(l) >= minRedactAnywhere && l != v {
				p.secrets = append(p.secrets, l)
			}
		}
	}
	return p
}

// write handles one status update.
func (p *progressWriter) write(s *client.SolveStatus) {
	for _, v := range s.Vertexes {
		st := p.step(v.Digest, v.Name)
		if v.Started != nil || v.Cached {
			p.start(st)
		}
		if v.Completed == nil || st.done {
			continue
		}
		p.flush(st)
		st.done = true
		switch {
		case v.Error != "":
			p.line(st, "ERROR: "+v.Error)
			if p.failed == nil && !strings.Contains(v.Error, "context canceled") {
				p.failed = st
			}
		case v.Cached:
			p.line(st, "CACHED")
		default:
			d := 0.0
			if v.Started != nil {
				d = v.Completed.Sub(*v.Started).Seconds()
			}
			p.line(st, fmt.Sprintf("DONE %.1fs", d))
		}
	}
	for _, l := range s.Logs {
		st := p.step(l.Vertex, "")
		p.start(st)
		data := append(st.partial, l.Data...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			p.output(st, string(bytes.TrimRight(data[:i], "\r")))
			data = data[i+1:]
		}
		st.partial = append([]byte(nil), data...)
	}
	for _, w := range s.Warnings {
		msg := "WARN: " + strings.TrimSpace(string(w.Short))
		if st, ok := p.steps[w.Vertex]; ok && st.started {
			p.line(st, msg)
		} else {
			p.print(msg)
		}
	}
}

// step returns the state of vertex dgst, creating it.
func (p *progressWriter) step(dgst digest.Digest, name string) *stepState {
	st, ok := p.steps[dgst]
	if !ok {
		st = &stepState{}
		p.steps[dgst] = st
	}
	if name != "" {
		st.name = name
	}
	return st
}

// start numbers a step and prints its name, once.
func (p *progressWriter) start(st *stepState) {
	if st.started {
		return
	}
	st.started, st.num = true, p.next
	p.next++
	p.print(fmt.Sprintf("#%d %s", st.num, st.name))
}

// flush prints a step's output that did not end in a newline.
func (p *progressWriter) flush(st *stepState) {
	if len(st.partial) > 0 {
		p.output(st, string(st.partial))
		st.partial = nil
	}
}

// output prints one line of a step's output and keeps it for the error.
func (p *progressWriter) output(st *stepState, text string) {
	text = p.redact(text)
	st.tail = append(st.tail, text)
	if len(st.tail) > failureTail {
		st.tail = st.tail[len(st.tail)-failureTail:]
	}
	p.line(st, text)
}

func (p *progressWriter) line(st *stepState, text string) {
	p.print(fmt.Sprintf("#%d %s", st.num, text))
}

func (p *progressWriter) print(line string) {
	if p.err != nil {
		return
	}
	_, p.err = io.WriteString(p.out, p.redact(line)+"\n")
}

func (p *progressWriter) redact(s string) string {
	for _, v := range p.secrets {
		s = strings.ReplaceAll(s, v, redacted)
	}
	for _, re := range p.short {
		s = re.ReplaceAllLiteralString(s, redacted)
	}
	return s
}

// close prints what is left of unfinished steps' output.
func (p *progressWriter) close() {
	for _, st := range p.steps {
		if st.started {
			p.flush(st)
		}
	}
}

// failure describes the step that failed and its last output lines, or
// "" when no step failed.
func (p *progressWriter) failure() string {
	if p.failed == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "step #%d %s failed", p.failed.num, p.redact(p.failed.name))
	if len(p.failed.tail) > 0 {
		b.WriteString("; its last output:\n")
		for _, l := range p.failed.tail {
			b.WriteString("  " + l + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}
