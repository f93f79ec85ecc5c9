//go:build unix

package router

import (
	"errors"
	"net"
	"syscall"
)

// idlePeeker looks at an idle connection's socket without reading it.
// It is made once per connection, so that a look allocates nothing.
type idlePeeker struct {
	rc       syscall.RawConn
	peekFunc func(fd uintptr) bool // p.peek, bound once
	buf      [1]byte
	readable bool
}

// newIdlePeeker returns a peeker for c, or nil if c is not a socket.
func newIdlePeeker(c net.Conn) *idlePeeker {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &idlePeeker{rc: rc}
	p.peekFunc = p.peek
	return p
}

func (p *idlePeeker) peek(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	// EAGAIN: nothing to read, as it should be. Otherwise bytes the peer
	// sent unasked, its close (0 bytes) or a broken socket.
	p.readable = !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EWOULDBLOCK)
	return true // done: never wait for the socket
}

// idleReadable reports whether the connection, idle since its last
// complete response, has bytes to read or was closed by its peer: one
// non-blocking recvfrom with MSG_PEEK, which consumes nothing. A nil
// peeker knows nothing and reports false.
func (p *idlePeeker) idleReadable() bool {
	if p == nil {
		return false
	}
	if err := p.rc.Read(p.peekFunc); err != nil {
		return true // closed
	}
	return p.readable
}
