package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"testing"
	"time"
)

// fuzzHeaderLimit is the response-head limit both sides use in the fuzz
// test: small, so the fuzzer reaches it.
const fuzzHeaderLimit = 2 << 10

// outcome is what a client made of one response.
type outcome struct {
	failed  bool
	status  int
	header  http.Header
	body    []byte
	trailer http.Header
	close   bool
	n1xx    int // informational responses seen (reference only)
}

// pipeServer returns a dial function whose connections answer the first
// request with raw and then close.
func pipeServer(raw []byte) func(context.Context, string, string) (net.Conn, error) {
	return func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			if _, err := http.ReadRequest(bufio.NewReader(server)); err != nil {
				return
			}
			_, _ = server.Write(raw)
		}()
		return client, nil
	}
}

func readOutcome(resp *http.Response, err error) outcome {
	if err != nil {
		return outcome{failed: true}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return outcome{failed: true}
	}
	return outcome{status: resp.StatusCode, header: resp.Header, body: body, trailer: resp.Trailer, close: resp.Close}
}

// FuzzLeanResponse is a differential test of the router's own HTTP/1.1
// response path (transport.go's lean path for GET and HEAD) against
// net/http.Transport as ReverseProxy drives it (a Got1xxResponse hook, so
// each 1xx head gets its own header budget): for any bytes a backend
// sends, both fail, or both give the same status, headers, body, trailers
// and Connection: close. By design the lean path also fails on a 101 to a
// request that asked for no upgrade (ReverseProxy answers 502 for it) and
// on more than maxInformational 1xx heads; and both transports refuse a
// status below 100, which http.ReadResponse accepts ("000") but
// ResponseWriter.WriteHeader panics on. A connection the lean path put
// back into its pool must be clean (a complete response that allows
// reuse, nothing after it).
//
// `go test` runs the seeds in testdata/fuzz/FuzzLeanResponse; explore with
// go test -run '^$' -fuzz FuzzLeanResponse -fuzztime 60s ./router/
func FuzzLeanResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), false)
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		newReq := func(ctx context.Context) *http.Request {
			req, err := http.NewRequestWithContext(ctx, method, "http://backend.test/", nil)
			if err != nil {
				t.Fatal(err)
			}
			return req
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// A hang is a bug too: crash with the input, so the fuzzer keeps it.
		watchdog := time.AfterFunc(20*time.Second, func() { panic(fmt.Sprintf("hung on %q (head %v)", raw, head)) })
		defer watchdog.Stop()

		// The router's transport, lean path.
		ours := newTransport(Options{MaxResponseHeaderBytes: fuzzHeaderLimit})
		ours.dial = pipeServer(raw)
		req := newReq(ctx)
		if !lean(req) {
			t.Fatal("request does not take the lean path")
		}
		got := readOutcome(ours.RoundTrip(req))

		// net/http.Transport, as ReverseProxy drives it.
		std := &http.Transport{
			DialContext:            pipeServer(raw),
			DisableCompression:     true,
			MaxResponseHeaderBytes: fuzzHeaderLimit,
		}
		defer std.CloseIdleConnections()
		n1xx := 0
		trace := &httptrace.ClientTrace{Got1xxResponse: func(int, textproto.MIMEHeader) error { n1xx++; return nil }}
		want := readOutcome(std.RoundTrip(newReq(httptrace.WithClientTrace(ctx, trace))))
		want.n1xx = n1xx
		if ctx.Err() != nil {
			t.Fatalf("timed out on %q", raw)
		}

		switch {
		case !want.failed && want.status < 100:
			want = outcome{failed: true} // both transports refuse it (ReverseProxy would panic)
		case !want.failed && want.status == http.StatusSwitchingProtocols:
			want = outcome{failed: true} // the lean path refuses it; ReverseProxy would too
		case want.n1xx > maxInformational:
			want = outcome{failed: true} // the lean path bounds 1xx heads
		}
		want.n1xx = 0
		if got.failed != want.failed {
			t.Fatalf("lean failed=%v, net/http failed=%v on %q\nlean: %+v\nnet/http: %+v", got.failed, want.failed, raw, got, want)
		}
		if !got.failed && !reflect.DeepEqual(got, want) {
			t.Fatalf("lean and net/http disagree on %q\nlean:     %+v\nnet/http: %+v", raw, got, want)
		}
		ours.mu.Lock()
		defer ours.mu.Unlock()
		for _, conns := range ours.idle {
			for _, bc := range conns {
				if got.failed || got.close {
					t.Fatalf("pooled a connection after a failed or Connection: close response %q", raw)
				}
				if bc.br.Buffered() > 0 {
					t.Fatalf("pooled a connection with %d unread bytes after %q", bc.br.Buffered(), raw)
				}
			}
		}
	})
}
