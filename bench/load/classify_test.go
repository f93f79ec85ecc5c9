package load

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestClassify sorts real transport failures by kind.
func TestClassify(t *testing.T) {
	closed := func() string { // a port nothing listens on
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	serve := func(handle func(net.Conn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go handle(c)
			}
		}()
		return ln.Addr().String()
	}
	readThen := func(end func(net.Conn)) func(net.Conn) {
		return func(c net.Conn) {
			buf := make([]byte, 1024)
			c.Read(buf)
			end(c)
		}
	}
	tests := []struct {
		name   string
		target string
		kind   func(Result) int
	}{
		{"refused", closed(), func(r Result) int { return r.Refused }},
		{"EOF", serve(readThen(func(c net.Conn) { c.Close() })), func(r Result) int { return r.EOF }},
		{"reset", serve(readThen(func(c net.Conn) { c.(*net.TCPConn).SetLinger(0); c.Close() })), func(r Result) int { return r.Reset }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			r := Run(ctx, Options{Target: tt.target, Concurrency: 1, Pause: 20 * time.Millisecond})
			if r.Errors == 0 || tt.kind(r) != r.Errors {
				t.Errorf("%d errors, %s; want all %s (first: %v)", r.Errors, r.Kinds(), tt.name, r.Failures)
			}
		})
	}
}
