package logs

import (
	"bytes"
	"strings"
	"time"
)

// lineParser turns the engine's timestamped output ("TIME text\n" lines,
// see engine.Engine.TimedLogs) into Lines.
type lineParser struct {
	buf  []byte
	emit func(Line)
}

func (p *lineParser) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.line(string(p.buf[:i]))
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// flush emits a last unterminated line.
func (p *lineParser) flush() {
	if len(p.buf) > 0 {
		p.line(string(p.buf))
		p.buf = nil
	}
}

func (p *lineParser) line(s string) {
	s = strings.TrimSuffix(s, "\r")
	ts, text, _ := strings.Cut(s, " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		// Not timestamped (should not happen): keep the text, stamp it now.
		t, text = time.Now().UTC(), s
	}
	p.emit(Line{Time: t, Text: text})
}
