// Package daemon wires plat's parts into the long-running server: the
// control API, the git endpoint, the router listener and the local socket
// the git hook and the admin commands use. It also restores state at start.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/internal/authlimit"
	"github.com/plat-paas/plat/internal/httpx"
	"github.com/plat-paas/plat/logs"
	"github.com/plat-paas/plat/router"
	"github.com/plat-paas/plat/store"
	"github.com/plat-paas/plat/web"
)

// Defaults for the daemon's flags.
const (
	DefaultDataDir    = "/var/lib/plat"
	DefaultAPIAddr    = ":8700"
	DefaultHTTPAddr   = ":80"
	DefaultDomain     = "localhost"
	socketName        = "plat.sock"
	readHeaderTimeout = httpx.DefaultReadHeaderTimeout
	// idleTimeout closes keep-alive connections that stay silent.
	idleTimeout = httpx.DefaultIdleTimeout
	// maxHeaderBytes bounds request headers on every listener.
	maxHeaderBytes  = 64 << 10
	shutdownTimeout = 10 * time.Second
)

// Config is the daemon's configuration.
type Config struct {
	DataDir  string
	APIAddr  string // control API and git
	HTTPAddr string // the router
	// HTTPSAddr is the router's TLS listener, also serving the API at
	// plat.<Domain>; empty disables HTTPS.
	HTTPSAddr     string
	ACMECA        string // ACME directory URL for public names
	ACMEEmail     string
	ACMERootsFile string // PEM roots to trust for the ACME server's own HTTPS (a private CA)
	Domain        string // apps are served at <app>.<Domain>
	// PublicURL is how clients reach the API, used in printed URLs; derived from APIAddr when empty.
	PublicURL string
	// WakeTimeout is how long a request to a sleeping app is held.
	WakeTimeout time.Duration
	// AppSubnets is the pool app networks take their subnets from;
	// engine.DefaultAppSubnets when zero.
	AppSubnets netip.Prefix
	// BodyIdleTimeout ends a request whose body brings no byte for this
	// long, on the router and API listeners; 0 → httpx.DefaultBodyIdleTimeout.
	BodyIdleTimeout time.Duration
	Deploy          deploy.Config

	// AuthFailures refused tokens from one address within a minute lock
	// it out for AuthLockout (zero: the authlimit defaults).
	AuthFailures int
	AuthLockout  time.Duration
}

// Main runs `plat daemon [flags]`; `plat daemon token` asks a running
// daemon for a new API token, `plat daemon backup` and `restore` save and
// bring back its data.
func Main(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "token":
			return tokenMain(args[1:])
		case "backup":
			return backupMain(args[1:])
		case "restore":
			return restoreMain(args[1:])
		}
	}
	fs := flag.NewFlagSet("plat daemon", flag.ContinueOnError)
	var cfg Config
	fs.StringVar(&cfg.DataDir, "data", envOr("PLAT_DATA", DefaultDataDir), "data directory (store, git repos, socket)")
	fs.StringVar(&cfg.APIAddr, "api", DefaultAPIAddr, "listen address of the control API and git endpoint")
	fs.StringVar(&cfg.HTTPAddr, "http", DefaultHTTPAddr, "listen address of the app router (HTTP)")
	fs.StringVar(&cfg.HTTPSAddr, "https", DefaultHTTPSAddr, `listen address of the app router (HTTPS, also the API at plat.<domain>); "" disables HTTPS`)
	fs.StringVar(&cfg.ACMECA, "acme-ca", router.DefaultACMECA, "ACME directory URL used for public host names")
	fs.StringVar(&cfg.ACMEEmail, "acme-email", "", "contact email for the ACME account")
	fs.StringVar(&cfg.ACMERootsFile, "acme-ca-roots", "", "PEM file of roots to trust for the ACME server's HTTPS (only for a private ACME CA)")
	fs.StringVar(&cfg.Domain, "domain", DefaultDomain, "base domain: apps are served at <app>.<domain>")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "URL clients use to reach the API (default: derived from --api)")
	fs.StringVar(&cfg.Deploy.Instance, "instance", deploy.DefaultInstance, "name of this daemon on the Docker Engine (prefixes container names); daemons sharing an engine need different names")
	fs.IntVar(&cfg.Deploy.Retain, "retain", deploy.DefaultRetain, "releases per app whose images are kept for rollback")
	fs.DurationVar(&cfg.Deploy.DrainTimeout, "drain-timeout", deploy.DefaultDrainTimeout, "how long a deploy waits for the old version's in-flight requests")
	fs.IntVar(&cfg.Deploy.Port, "app-port", deploy.DefaultPort, "port apps listen on inside their container ($PORT)")
	fs.DurationVar(&cfg.WakeTimeout, "wake-timeout", router.DefaultWakeTimeout, "how long a request to a sleeping app waits for it to wake before a 504")
	fs.DurationVar(&cfg.BodyIdleTimeout, "body-idle-timeout", httpx.DefaultBodyIdleTimeout, "how long a request body (upload, git push) may send nothing before the request ends with 408")
	fs.DurationVar(&cfg.Deploy.ScaleDownDelay, "scale-down-delay", deploy.DefaultScaleDownDelay, "how long the load must fit in fewer replicas before the autoscaler removes one")
	fs.IntVar(&cfg.AuthFailures, "auth-max-failures", authlimit.DefaultMaxFailures, "refused tokens from one client address within a minute before it is locked out (429)")
	fs.DurationVar(&cfg.AuthLockout, "auth-lockout", authlimit.DefaultLockout, "how long a client address that sent too many refused tokens gets 429")
	fs.Func("app-subnets", fmt.Sprintf("IPv4 range each app's network takes a /%d from, skipping ranges other networks or host routes use (default %s: %d apps)",
		engine.AppSubnetBits, engine.DefaultAppSubnets, engine.AppNetworks(netip.MustParsePrefix(engine.DefaultAppSubnets))), func(s string) (err error) {
		cfg.AppSubnets, err = engine.ParseAppSubnets(s)
		return err
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg, log); err != nil {
		log.Error("plat daemon stopped", "err", err)
		return 1
	}
	return 0
}

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "plat.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	var engOpts []engine.DockerOption
	if cfg.AppSubnets.IsValid() {
		engOpts = append(engOpts, engine.WithAppSubnets(cfg.AppSubnets))
	}
	eng, err := engine.NewDocker(ctx, engOpts...)
	if err != nil {
		return err
	}
	rt := router.New(router.Options{Logger: log, WakeTimeout: cfg.WakeTimeout})
	sw := &switcher{router: rt, domain: cfg.Domain, store: st}
	dep := deploy.New(st, eng, sw, cfg.Deploy, log)
	hub := logs.NewHub(logSource{dep, eng}, logs.Options{Logger: log})
	dep.OnSwitch(func(app string, reps []deploy.Replica) { hub.Switch(app, logContainers(reps)) })
	rt.SetWaker(dep.Wake)

	if err := dep.Reconcile(ctx); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	go dep.Watch(ctx)
	go dep.Autoscale(ctx)
	go dep.MigrateNetworks(ctx) // apps adopted on the old shared network
	if ok, _ := st.HasTokens(); !ok {
		log.Warn("no API token yet: run `plat daemon token` on this host to create one")
	}

	apiLn, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("listen on API address: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on router address: %w", err)
	}
	sockPath := filepath.Join(cfg.DataDir, socketName)
	_ = os.Remove(sockPath)
	sockLn, err := net.Listen("unix", sockPath)
	if err != nil {
		return fmt.Errorf("listen on local socket: %w", err)
	}
	if err := os.Chmod(sockPath, 0o600); err != nil {
		return fmt.Errorf("restrict local socket: %w", err)
	}
	localCA, err := router.LoadOrCreateLocalCA(filepath.Join(cfg.DataDir, localCADir))
	if err != nil {
		return err
	}
	if !localCA.Constrained() {
		log.Warn("the local CA's root predates name constraints: a browser that trusts it would trust it for any name; to replace it, see \"Rotating the local CA\" in the README",
			"dir", filepath.Join(cfg.DataDir, localCADir))
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + publicHost(apiLn.Addr())
	}

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable for the git hook: %w", err)
	}
	tokens := newTokenManager(st, log)
	limiter := authlimit.New(authlimit.Options{MaxFailures: cfg.AuthFailures, Lockout: cfg.AuthLockout, Logger: log})
	srv := &server{
		cfg: cfg, store: st, deployer: dep, engine: eng, log: log,
		tokens: tokens, limiter: limiter,
		repos:      &repos{dir: filepath.Join(cfg.DataDir, "repos"), hookBinary: self, socket: sockPath},
		routerAddr: httpLn.Addr().String(),
		switcher:   sw, localCA: localCA,
		logHub: hub,
		web: web.New(web.Options{
			VerifyToken: tokens.verifyLogin,
			TokenLive:   func(id uint64) bool { _, ok := tokens.live(id); return ok },
			Limiter:     limiter,
			Logs:        hub, Logger: log,
			Sessions: web.NewSessions(st, 0, 0),
		}),
	}
	api := srv.apiHandler()
	routerHandler := http.Handler(rt)
	var httpsHandler http.Handler
	var httpsLn net.Listener
	if cfg.HTTPSAddr != "" {
		if httpsLn, err = net.Listen("tcp", cfg.HTTPSAddr); err != nil {
			return fmt.Errorf("listen on router HTTPS address: %w", err)
		}
		srv.routerTLSAddr = httpsLn.Addr().String()
		tm, err := newTLS(cfg, rt, localCA, httpLn.Addr(), httpsLn.Addr())
		if err != nil {
			return err
		}
		defer tm.Stop()
		apiHost := cfg.apiHost()
		routerHandler = tm.HTTPHandler(rt, func(host string) bool { return host == apiHost || rt.Serves(host) })
		httpsHandler = byHost(apiHost, withHSTS(api), rt)
		httpsLn = tls.NewListener(httpsLn, tm.TLSConfig())
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	bodyIdle := cfg.BodyIdleTimeout
	if bodyIdle <= 0 {
		bodyIdle = httpx.DefaultBodyIdleTimeout
	}
	// The public listeners also end request bodies that stall: one would
	// hold its request (and whatever the request holds) for good. The local
	// socket only serves the hook and the admin commands.
	newServer := func(h http.Handler) *http.Server {
		return httpx.NewServer(h, httpx.Limits{
			ReadHeaderTimeout: readHeaderTimeout, BodyIdleTimeout: bodyIdle,
			IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		}, errLog)
	}
	local := &http.Server{Handler: srv.localHandler(), ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes, ErrorLog: errLog}
	servers := []*http.Server{newServer(api), newServer(routerHandler), local}
	listeners := []net.Listener{apiLn, httpLn, sockLn}
	if httpsLn != nil {
		servers = append(servers, newServer(httpsHandler))
		listeners = append(listeners, httpsLn)
	}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func() { errc <- s.Serve(listeners[i]) }()
	}
	// Apps whose image is missing (a restored backup) are rebuilt while the
	// others already serve.
	rebuildCtx, stopRebuild := context.WithCancel(ctx)
	rebuilt := make(chan struct{})
	go func() {
		defer close(rebuilt)
		dep.RebuildMissing(rebuildCtx, srv.repos.archive)
	}()
	defer func() { stopRebuild(); <-rebuilt }()
	log.Info("plat daemon ready", "api", apiLn.Addr().String(), "router", httpLn.Addr().String(), "https", srv.routerTLSAddr, "domain", cfg.Domain, "data", cfg.DataDir)

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	hub.Close() // log followers would hold their responses open
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// logSource is where the log hub reads: the deployer knows the active
// replicas, the engine their output.
type logSource struct {
	dep *deploy.Deployer
	engine.Engine
}

func (s logSource) ActiveContainers(app string) ([]logs.Container, error) {
	return logContainers(s.dep.Replicas(app)), nil
}

func logContainers(reps []deploy.Replica) []logs.Container {
	out := make([]logs.Container, len(reps))
	for i, r := range reps {
		out[i] = logs.Container{ID: r.ID, Label: r.Label}
	}
	return out
}

// publicHost turns a listen address into one a client can use.
func publicHost(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
