// Command routerbench runs plat's router (package router, the same handler the
// daemon serves) alone in front of one backend, for bench/router.sh. It maps
// one host to the backend and serves on a loopback address; with -cpuprofile
// it writes a CPU profile of the whole run when it gets SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/plat-paas/plat/router"
)

// readHeaderTimeout matches the daemon's router server.
const readHeaderTimeout = 10 * time.Second

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (loopback)")
	backend := flag.String("backend", "127.0.0.1:8081", "backend host:port")
	host := flag.String("host", "hello.localhost", "host name routed to the backend")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if err := run(*addr, *backend, *host, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "routerbench:", err)
		os.Exit(1)
	}
}

func run(addr, backend, host, cpuProfile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
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
	if _, err := rt.Set(router.Route{App: "hello", Hosts: []string{host}, Backends: []*router.Backend{router.NewBackend(backend)}}); err != nil {
		return fmt.Errorf("set route: %w", err)
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           rt,
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
