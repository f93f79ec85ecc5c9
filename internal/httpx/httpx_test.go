package httpx

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

const testIdle = 300 * time.Millisecond

// result is what the test handler saw of the request body.
type result struct {
	n       int
	err     error
	ctxErr  error
	elapsed time.Duration
}

// server starts an HTTP/1 (or, with h2, HTTP/2 over TLS) server whose
// handler reads the whole body, reports what it saw on the returned
// channel, waits (to show that time after the body does not count) and
// answers 200 "got N" or 408.
func server(t *testing.T, h2 bool, after time.Duration) (*httptest.Server, chan result) {
	t.Helper()
	results := make(chan result, 1)
	h := BodyIdleTimeout(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		b, err := io.ReadAll(r.Body)
		time.Sleep(after)
		results <- result{n: len(b), err: err, ctxErr: r.Context().Err(), elapsed: time.Since(start)}
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		fmt.Fprintf(w, "got %d", len(b))
	}), testIdle)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnContext = ConnContext
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, results
}

// trickle is a request body that sends size bytes, one every gap, then
// stalls forever if stall is set.
type trickle struct {
	size, sent int
	gap        time.Duration
	stall      chan struct{} // closed by the test's cleanup; nil: no stall
}

func (tr *trickle) Read(p []byte) (int, error) {
	if tr.sent == tr.size {
		if tr.stall != nil {
			<-tr.stall
			return 0, errors.New("test over")
		}
		return 0, io.EOF
	}
	time.Sleep(tr.gap)
	p[0] = 'x'
	tr.sent++
	return 1, nil
}

// TestBodyIdleTimeout: a body that stalls ends after the idle timeout with
// ErrBodyIdleTimeout (a deadline error), the client gets the handler's
// answer or a closed connection; a body that keeps moving is read whole
// however long it takes in total; and time the handler spends after the
// body does not count. Over HTTP/1 and HTTP/2.
func TestBodyIdleTimeout(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		gap       time.Duration
		stall     bool
		after     time.Duration
		wantStall bool
	}{
		{name: "stalled after 3 bytes", size: 3, gap: 0, stall: true, wantStall: true},
		{name: "slow but steady, 4x the timeout in total", size: 12, gap: testIdle / 3},
		{name: "handler slow after the body", size: 3, after: 3 * testIdle},
	}
	for _, h2 := range []bool{false, true} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("h2=%v/%s", h2, tc.name), func(t *testing.T) {
				srv, results := server(t, h2, tc.after)
				body := &trickle{size: tc.size, gap: tc.gap}
				if tc.stall {
					body.stall = make(chan struct{})
					defer close(body.stall)
				}
				req, err := http.NewRequest(http.MethodPost, srv.URL, body)
				if err != nil {
					t.Fatal(err)
				}
				req.ContentLength = 1 << 20 // announced; a stalled client never sends it all
				if !tc.stall {
					// Chunked: Go's client sends each chunk at once, but
					// buffers a body of known length.
					req.ContentLength = -1
				}
				client := srv.Client()
				if h2 {
					client.Transport.(*http.Transport).ForceAttemptHTTP2 = true
				}
				type answer struct {
					resp *http.Response
					body string
					err  error
				}
				answers := make(chan answer, 1)
				go func() {
					resp, err := client.Do(req)
					if err != nil {
						answers <- answer{err: err}
						return
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					answers <- answer{resp: resp, body: string(b)}
				}()

				var res result
				select {
				case res = <-results:
				case <-time.After(10 * testIdle * 4):
					t.Fatal("the handler never finished reading the body")
				}
				if tc.wantStall {
					if !errors.Is(res.err, ErrBodyIdleTimeout) || !errors.Is(res.err, os.ErrDeadlineExceeded) {
						t.Fatalf("body error %v; want ErrBodyIdleTimeout and os.ErrDeadlineExceeded", res.err)
					}
					if res.n != 3 || res.elapsed < testIdle || res.elapsed > 5*testIdle {
						t.Errorf("read %d bytes in %s; want 3 in about %s", res.n, res.elapsed, testIdle)
					}
					// Go's HTTP/1 client may report the connection's close
					// instead of the answer: the raw test sees the answer.
					a := <-answers
					if a.err == nil && a.resp.StatusCode != http.StatusRequestTimeout {
						t.Errorf("client got %d %q; want 408 or a closed connection", a.resp.StatusCode, a.body)
					}
					return
				}
				if res.err != nil || res.n != tc.size {
					t.Fatalf("read %d bytes, err %v; want %d, nil", res.n, res.err, tc.size)
				}
				if res.ctxErr != nil {
					t.Errorf("request context ended: %v", res.ctxErr)
				}
				a := <-answers
				if a.err != nil || a.resp.StatusCode != 200 || a.body != fmt.Sprintf("got %d", tc.size) {
					t.Errorf("client got %v %v %q", a.err, a.resp, a.body)
				} else if h2 && a.resp.ProtoMajor != 2 {
					t.Errorf("test meant for HTTP/2 ran over %s", a.resp.Proto)
				}
			})
		}
	}
}

// TestStalledBodyRawHTTP1: a raw client that announces 1 MB and sends 3
// bytes gets the handler's 408, then the server closes the connection.
func TestStalledBodyRawHTTP1(t *testing.T) {
	srv, results := server(t, false, 0)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\nabc")
	_ = c.SetReadDeadline(time.Now().Add(10 * testIdle))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	if res := <-results; !errors.Is(res.err, ErrBodyIdleTimeout) {
		t.Errorf("handler saw %v", res.err)
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(rest), "stalled") {
		t.Errorf("body %q, %v", rest, err)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("connection not closed after the stalled body: %v", err)
	}
}

// TestNoBodyUntouched: requests without a body reach the handler as they
// are, and zero disables the timeout.
func TestNoBodyUntouched(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != http.NoBody {
			t.Errorf("body %T, want http.NoBody", r.Body)
		}
	})
	BodyIdleTimeout(h, time.Second).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if got := BodyIdleTimeout(h, 0); fmt.Sprint(got) != fmt.Sprint(http.Handler(h)) {
		t.Error("d = 0 wrapped the handler")
	}
}

// TestReadOutlivesHandler: like a reverse proxy whose backend answered
// before the body arrived, the handler answers and returns while another
// goroutine still reads the body. net/http's HTTP/1 server waits for that
// read before it writes the answer, so without the connection a stalled
// client would hold the request forever; with NewServer the client gets
// the answer after the idle timeout and the connection closes.
func TestReadOutlivesHandler(t *testing.T) {
	readErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started := make(chan struct{})
		go func() {
			close(started)
			_, err := io.Copy(io.Discard, r.Body)
			readErr <- err
		}()
		<-started
		time.Sleep(10 * time.Millisecond) // let the read block
		_, _ = io.WriteString(w, "early answer")
	})
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = NewServer(h, Limits{BodyIdleTimeout: testIdle}, nil)
	srv.Start()
	t.Cleanup(srv.Close)

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * testIdle))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "early answer" {
		t.Errorf("got %d %q", resp.StatusCode, b)
	}
	if took := time.Since(start); took > 5*testIdle {
		t.Errorf("answer took %s; want about %s", took, testIdle)
	}
	if err := <-readErr; !errors.Is(err, ErrBodyIdleTimeout) {
		t.Errorf("the read that outlived the handler ended with %v", err)
	}
}

// TestNewServerDefaults: zero limits take the defaults.
func TestNewServerDefaults(t *testing.T) {
	s := NewServer(http.NotFoundHandler(), Limits{}, nil)
	if s.ReadHeaderTimeout != DefaultReadHeaderTimeout || s.IdleTimeout != DefaultIdleTimeout ||
		s.MaxHeaderBytes != DefaultMaxHeaderBytes || s.ConnContext == nil {
		t.Errorf("server %+v does not have the defaults", s)
	}
}

// TestHandlerAnswersEarly: a handler that answers without reading a
// stalled body (a bad request) gets its answer out: net/http's server would
// otherwise wait for the rest of a small body (it reads up to 256 KiB to
// keep the connection) forever. It must not change the server's own
// request either, or the server reads the rest of any body.
func TestHandlerAnswersEarly(t *testing.T) {
	for _, contentLength := range []int{100, 1 << 20} {
		t.Run(fmt.Sprint(contentLength), func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = r.Body.Read(make([]byte, 1))
				http.Error(w, "bad request", http.StatusBadRequest)
			})
			srv := httptest.NewUnstartedServer(nil)
			srv.Config = NewServer(h, Limits{BodyIdleTimeout: testIdle}, nil)
			srv.Start()
			t.Cleanup(srv.Close)
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nabc", contentLength)
			start := time.Now()
			_ = c.SetReadDeadline(time.Now().Add(10 * testIdle))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d", resp.StatusCode)
			}
			if took := time.Since(start); took > 5*testIdle {
				t.Errorf("answer took %s", took)
			}
		})
	}
}

// TestOwnBodyTimeout: a request whose handler bounds its own body reads
// (a git push) may pause longer than the server's body idle timeout; any
// other request still gets 408.
func TestOwnBodyTimeout(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		fmt.Fprintf(w, "%d bytes", len(b))
	})
	s := NewServer(h, Limits{BodyIdleTimeout: testIdle, OwnBodyTimeout: func(r *http.Request) bool { return r.URL.Path == "/own" }}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	for _, tc := range []struct {
		path string
		want int
	}{{"/own", http.StatusOK}, {"/other", http.StatusRequestTimeout}} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc", tc.path)
		time.Sleep(3 * testIdle)
		fmt.Fprintf(c, "def")
		_ = c.SetReadDeadline(time.Now().Add(10 * testIdle))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("%s: no answer: %v", tc.path, err)
		}
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
}
