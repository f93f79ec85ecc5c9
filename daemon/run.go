package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/engine"
)

// The run socket's framing (docs/api.md): binary messages carry a stream,
// their first byte says which; text messages are JSON control messages.
const (
	runStdin  = 0
	runStdout = 1
	runStderr = 2
	// runReadLimit bounds one message from the client (a stdin chunk).
	runReadLimit = 1 << 20
	// runWriteLimit bounds one write to a client that stopped reading.
	runWriteLimit = 30 * time.Second
	// runPing keeps an idle session open through proxies.
	runPing = 30 * time.Second
)

var runUpgrader = websocket.Upgrader{
	ReadBufferSize:  32 << 10,
	WriteBufferSize: 32 << 10,
	// The default CheckOrigin refuses a browser page of another origin: a
	// session cookie must not let another site run commands.
}

// runCommand serves `plat run`: a websocket on which a one-off container's
// output streams as it comes and its exit code ends the session (see
// docs/api.md). Query: cmd (repeated, the argv), release (v7 or 7, default
// the active one), tty=1 (a terminal; implies stdin), stdin=1. Bad input is
// answered before the upgrade, with the usual JSON errors.
func (s *server) runCommand(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	argv := q["cmd"]
	if len(argv) == 0 || argv[0] == "" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("no command: give it after --, e.g. plat run %s -- ./migrate status", app.Name))
		return
	}
	version := 0
	if v := q.Get("release"); v != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "release must be a version like v7 or 7")
			return
		}
		version = n
	}
	if _, err := s.deployer.ResolveRun(r.Context(), app.Name, version); err != nil {
		if errors.Is(err, deploy.ErrNotDeployed) || errors.Is(err, deploy.ErrNoRelease) {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		s.internalError(w, err)
		return
	}
	tty := q.Get("tty") == "1"
	stdin := tty || q.Get("stdin") == "1"
	conn, err := runUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	defer conn.Close()
	conn.SetReadLimit(runReadLimit)
	// A hijacked connection's request context does not end when the client
	// goes away: the read loop says so.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ws := &wsWriter{conn: conn}
	var in *io.PipeReader
	var inW *io.PipeWriter
	if stdin {
		in, inW = io.Pipe()
		defer in.Close()
	}
	go func() {
		defer cancel()
		for {
			typ, data, err := conn.ReadMessage()
			if err != nil {
				if inW != nil {
					inW.CloseWithError(err)
				}
				return
			}
			switch {
			case typ == websocket.BinaryMessage && len(data) > 0 && data[0] == runStdin && inW != nil:
				if _, err := inW.Write(data[1:]); err != nil {
					inW = nil // the command no longer reads its stdin
				}
			case typ == websocket.TextMessage:
				var c api.RunControl
				if json.Unmarshal(data, &c) == nil && c.EOF && inW != nil {
					inW.Close()
					inW = nil
				}
			}
		}
	}()
	go func() {
		t := time.NewTicker(runPing)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				ws.ping()
			}
		}
	}()
	o := engine.OneOff{Tty: tty, Stdout: ws.stream(runStdout), Stderr: ws.stream(runStderr)}
	if in != nil {
		o.Stdin = in
	}
	s.log.Info("plat run", "app", app.Name, "release", version, "tty", tty, "argv0", argv[0])
	code, err := s.deployer.RunOnce(ctx, deploy.RunRequest{App: app.Name, Release: version, Command: argv, OneOff: o})
	if err != nil {
		if ctx.Err() != nil {
			s.log.Info("plat run ended by the client", "app", app.Name)
			return
		}
		msg := err.Error()
		ws.control(api.RunControl{Error: &msg})
	} else {
		ws.control(api.RunControl{Exit: &code})
	}
	ws.close()
}

// wsWriter serialises the writes of a run socket.
type wsWriter struct {
	mu   sync.Mutex
	conn *websocket.Conn
}

func (w *wsWriter) write(typ int, data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conn.SetWriteDeadline(time.Now().Add(runWriteLimit))
	return w.conn.WriteMessage(typ, data)
}

func (w *wsWriter) stream(id byte) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		msg := make([]byte, 0, len(p)+1)
		msg = append(append(msg, id), p...)
		if err := w.write(websocket.BinaryMessage, msg); err != nil {
			return 0, err
		}
		return len(p), nil
	})
}

func (w *wsWriter) control(c api.RunControl) {
	b, _ := json.Marshal(c)
	_ = w.write(websocket.TextMessage, b)
}

func (w *wsWriter) ping() {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(runWriteLimit))
}

func (w *wsWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = w.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(runWriteLimit))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
