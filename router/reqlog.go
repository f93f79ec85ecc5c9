package router

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// DefaultRequestLogBuffer is how many request records may wait for the
// reader of RequestLog before the router drops new ones, so a slow log
// consumer never holds a request up. The daemon collects them every 50ms:
// enough for 160 000 requests a second (~1.3 MB).
const DefaultRequestLogBuffer = 8192

// RequestRecord describes one proxied request, for an access log line.
type RequestRecord struct {
	Time     time.Time // when the response ended
	App      string
	Release  string // the release label of the group that served it ("" if unlabelled)
	Backend  string // "host:port" of the backend that was picked first
	Method   string
	Path     string // without the query string: it may hold secrets
	Status   int    // 0: the client went away before a response
	Duration time.Duration
	Bytes    uint64 // response body bytes sent
	// Client is the client's address as the connection has it
	// ("ip:port"); Format shows the IP.
	Client string
}

// RequestLog returns the channel on which the router hands over a record
// of every proxied request of the apps whose Route has LogRequests. The
// hand-over never blocks a request: while the channel is full new records
// are dropped and counted (RequestLogDropped). The router sends nothing
// until RequestLog was called once.
func (r *Router) RequestLog() <-chan RequestRecord {
	r.reqLogOn.Store(true)
	return r.reqLog
}

// RequestLogDropped returns how many request records were dropped because
// RequestLog's reader fell behind.
func (r *Router) RequestLogDropped() uint64 { return r.reqLogDropped.Load() }

// logRequest hands rec over to RequestLog without blocking.
func (r *Router) logRequest(rec *recorder, took time.Duration) {
	req := rec.req
	rr := RequestRecord{
		Time: rec.start.Add(took), App: rec.g.app, Release: rec.g.release, Backend: rec.backend,
		Method: req.Method, Path: req.URL.Path, Status: rec.status, Duration: took,
		Bytes: rec.bytes, Client: req.RemoteAddr,
	}
	select {
	case r.reqLog <- rr:
	default:
		r.reqLogDropped.Add(1)
	}
}

// Format returns the record as a router log line in plat's (Heroku-like)
// form, e.g.
//
//	GET /path 200 12ms 1.2KB client=10.0.0.7 release=v8 replica=web.2
//
// replica is the label of the backend's replica ("" → its address). A
// request whose client left before any response shows status 499.
func (rr RequestRecord) Format(replica string) string {
	var b strings.Builder
	b.Grow(96 + len(rr.Path))
	b.WriteString(rr.Method)
	b.WriteByte(' ')
	b.WriteString(quotePath(rr.Path))
	b.WriteByte(' ')
	status := rr.Status
	if status == 0 {
		status = StatusClientClosedRequest
	}
	b.WriteString(strconv.Itoa(status))
	b.WriteByte(' ')
	b.WriteString(FormatDuration(rr.Duration))
	b.WriteByte(' ')
	b.WriteString(FormatBytes(rr.Bytes))
	b.WriteString(" client=")
	client := rr.Client
	if host, _, err := net.SplitHostPort(client); err == nil {
		client = host
	}
	b.WriteString(orDash(client))
	b.WriteString(" release=")
	b.WriteString(orDash(rr.Release))
	b.WriteString(" replica=")
	if replica == "" {
		replica = rr.Backend
	}
	b.WriteString(orDash(replica))
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// quotePath keeps a log line one line with space-separated fields: control
// characters, spaces and non-ASCII bytes of the path are percent-encoded.
func quotePath(p string) string {
	if p == "" {
		return "/"
	}
	clean := true
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return p
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// FormatDuration renders a request's duration the way the router's log
// lines do: whole milliseconds from 1ms on ("12ms", "1503ms"), else
// microseconds ("850µs").
func FormatDuration(d time.Duration) string {
	if d >= time.Millisecond {
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return strconv.FormatInt(int64(d/time.Microsecond), 10) + "µs"
}

// FormatBytes renders a byte count with one decimal in KB/MB/GB (1000
// based, like Heroku's): "512B", "1.2KB", "3.4MB".
func FormatBytes(n uint64) string {
	const unit = 1000
	if n < unit {
		return strconv.FormatUint(n, 10) + "B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	tenths := (n*10 + div/2) / div // rounded to one decimal
	return strconv.FormatUint(tenths/10, 10) + "." + strconv.FormatUint(tenths%10, 10) + string("KMGT"[exp]) + "B"
}
