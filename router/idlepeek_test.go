//go:build unix

package router

import (
	"io"
	"net"
	"testing"
	"time"
)

// idlePair returns both ends of a loopback TCP connection.
func idlePair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	if client, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

// TestIdleReadable: a quiet connection is fit for reuse; one with bytes
// the peer sent unasked, or that the peer closed, is not; peeking consumes
// nothing.
func TestIdleReadable(t *testing.T) {
	eventually := func(c net.Conn, want bool) {
		t.Helper()
		p := newIdlePeeker(c)
		deadline := time.Now().Add(2 * time.Second)
		for p.idleReadable() != want {
			if time.Now().After(deadline) {
				t.Fatalf("idleReadable = %v; want %v", !want, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	c, s := idlePair(t)
	if newIdlePeeker(c).idleReadable() {
		t.Fatal("a quiet connection looks readable")
	}
	_, _ = io.WriteString(s, "HTTP/1.1 200 OK\r\n")
	eventually(c, true)
	buf := make([]byte, 17)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("peek consumed bytes: read %q, %v", buf, err)
	}
	eventually(c, false)

	c2, s2 := idlePair(t)
	_ = s2.Close()
	eventually(c2, true)
}

// BenchmarkIdleReadable is the cost the lean path pays on each reused
// connection.
func BenchmarkIdleReadable(b *testing.B) {
	c, _ := idlePair(b)
	p := newIdlePeeker(c)
	b.ReportAllocs()
	for b.Loop() {
		if p.idleReadable() {
			b.Fatal("readable")
		}
	}
}
