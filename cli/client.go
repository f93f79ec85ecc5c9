package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/plat-paas/plat/api"
)

const requestTimeout = 30 * time.Second

// client talks to the daemon's /api.
type client struct {
	base   string // daemon URL, no trailing slash
	token  string
	caFile string       // extra trusted root for https, "" for none
	plain  *http.Client // normal calls: whole-request timeout
	long   *http.Client // streams: no timeout, only the context
}

// newClient returns a client for the daemon at base; caFile, when set, is
// an extra root to trust for https URLs.
func newClient(base, token, caFile string) (*client, error) {
	tr, err := newTransport(caFile)
	if err != nil {
		return nil, err
	}
	return &client{
		base:   base,
		token:  token,
		caFile: caFile,
		plain:  &http.Client{Timeout: requestTimeout, Transport: tr},
		long:   &http.Client{Transport: tr},
	}, nil
}

// apiError is an error answer from the daemon.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

// errInterrupted is returned when the user pressed Ctrl-C.
var errInterrupted = errors.New("interrupted")

func appPath(app string, rest ...string) string {
	p := "/api/apps/" + url.PathEscape(app)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// do sends a request and returns the response when its status is below 400.
// body, when not nil, is sent as JSON.
func (c *client) do(ctx context.Context, stream bool, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("bad daemon URL %q: %v", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", "plat-cli/"+version())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.plain
	if stream {
		hc = c.long
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return resp, nil
}

func (c *client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errInterrupted
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot reach the plat daemon at %s: is it running?", c.base)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("the plat daemon at %s did not answer within %s", c.base, requestTimeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("cannot reach the plat daemon at %s: %v", c.base, err)
}

// statusError turns a 4xx/5xx answer into an error, using the daemon's
// {"error": ...} message verbatim when there is one.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e api.Error // Expired: the token expired, the message says what to do
	decoded := json.Unmarshal(b, &e) == nil && e.Error != ""
	if resp.StatusCode == http.StatusUnauthorized && !(decoded && e.Expired) {
		return &apiError{Status: resp.StatusCode, Msg: loginHint}
	}
	if decoded {
		return &apiError{Status: resp.StatusCode, Msg: e.Error}
	}
	msg := strings.TrimSpace(string(b))
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		return &apiError{Status: resp.StatusCode, Msg: "the daemon answered " + resp.Status}
	}
	return &apiError{Status: resp.StatusCode, Msg: fmt.Sprintf("the daemon answered %s: %s", resp.Status, msg)}
}

// call sends a request with a JSON body (or none) and returns the JSON answer.
func (c *client) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	resp, err := c.do(ctx, false, method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s %s: the answer is not JSON: is %s a plat daemon?", method, path, c.base)
	}
	return b, nil
}

// get fetches path and decodes its JSON into out; it returns the raw answer too.
func (c *client) get(ctx context.Context, path string, out any) ([]byte, error) {
	b, err := c.call(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("GET %s: unexpected answer: %v", path, err)
		}
	}
	return b, nil
}

// errStreamEnded: the stream closed without a terminal line.
var errStreamEnded = errors.New("the daemon closed the connection before the operation finished")

// stream sends a long operation and reads its NDJSON answer, calling progress
// for every progress line. It returns the raw release or app of the terminal
// line, or the terminal error.
func (c *client) stream(ctx context.Context, path string, body any, progress func(string)) (json.RawMessage, error) {
	resp, err := c.do(ctx, true, http.MethodPost, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var l api.StreamLine
		err := dec.Decode(&l)
		if err == io.EOF {
			return nil, errStreamEnded
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, errInterrupted
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, errStreamEnded
			}
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return nil, fmt.Errorf("the daemon sent a malformed progress line: %v", err)
			}
			return nil, fmt.Errorf("reading the daemon's progress: %v", err)
		}
		switch {
		case l.Error != nil:
			return nil, errors.New(*l.Error)
		case len(l.Release) > 0 && string(l.Release) != "null":
			return l.Release, nil
		case len(l.App) > 0 && string(l.App) != "null":
			return l.App, nil
		case l.Progress != nil:
			progress(*l.Progress)
		}
	}
}
