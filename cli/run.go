package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
	"github.com/plat-paas/plat/api"
)

// The run socket's framing (docs/api.md): binary messages start with the
// stream's byte; text messages are JSON control messages.
const (
	runStdin  = 0
	runStdout = 1
	runStderr = 2
)

// exitCodeError makes the CLI exit with code, printing nothing more: the
// remote command's exit code passed through.
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string { return "exit code " + strconv.Itoa(e.code) }

// interruptedCode is the exit code after Ctrl-C, as a shell gives.
const interruptedCode = 130

// eofMessage tells the daemon stdin ended.
var eofMessage, _ = json.Marshal(api.RunControl{EOF: true})

func cmdRun(e *env, args []string) error {
	fs := e.flags()
	release := fs.String("release", "", "run the image and config of this release (default: the active one)")
	stdin := fs.Bool("i", false, "attach stdin without a terminal (e.g. to pipe a file in)")
	noTTY := fs.Bool("no-tty", false, "no terminal even when stdin is one")
	// Flags come before --; everything after it is the command.
	head, cmd := args, []string(nil)
	for i, a := range args {
		if a == "--" {
			head, cmd = args[:i], args[i+1:]
			break
		}
	}
	pos, err := e.parse(fs, head, 1, -1)
	if err != nil {
		return err
	}
	if len(pos) > 1 && cmd == nil {
		cmd = pos[1:] // `plat run myapp ls` works too
	} else if len(pos) > 1 {
		return usagef("unexpected %q before --", pos[1])
	}
	if len(cmd) == 0 {
		return usagef("give the command to run after --, e.g. plat run %s -- ./migrate status", pos[0])
	}
	name := pos[0]
	q := url.Values{"cmd": cmd}
	if *release != "" {
		v, err := parseVersion(*release)
		if err != nil {
			return usagef("--release %q: %v", *release, err)
		}
		q.Set("release", strconv.Itoa(v))
	}
	tty := !*noTTY && isTerminal(e.stdin) && isTerminal(e.stdout)
	if tty {
		q.Set("tty", "1")
	} else if *stdin {
		q.Set("stdin", "1")
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	conn, err := c.dialSocket(e, appPath(name, "run")+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer conn.Close()
	if tty {
		restore, err := makeRaw(e.stdin)
		if err == nil {
			defer restore()
		}
	}
	var mu sync.Mutex // one writer at a time
	send := func(typ int, data []byte) error {
		mu.Lock()
		defer mu.Unlock()
		return conn.WriteMessage(typ, data)
	}
	if tty || *stdin {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := e.stdin.Read(buf)
				if n > 0 {
					if send(websocket.BinaryMessage, append([]byte{runStdin}, buf[:n]...)) != nil {
						return
					}
				}
				if err != nil {
					send(websocket.TextMessage, eofMessage)
					return
				}
			}
		}()
	}
	// Ctrl-C (without a terminal; with one it goes to the command) closes
	// the socket: the daemon stops and removes the container.
	go func() {
		<-e.ctx.Done()
		conn.Close()
	}()
	for {
		typ, data, err := conn.ReadMessage()
		if err != nil {
			if e.ctx.Err() != nil {
				fmt.Fprintln(e.stderr, "\nplat: interrupted; the command was stopped")
				return &exitCodeError{interruptedCode}
			}
			return fmt.Errorf("the connection to the daemon ended before the command did: %v", err)
		}
		switch typ {
		case websocket.BinaryMessage:
			if len(data) == 0 {
				continue
			}
			w := e.stdout
			if data[0] == runStderr {
				w = e.stderr
			}
			w.Write(data[1:])
		case websocket.TextMessage:
			var ctl api.RunControl
			if err := json.Unmarshal(data, &ctl); err != nil {
				return fmt.Errorf("the daemon sent a malformed message: %v", err)
			}
			switch {
			case ctl.Error != nil:
				return errors.New(*ctl.Error)
			case ctl.Exit != nil && *ctl.Exit != 0:
				return &exitCodeError{*ctl.Exit}
			case ctl.Exit != nil:
				return nil
			}
		}
	}
}

// dialSocket opens a websocket to path (with its query) with the token.
func (c *client) dialSocket(e *env, path string) (*websocket.Conn, error) {
	u := c.base + path
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	tr, err := newTransport(c.caFile)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{NetDialContext: tr.DialContext, TLSClientConfig: tr.TLSClientConfig, HandshakeTimeout: requestTimeout}
	h := http.Header{"Authorization": {"Bearer " + c.token}, "User-Agent": {"plat-cli/" + version()}}
	conn, resp, err := d.DialContext(e.ctx, u, h)
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			defer resp.Body.Close()
			return nil, statusError(resp)
		}
		return nil, c.transportError(e.ctx, err)
	}
	return conn, nil
}
