package web

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/plat-paas/plat/logs"
)

// Live log socket defaults.
const (
	DefaultLogTail   = 200
	socketPing       = 30 * time.Second
	socketWriteLimit = 10 * time.Second
	socketReadLimit  = 512
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 16 << 10,
	CheckOrigin:     sameOrigin,
}

// ServeLogs upgrades to a websocket that streams app's log lines as JSON
// ({"time":..., "text":...}): the last ?tail lines, or with ?since=TIME the
// lines after the last one a reconnecting client saw, then every new line.
// The caller has authenticated the request and checked that app exists.
func (d *Dashboard) ServeLogs(w http.ResponseWriter, r *http.Request, app string) {
	if !sameOrigin(r) {
		d.log.Warn("cross-origin websocket refused", "origin", r.Header.Get("Origin"), "host", r.Host)
		http.Error(w, "cross-origin websocket refused", http.StatusForbidden)
		return
	}
	since, tail, ok := streamParams(w, r)
	if !ok {
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	defer conn.Close()

	// The request's context ends when the daemon ends the connection's
	// right to exist (its token was revoked or expired): the socket
	// closes at once, saying why.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The client sends nothing; reading notices when it goes away.
	conn.SetReadLimit(socketReadLimit)
	go func() {
		defer cancel()
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	wg.Go(func() { keepAlive(ctx, conn) })
	defer wg.Wait()
	defer cancel()
	err = d.hub.Stream(ctx, app, since, tail, true, func(l logs.Line) error {
		conn.SetWriteDeadline(time.Now().Add(socketWriteLimit))
		return conn.WriteJSON(l)
	})
	if err != nil && ctx.Err() == nil {
		d.log.Debug("log socket ended", "app", app, "err", err)
	}
	if cause := context.Cause(r.Context()); cause != nil {
		wg.Wait() // keepAlive writes too; one writer at a time
		msg := websocket.FormatCloseMessage(websocket.ClosePolicyViolation, truncate(cause.Error(), maxCloseReason))
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(socketWriteLimit))
	}
}

// maxCloseReason is the most bytes a websocket close frame's reason may hold.
const maxCloseReason = 123

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// keepAlive pings so proxies and browsers keep an idle socket open.
func keepAlive(ctx context.Context, conn *websocket.Conn) {
	t := time.NewTicker(socketPing)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(socketWriteLimit)); err != nil {
				return
			}
		}
	}
}

// streamParams reads ?since (RFC 3339) and ?tail, answering 400 itself.
func streamParams(w http.ResponseWriter, r *http.Request) (since time.Time, tail int, ok bool) {
	q := r.URL.Query()
	tail = DefaultLogTail
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			http.Error(w, "since must be an RFC 3339 time like 2026-01-02T15:04:05.123456789Z", http.StatusBadRequest)
			return since, 0, false
		}
		since = t
	}
	if s := q.Get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			http.Error(w, "tail must be a number of lines", http.StatusBadRequest)
			return since, 0, false
		}
		tail = n
	}
	return since, tail, true
}
