package router

import (
	"net"
	"strconv"
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
	rr := RequestRecord{
		Time: rec.start.Add(took), App: rec.g.app, Release: rec.g.release, Backend: rec.backend,
		Method: rec.method, Path: rec.path, Status: rec.status, Duration: took,
		Bytes: rec.bytes, Client: rec.client,
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
	return string(rr.AppendFormat(make([]byte, 0, 96+len(rr.Path)), replica))
}

// AppendFormat appends the line Format returns to b.
func (rr RequestRecord) AppendFormat(b []byte, replica string) []byte {
	b = append(b, rr.Method...)
	b = append(b, ' ')
	b = appendPath(b, rr.Path)
	b = append(b, ' ')
	status := rr.Status
	if status == 0 {
		status = StatusClientClosedRequest
	}
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = appendDuration(b, rr.Duration)
	b = append(b, ' ')
	b = appendBytes(b, rr.Bytes)
	b = append(b, " client="...)
	client := rr.Client
	if host, _, err := net.SplitHostPort(client); err == nil {
		client = host
	}
	b = append(b, orDash(client)...)
	b = append(b, " release="...)
	b = append(b, orDash(rr.Release)...)
	b = append(b, " replica="...)
	if replica == "" {
		replica = rr.Backend
	}
	return append(b, orDash(replica)...)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendPath appends p, keeping a log line one line with space-separated
// fields: control characters, spaces and non-ASCII bytes are
// percent-encoded.
func appendPath(b []byte, p string) []byte {
	if p == "" {
		return append(b, '/')
	}
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// FormatDuration renders a request's duration the way the router's log
// lines do: whole milliseconds from 1ms on ("12ms", "1503ms"), else
// microseconds ("850µs").
func FormatDuration(d time.Duration) string { return string(appendDuration(nil, d)) }

func appendDuration(b []byte, d time.Duration) []byte {
	if d >= time.Millisecond {
		return append(strconv.AppendInt(b, int64(d/time.Millisecond), 10), "ms"...)
	}
	return append(strconv.AppendInt(b, int64(d/time.Microsecond), 10), "µs"...)
}

// FormatBytes renders a byte count with one decimal in KB/MB/GB (1000
// based, like Heroku's): "512B", "1.2KB", "3.4MB".
func FormatBytes(n uint64) string { return string(appendBytes(nil, n)) }

func appendBytes(b []byte, n uint64) []byte {
	const unit = 1000
	if n < unit {
		return append(strconv.AppendUint(b, n, 10), 'B')
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	tenths := (n*10 + div/2) / div // rounded to one decimal
	b = strconv.AppendUint(b, tenths/10, 10)
	b = append(b, '.', byte('0'+tenths%10), "KMGT"[exp], 'B')
	return b
}
