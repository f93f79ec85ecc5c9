package daemon

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Limits of a push, each a flag of `plat daemon`.
const (
	// DefaultMaxPushBytes bounds a push's request body (the pack git sends,
	// after gzip): it is spooled to disk before the deploy starts.
	DefaultMaxPushBytes = 1 << 30
	// DefaultMaxSourceBytes bounds the pushed commit's unpacked source (the
	// tar of `git archive` the build reads).
	DefaultMaxSourceBytes = 1 << 30
	// DefaultPushIdleTimeout is how long a push's body may make no progress
	// before the daemon gives up on it.
	DefaultPushIdleTimeout = time.Minute
	// pushTmpDir (under the data dir) holds push bodies while they are
	// received; they are unlinked at once, so none outlives its push.
	pushTmpDir = "tmp"
)

// errPushTooLarge: a push body or source over its limit.
var errPushTooLarge = errors.New("push too large")

// sizeError is a push over one of the limits, with a message for the pusher.
type sizeError struct {
	what  string // "push" or "source"
	limit int64
	flag  string
	// unread: the body was not read to its end, the client may not read
	// an answer.
	unread bool
}

func (e *sizeError) Error() string {
	return fmt.Sprintf("the %s is larger than this daemon's limit of %s: make it smaller (a .dockerignore does not help here; keep build outputs and large files out of git), or ask the operator to raise `plat daemon %s`",
		e.what, formatBytes(e.limit), e.flag)
}

func (e *sizeError) Unwrap() error { return errPushTooLarge }

// idleReader reads a request body with a read deadline that each read
// renews: a client that stops sending is dropped after idle, one that
// keeps sending is not cut off however long the body.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	if err := r.rc.SetReadDeadline(time.Now().Add(r.idle)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	return r.r.Read(p)
}

// spoolPush reads a receive-pack request body (gunzipped) into an unlinked
// temporary file under dir, bounded by limit and by idle per read, and
// returns it positioned at its start. Over the limit, it returns the file
// with the first limit bytes (the commands, to answer them) and a
// *sizeError, after it read and dropped the rest of the body (up to limit
// more bytes) so the client reads the answer.
func spoolPush(w http.ResponseWriter, r *http.Request, dir string, limit int64, idle time.Duration) (*os.File, error) {
	rc := http.NewResponseController(w)
	defer rc.SetReadDeadline(time.Time{})
	var body io.Reader = &idleReader{r: r.Body, rc: rc, idle: idle}
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("bad gzip body: %w", err)
		}
		defer gz.Close()
		body = gz
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "push-*")
	if err != nil {
		return nil, fmt.Errorf("spool push: %w", err)
	}
	// Unlinked at once: the open file is all that is left, so nothing
	// stays behind however the push ends (a daemon crash included).
	_ = os.Remove(f.Name())
	n, err := io.Copy(f, io.LimitReader(body, limit))
	if err != nil {
		f.Close()
		return nil, err
	}
	var tooLarge error
	if n == limit {
		rest, err := io.Copy(io.Discard, io.LimitReader(body, limit+1))
		switch {
		case err != nil:
			f.Close()
			return nil, err
		case rest > limit:
			f.Close()
			return nil, &sizeError{what: "push", limit: limit, flag: "--max-push-size", unread: true}
		case rest > 0:
			tooLarge = &sizeError{what: "push", limit: limit, flag: "--max-push-size"}
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, tooLarge
}

// limitedSource reads a pushed commit's source tar, failing once it has
// read more than limit bytes.
type limitedSource struct {
	r        io.Reader
	read     int64
	limit    int64
	exceeded bool
}

func (l *limitedSource) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.read += int64(n)
	if l.read > l.limit {
		l.exceeded = true
		return n, &sizeError{what: "source of the pushed commit", limit: l.limit, flag: "--max-source-size"}
	}
	return n, err
}

// refUpdate is one command of a push: move ref from Old to New.
type refUpdate struct {
	Old, New, Ref string
}

// pushCommands is the command list that starts a receive-pack request.
type pushCommands struct {
	Updates      []refUpdate
	Capabilities []string
}

func (c pushCommands) has(capability string) bool {
	for _, cp := range c.Capabilities {
		if cp == capability {
			return true
		}
	}
	return false
}

// maxPushCommands bounds the ref updates of one push; plat deploys one
// branch.
const maxPushCommands = 1000

// readPushCommands reads the pkt-lines of a receive-pack request up to the
// flush that ends its commands: "old new ref" lines, the first carrying
// the capabilities after a NUL. A push certificate (push-cert) is not
// supported: plat does not advertise it.
func readPushCommands(r *bufio.Reader) (pushCommands, error) {
	var cmds pushCommands
	for i := 0; ; i++ {
		line, err := readPktLine(r)
		if err != nil {
			return cmds, err
		}
		if len(line) == 4 {
			if string(line) == "0000" {
				return cmds, nil
			}
			return cmds, fmt.Errorf("unexpected pkt-line %q in the command list", line)
		}
		if i >= maxPushCommands {
			return cmds, fmt.Errorf("more than %d ref updates in one push", maxPushCommands)
		}
		payload := string(bytes.TrimSuffix(line[4:], []byte("\n")))
		if i == 0 {
			var caps string
			payload, caps, _ = strings.Cut(payload, "\x00")
			cmds.Capabilities = strings.Fields(caps)
		}
		f := strings.Split(payload, " ")
		if len(f) != 3 || !isSHA(f[0]) || !isSHA(f[1]) || f[2] == "" || strings.ContainsFunc(f[2], func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return cmds, fmt.Errorf("bad push command %q: want \"old-sha new-sha ref\"", payload)
		}
		cmds.Updates = append(cmds.Updates, refUpdate{Old: f[0], New: f[1], Ref: f[2]})
	}
}

// isSHA reports whether s is a hex object name (SHA-1 or SHA-256).
func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// rejectPush answers a receive-pack request with a refusal git prints to
// the pusher: msg as remote output, and every ref rejected with reason.
func rejectPush(w http.ResponseWriter, cmds pushCommands, msg, reason string) {
	w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	var report bytes.Buffer
	report.Write(pktLine("unpack " + reason + "\n"))
	for _, u := range cmds.Updates {
		report.Write(pktLine("ng " + u.Ref + " " + reason + "\n"))
	}
	report.WriteString("0000")
	if !cmds.has("side-band-64k") && !cmds.has("side-band") {
		if cmds.has("report-status") {
			w.Write(report.Bytes())
		}
		return
	}
	sidebandWriter{w}.Write([]byte("\n !     Push rejected: " + msg + "\n"))
	if cmds.has("report-status") {
		w.Write(pktLine("\x01" + report.String()))
	}
	w.Write([]byte("0000"))
}

// formatBytes says n in the largest binary unit that divides it, e.g. "1 GiB".
func formatBytes(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// byteSize is a flag of a size in bytes: 1073741824, 512KiB, 100MiB, 1GiB
// (K, M, G and KB, MB, GB mean the same binary units).
type byteSize struct{ n *int64 }

func (b byteSize) String() string {
	if b.n == nil {
		return ""
	}
	return formatBytes(*b.n)
}

func (b byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b.n = n
	return nil
}

func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToUpper(strings.TrimSpace(t[len(num):]))
	mult := map[string]int64{"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20, "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size like 1GiB, 500MiB or 1048576", s)
	}
	return n * mult, nil
}
