// Command routerbench runs plat's router (package router, the same handler the
// daemon serves) alone in front of one backend, for bench/router.sh. It maps
// one host to the backend and serves on a loopback address, over TLS with
// -cert and -key (the daemon's HTTPS settings, HTTP/2 included). -canary,
// -reqlog and -flags turn on the per-request features (a canary split,
// router request lines, feature flags) to measure what they cost. With
// -cpuprofile it writes a CPU profile of the whole run when it gets SIGINT or
// SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/plat-paas/plat/internal/httpx"
	"github.com/plat-paas/plat/logs"
	"github.com/plat-paas/plat/router"
)

const (
	// readHeaderTimeout matches the daemon's router server.
	readHeaderTimeout = 10 * time.Second
	// shutdownTimeout bounds the graceful shutdown at the end of a run.
	shutdownTimeout = 5 * time.Second
	// defaultCanaryWeight is the canary's share of requests with -canary.
	defaultCanaryWeight = 10
	// requestLogFlush is how often the -reqlog reader collects request
	// records, as the daemon's runRequestLog does.
	requestLogFlush = 50 * time.Millisecond
	// app is the name of the one routed app.
	app = "hello"
)

type config struct {
	addr, backend, host string
	cpuProfile          string
	cert, key           string // TLS certificate and key files (PEM); both or neither
	noResume            bool   // no TLS session tickets: every connection a full handshake
	canary              string // backend of a canary group; "" → no split
	canaryWeight        int
	reqLog              bool
	flags               string // "name:percent,...", "" → no flags
	frontend            string // "fast" (the daemon's) or "nethttp"
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address (loopback)")
	flag.StringVar(&c.frontend, "frontend", "fast", `HTTP front end: "fast" (router.FastListener with net/http behind it, as the daemon serves) or "nethttp" (net/http alone)`)
	flag.StringVar(&c.backend, "backend", "127.0.0.1:8081", "backend host:port")
	flag.StringVar(&c.host, "host", "hello.localhost", "host name routed to the backend")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	flag.StringVar(&c.cert, "cert", "", "serve HTTPS (and HTTP/2) with this PEM certificate; needs -key")
	flag.StringVar(&c.key, "key", "", "PEM private key of -cert")
	flag.BoolVar(&c.noResume, "no-resume", false, "issue no TLS session tickets, so that clients cannot resume: every new connection is a full handshake (the daemon issues them)")
	flag.StringVar(&c.canary, "canary", "", "host:port of a second backend: split the app's requests with a canary group there")
	flag.IntVar(&c.canaryWeight, "canary-weight", defaultCanaryWeight, "percent of requests the -canary group gets")
	flag.BoolVar(&c.reqLog, "reqlog", false, "log every request: router request lines read into a log hub as the daemon does")
	flag.StringVar(&c.flags, "flags", "", `feature flags of the app, "name:percent,...", e.g. "new-ui:50"`)
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "routerbench:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return fmt.Errorf("create cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt := router.New(router.Options{Logger: logger})
	route, err := c.route()
	if err != nil {
		return err
	}
	if _, err := rt.Set(route); err != nil {
		return fmt.Errorf("set route: %w", err)
	}
	if c.reqLog {
		go readRequestLog(ctx, rt, logger)
	}

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if c.cert != "" || c.key != "" {
		cfg, err := tlsConfig(c.cert, c.key, c.noResume)
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, cfg)
	}
	switch c.frontend {
	case "fast":
		fl := rt.FastListener(ln, router.FastOptions{ReadHeaderTimeout: readHeaderTimeout})
		defer fl.Shutdown(context.Background())
		ln = fl
	case "nethttp":
	default:
		return fmt.Errorf("-frontend %q: use fast or nethttp", c.frontend)
	}
	return serve(ctx, ln, router.WithHandedOverTLS(rt), logger)
}

// route is the one route of the run, with the features the flags turn on.
func (c config) route() (router.Route, error) {
	route := router.Route{App: app, Hosts: []string{c.host}, Release: "v1", Backends: []*router.Backend{router.NewBackend(c.backend)}}
	if c.canary != "" {
		route.Canary = &router.Group{Release: "v2", Backends: []*router.Backend{router.NewBackend(c.canary)}, Weight: c.canaryWeight}
	}
	route.LogRequests = c.reqLog
	flags, err := parseFlags(c.flags)
	if err != nil {
		return router.Route{}, err
	}
	route.Flags = flags
	return route, nil
}

// parseFlags reads -flags: "name:percent" pairs separated by commas.
func parseFlags(s string) ([]router.Flag, error) {
	if s == "" {
		return nil, nil
	}
	var flags []router.Flag
	for _, f := range strings.Split(s, ",") {
		name, pct, ok := strings.Cut(f, ":")
		n, err := strconv.Atoi(pct)
		if !ok || err != nil {
			return nil, fmt.Errorf(`-flags: %q: give name:percent, like "new-ui:50"`, f)
		}
		fl := router.Flag{Name: name, Percent: n}
		if err := router.ValidateFlag(fl); err != nil {
			return nil, fmt.Errorf("-flags: %w", err)
		}
		flags = append(flags, fl)
	}
	return flags, nil
}

// tlsConfig is the daemon's HTTPS configuration (router.TLS.TLSConfig:
// TLS 1.2 or later, Go's default curves and cipher suites, HTTP/2 and
// HTTP/1.1 by ALPN) with one certificate from files instead of certmagic's
// per-name cache, so that nginx can serve the same one. noResume turns
// session tickets off (the daemon leaves them on), so that every new
// connection is a full handshake.
func tlsConfig(certFile, keyFile string, noResume bool) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
		// With tickets on, wrk resumes the session on every reconnect.
		SessionTicketsDisabled: noResume,
	}, nil
}

// serve serves h on ln until ctx ends, then shuts down gracefully: an
// http.Server configured like the daemon's router listener (over a TLS
// listener it also speaks HTTP/2, as the daemon's HTTPS listener does),
// behind the fast front end when ln is one.
func serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ConnContext:       httpx.ConnContext, // for router.WithHandedOverTLS
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// readRequestLog does what the daemon's runRequestLog does with the
// router's request records: every requestLogFlush it formats the waiting
// ones as router lines and adds them to a log hub (here one nobody views,
// so the lines end in the hub's backlog).
func readRequestLog(ctx context.Context, rt *router.Router, logger *slog.Logger) {
	hub := logs.NewHub(noSource{}, logs.Options{Logger: logger})
	ch := rt.RequestLog()
	t := time.NewTicker(requestLogFlush)
	defer t.Stop()
	var batch []logs.RouterLine
	for {
		select {
		case <-ctx.Done():
			if n := rt.RequestLogDropped(); n > 0 {
				logger.Warn("request records dropped", "count", n)
			}
			return
		case <-t.C:
		}
		batch = batch[:0]
	drain:
		for range cap(ch) {
			select {
			case rec := <-ch:
				// The daemon labels the line with the backend's replica.
				batch = append(batch, logs.RouterLine{App: rec.App, Time: rec.Time, Text: rec.Format(app + ".1")})
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			hub.AddRouterLines(batch)
		}
	}
}

// noSource is a logs.Source without containers: the hub only keeps the
// router's lines.
type noSource struct{}

func (noSource) ActiveContainers(string) ([]logs.Container, error) { return nil, nil }

func (noSource) TimedLogs(context.Context, string, time.Time, int, bool, io.Writer) error {
	return nil
}
