package router

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/plat-paas/plat/internal/httpx"
)

// HTTP/2 to HTTP/1.1 downgrade smuggling: the router takes HTTP/2 over TLS
// from clients and speaks HTTP/1.1 to apps, so a length, header or target
// that HTTP/2 carries as opaque bytes must never turn into HTTP/1.1 framing.

// smCert is a self-signed certificate for smHost.
var smCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{smHost},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, err
})

// serveH2 serves rt over TLS with HTTP/2 the way the daemon serves its
// HTTPS listener (httpx.NewServer on a tls.NewListener offering h2).
func serveH2(t *testing.T, rt *Router) string {
	t.Helper()
	cert, err := smCert()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpx.NewServer(rt, httpx.Limits{
		ReadHeaderTimeout: daemonReadHeaderTimeout,
		IdleTimeout:       daemonIdleTimeout,
		MaxHeaderBytes:    daemonMaxHeaderBytes,
	}, log.New(io.Discard, "", 0))
	tlsLn := tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"}, Certificates: []tls.Certificate{cert}})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(tlsLn) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		rt.CloseIdleConnections()
	})
	return ln.Addr().String()
}

// h2Client writes HTTP/2 frames by hand, so it can send what no HTTP/2
// library would.
type h2Client struct {
	t   *testing.T
	c   *tls.Conn
	fr  *http2.Framer
	buf bytes.Buffer
	enc *hpack.Encoder
}

func dialH2(t *testing.T, addr string) *h2Client {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: smHost, NextProtos: []string{"h2"}, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q; want h2", p)
	}
	h := &h2Client{t: t, c: c, fr: http2.NewFramer(c, c)}
	h.enc = hpack.NewEncoder(&h.buf)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return h
}

// send sends one request on stream id: fields in order (pseudo-fields
// first), then data, if any, in one DATA frame ending the stream.
func (h *h2Client) send(id uint32, fields [][2]string, data string) {
	h.t.Helper()
	h.buf.Reset()
	for _, f := range fields {
		if err := h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			h.t.Fatal(err)
		}
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.buf.Bytes(),
		EndHeaders: true, EndStream: data == ""}); err != nil {
		h.t.Fatal(err)
	}
	if data != "" {
		if err := h.fr.WriteData(id, true, []byte(data)); err != nil {
			h.t.Fatal(err)
		}
	}
}

// h2Reset is the outcome of a stream the server reset (or a connection it
// ended with GOAWAY) before a whole answer.
const h2Reset = -1

// result reads frames until stream id ends: its status and body, or
// h2Reset.
func (h *h2Client) result(id uint32) (status int, body string) {
	h.t.Helper()
	_ = h.c.SetReadDeadline(time.Now().Add(smWait))
	var b bytes.Buffer
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			if isClosedErr(err) { // the server ended the connection
				return h2Reset, ""
			}
			h.t.Fatalf("reading the answer on stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != id {
				continue
			}
			if s, _ := strconv.Atoi(f.PseudoValue("status")); s >= 200 {
				status = s
			}
			if f.StreamEnded() {
				return status, b.String()
			}
		case *http2.DataFrame:
			if f.StreamID != id {
				continue
			}
			b.Write(f.Data())
			if f.StreamEnded() {
				return status, b.String()
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return h2Reset, ""
			}
		case *http2.GoAwayFrame:
			if f.LastStreamID < id {
				return h2Reset, ""
			}
		}
	}
}

// TestSmugglingHTTP2Downgrade: HTTP/2 requests whose content-length
// disagrees with their DATA, that carry connection-specific fields
// (transfer-encoding, connection, upgrade, te other than trailers), CR, LF
// or NUL in a field or pseudo-field, or an invalid field name, are reset
// or rejected, or forwarded as one clean HTTP/1.1 request; the request
// hidden in each never reaches the app, and the connection serves the
// next stream.
func TestSmugglingHTTP2Downgrade(t *testing.T) {
	get := func(path string, extra ...[2]string) [][2]string {
		return append([][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", smHost}, {":path", path}}, extra...)
	}
	post := func(path string, extra ...[2]string) [][2]string {
		return append([][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", smHost}, {":path", path}}, extra...)
	}
	cases := []struct {
		name   string
		fields [][2]string
		data   string
		// netHTTP is what net/http answers today (a status or h2Reset);
		// 0: either, it races with the handler.
		netHTTP int
		forward []string // targets the app may receive (then exactly these); nil: none
		body    string
	}{
		{name: "valid", fields: get("/h2valid"), netHTTP: 200, forward: []string{"/h2valid"}},
		{name: "valid POST", fields: post("/h2post", [2]string{"content-length", "5"}), data: "hello",
			netHTTP: 200, forward: []string{"/h2post"}, body: "hello"},
		{name: "content-length 0 with a hidden request", fields: post("/h2cl0", [2]string{"content-length", "0"}), data: smuggled,
			forward: []string{"/h2cl0"}},
		{name: "content-length shorter than DATA", fields: post("/h2clshort", [2]string{"content-length", "5"}), data: "hello" + smuggled,
			netHTTP: h2Reset},
		{name: "content-length longer than DATA", fields: post("/h2cllong", [2]string{"content-length", "500"}), data: "hello",
			netHTTP: 400},
		{name: "transfer-encoding chunked", fields: post("/h2te", [2]string{"transfer-encoding", "chunked"}), data: "0\r\n\r\n" + smuggled,
			netHTTP: 400},
		{name: "connection", fields: get("/h2conn", [2]string{"connection", "keep-alive"}), netHTTP: 400},
		{name: "upgrade h2c", fields: get("/h2up", [2]string{"upgrade", "h2c"}), netHTTP: 400},
		{name: "te gzip", fields: get("/h2tegzip", [2]string{"te", "gzip"}), netHTTP: 400},
		{name: "te trailers", fields: get("/h2tetr", [2]string{"te", "trailers"}), netHTTP: 200, forward: []string{"/h2tetr"}},
		{name: "CRLF in a value", fields: get("/h2crlf", [2]string{"x-a", "a\r\nTransfer-Encoding: chunked"}), netHTTP: h2Reset},
		{name: "LF in a value", fields: get("/h2lf", [2]string{"x-a", "a\nX-Injected: 1"}), netHTTP: h2Reset},
		{name: "NUL in a value", fields: get("/h2nul", [2]string{"x-a", "a\x00b"}), netHTTP: h2Reset},
		{name: "upper-case name", fields: get("/h2upper", [2]string{"X-Upper", "1"}), netHTTP: h2Reset},
		{name: "space in a name", fields: get("/h2namesp", [2]string{"x a", "1"}), netHTTP: h2Reset},
		{name: "colon in a name", fields: get("/h2namecolon", [2]string{"x:a", "1"}), netHTTP: h2Reset},
		{name: "CRLF in :path", fields: get("/h2path\r\nX-Injected: 1"), netHTTP: h2Reset},
		{name: "space in :path", fields: get("/h2 HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /smuggled"), netHTTP: h2Reset},
		{name: "CRLF in :method", fields: [][2]string{{":method", "GET /smuggled HTTP/1.1\r\nX:"}, {":scheme", "https"}, {":authority", smHost}, {":path", "/h2m"}},
			netHTTP: h2Reset},
		{name: "CRLF in :authority", fields: [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", smHost + "\r\nX-Injected: 1"}, {":path", "/h2auth"}},
			netHTTP: h2Reset},
		{name: "host differs from :authority", fields: get("/h2host", [2]string{"host", "other.test"}),
			netHTTP: 200, forward: []string{"/h2host"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := newRawBackend(t)
			rt := New(Options{Logger: slog.New(slog.DiscardHandler)})
			if _, err := rt.Set(Route{App: "app", Hosts: []string{smHost}, Backends: []*Backend{NewBackend(be.addr)}}); err != nil {
				t.Fatal(err)
			}
			h := dialH2(t, serveH2(t, rt))
			h.send(1, tc.fields, tc.data)
			status, body := h.result(1)
			t.Logf("net/http answers %d", status)
			if tc.netHTTP != 0 && status != tc.netHTTP {
				t.Errorf("net/http answered %d; it answered %d when the suite was written", status, tc.netHTTP)
			}
			got := be.targets()
			switch {
			case status >= 200 && status < 300:
				if tc.forward == nil {
					t.Fatalf("answered %d %q; want a reset or a rejection", status, body)
				}
				if !slices.Equal(got, tc.forward) || body != "ok "+tc.forward[0] {
					t.Fatalf("backend received %q, client got %q; want exactly %q and its answer", got, body, tc.forward)
				}
				for _, r := range be.requests() {
					if r.body != tc.body {
						t.Errorf("backend received body %q; want %q", trunc(r.body), tc.body)
					}
					if hv := r.get("Host"); len(hv) != 1 || hv[0] != smHost {
						t.Errorf("backend received Host %q; want exactly %q", hv, smHost)
					}
					if v := r.get("X-Injected"); len(v) > 0 {
						t.Errorf("backend received X-Injected %q", v)
					}
				}
			default: // a reset or a rejection; the app may at most have its clean part
				if len(got) > 0 && (tc.forward == nil || !slices.Equal(got, tc.forward)) {
					t.Fatalf("answered %d but the backend received %q", status, got)
				}
			}
			if slices.Contains(be.targets(), "/smuggled") {
				t.Fatalf("the hidden request reached the backend: %q", be.targets())
			}
			// The connection serves the next stream, unless it was ended.
			h.send(3, get("/next"), "")
			if status, body := h.result(3); status != h2Reset && (status != 200 || body != "ok /next") {
				t.Fatalf("next stream got %d %q; want 200 %q", status, body, "ok /next")
			}
		})
	}
}
