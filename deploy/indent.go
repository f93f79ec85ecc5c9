package deploy

import (
	"bytes"
	"io"
)

// indentWriter indents every line written through it, so build and app
// output reads as detail under the "----->" steps.
type indentWriter struct {
	w         io.Writer
	lineStart bool
}

func indent(w io.Writer) io.Writer { return &indentWriter{w: w, lineStart: true} }

func (iw *indentWriter) Write(p []byte) (int, error) {
	var buf bytes.Buffer
	for _, b := range p {
		if iw.lineStart {
			buf.WriteString("       ")
			iw.lineStart = false
		}
		buf.WriteByte(b)
		if b == '\n' {
			iw.lineStart = true
		}
	}
	if _, err := iw.w.Write(buf.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}
