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
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/plat-paas/plat/builder"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/internal/authlimit"
	"github.com/plat-paas/plat/internal/httpx"
	"github.com/plat-paas/plat/logs"
	"github.com/plat-paas/plat/metrics"
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
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes keep-alive connections that stay silent.
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes bounds request headers on every listener.
	maxHeaderBytes  = 64 << 10
	shutdownTimeout = 10 * time.Second
)

// Config is the daemon's configuration.
type Config struct {
	DataDir  string
	APIAddr  string // control API and git
	HTTPAddr string // the router
	// SSHAddr is where git pushes over SSH are served; empty disables SSH.
	SSHAddr string
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
	// FastRouter serves plain HTTP/1.1 requests to apps with the router's
	// fast front end (router.FastListener).
	FastRouter bool
	// MaxPushBytes and MaxSourceBytes bound a push's body and its unpacked
	// source; PushIdleTimeout is how long its body may stall. Zero: the
	// defaults.
	MaxPushBytes    int64
	MaxSourceBytes  int64
	PushIdleTimeout time.Duration
	// AppSubnets is the pool app networks take their subnets from;
	// engine.DefaultAppSubnets when zero.
	AppSubnets netip.Prefix
	// BodyIdleTimeout ends a request whose body brings no byte for this
	// long, on the router and API listeners; 0 → httpx.DefaultBodyIdleTimeout.
	BodyIdleTimeout time.Duration
	Deploy          deploy.Config

	// UpgradeTimeout bounds how long an upgrade lets the old worker's
	// pushes and deploys run before it cancels them; 0 → DefaultUpgradeTimeout.
	UpgradeTimeout time.Duration

	// AuthFailures refused tokens from one address within a minute lock
	// it out for AuthLockout (zero: the authlimit defaults).
	AuthFailures int
	AuthLockout  time.Duration

	// CLIDir holds the cross-built CLI binaries GET /install-cli serves.
	CLIDir string

	// MaxPreviews is how many branch previews one app may have; PreviewIdle
	// how long a preview runs without requests before it sleeps. Zero:
	// deploy.DefaultMaxPreviews and deploy.DefaultPreviewIdle.
	MaxPreviews int
	PreviewIdle time.Duration

	// Orchestrator runs the replicas: OrchestratorDocker (default) or
	// OrchestratorSwarm; Registry is where swarm mode pushes app images.
	Orchestrator string
	Registry     string
	// MetricsAddr, if set, is a loopback address serving /metrics without
	// a token (the API serves it with one).
	MetricsAddr string
}

func (c Config) maxPushBytes() int64 {
	if c.MaxPushBytes <= 0 {
		return DefaultMaxPushBytes
	}
	return c.MaxPushBytes
}

func (c Config) maxSourceBytes() int64 {
	if c.MaxSourceBytes <= 0 {
		return DefaultMaxSourceBytes
	}
	return c.MaxSourceBytes
}

func (c Config) pushIdleTimeout() time.Duration {
	if c.PushIdleTimeout <= 0 {
		return DefaultPushIdleTimeout
	}
	return c.PushIdleTimeout
}

// Main runs `plat daemon [flags]` (the supervisor, which runs the daemon
// proper as its worker: supervisor.go); `plat daemon upgrade` restarts a
// running daemon from a new binary on the same sockets, `plat daemon token`
// asks a running daemon for a new API token, `plat daemon backup` and
// `restore` save and bring back its data.
func Main(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "token":
			return tokenMain(args[1:])
		case "backup":
			return backupMain(args[1:])
		case "restore":
			return restoreMain(args[1:])
		case "ssh-host-key":
			return sshHostKeyMain(args[1:])
		case "upgrade":
			return upgradeMain(args[1:], os.Stdout, os.Stderr)
		}
	}
	fs := flag.NewFlagSet("plat daemon", flag.ContinueOnError)
	var cfg Config
	fs.StringVar(&cfg.DataDir, "data", envOr("PLAT_DATA", DefaultDataDir), "data directory (store, git repos, socket)")
	fs.StringVar(&cfg.APIAddr, "api", DefaultAPIAddr, "listen address of the control API and git endpoint")
	fs.StringVar(&cfg.HTTPAddr, "http", DefaultHTTPAddr, "listen address of the app router (HTTP)")
	fs.StringVar(&cfg.HTTPSAddr, "https", DefaultHTTPSAddr, `listen address of the app router (HTTPS, also the API at plat.<domain>); "" disables HTTPS`)
	fs.StringVar(&cfg.SSHAddr, "ssh", DefaultSSHAddr, `listen address of git push over SSH (keys from `+"`plat keys:add`"+`); "" disables SSH`)
	fs.StringVar(&cfg.ACMECA, "acme-ca", router.DefaultACMECA, "ACME directory URL used for public host names")
	fs.StringVar(&cfg.ACMEEmail, "acme-email", "", "contact email for the ACME account")
	fs.StringVar(&cfg.ACMERootsFile, "acme-ca-roots", "", "PEM file of roots to trust for the ACME server's HTTPS (only for a private ACME CA)")
	fs.StringVar(&cfg.Domain, "domain", DefaultDomain, "base domain: apps are served at <app>.<domain>")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "URL clients use to reach the API (default: derived from --api)")
	fs.StringVar(&cfg.Deploy.Instance, "instance", deploy.DefaultInstance, "name of this daemon on the Docker Engine (prefixes container names); daemons sharing an engine need different names")
	fs.IntVar(&cfg.Deploy.MaxBuilds, "max-builds", builder.DefaultMaxBuilds, "builds that run at once on this host; more pushes wait for a slot")
	fs.DurationVar(&cfg.Deploy.BuildTimeout, "build-timeout", builder.DefaultBuildTimeout, "how long one build may run before its push is rejected")
	fs.IntVar(&cfg.Deploy.Retain, "retain", deploy.DefaultRetain, "releases per app whose images are kept for rollback")
	fs.DurationVar(&cfg.Deploy.DrainTimeout, "drain-timeout", deploy.DefaultDrainTimeout, "how long a deploy waits for the old version's in-flight requests")
	fs.IntVar(&cfg.Deploy.Port, "app-port", deploy.DefaultPort, "port apps listen on inside their container ($PORT)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", `loopback address (e.g. 127.0.0.1:9100) serving /metrics without a token; "" (default): /metrics only on the API, with a token`)
	fs.BoolVar(&cfg.FastRouter, "fast-router", true, "serve plain HTTP/1.1 requests to apps with the router's own lean front end; false: net/http serves every request")
	fs.DurationVar(&cfg.WakeTimeout, "wake-timeout", router.DefaultWakeTimeout, "how long a request to a sleeping app waits for it to wake before a 504")
	cfg.MaxPushBytes, cfg.MaxSourceBytes = DefaultMaxPushBytes, DefaultMaxSourceBytes
	fs.Var(byteSize{&cfg.MaxPushBytes}, "max-push-size", "largest push body (the pack git sends) accepted, e.g. 1GiB or 200MiB")
	fs.Var(byteSize{&cfg.MaxSourceBytes}, "max-source-size", "largest unpacked source (the tar of the pushed commit) built, e.g. 1GiB or 200MiB")
	fs.DurationVar(&cfg.PushIdleTimeout, "push-idle-timeout", DefaultPushIdleTimeout, "how long a push's body may send nothing before the push is dropped")
	fs.DurationVar(&cfg.BodyIdleTimeout, "body-idle-timeout", httpx.DefaultBodyIdleTimeout, "how long a request body (upload, git push) may send nothing before the request ends with 408")
	warmFlags(fs, &cfg)
	fs.DurationVar(&cfg.Deploy.ScaleDownDelay, "scale-down-delay", deploy.DefaultScaleDownDelay, "how long the load must fit in fewer replicas before the autoscaler removes one")
	fs.DurationVar(&cfg.UpgradeTimeout, "upgrade-timeout", DefaultUpgradeTimeout, "how long an upgrade (SIGHUP, plat daemon upgrade) lets running pushes and deploys finish on the old version before it cancels them")
	fs.IntVar(&cfg.AuthFailures, "auth-max-failures", authlimit.DefaultMaxFailures, "refused tokens from one client address within a minute before it is locked out (429)")
	fs.DurationVar(&cfg.AuthLockout, "auth-lockout", authlimit.DefaultLockout, "how long a client address that sent too many refused tokens gets 429")
	fs.StringVar(&cfg.CLIDir, "cli-dir", DefaultCLIDir, "directory of the cross-built CLI binaries (plat-OS-ARCH and .sha256) served at /install-cli; install.sh fills it")
	fs.Func("app-subnets", fmt.Sprintf("IPv4 range each app's network takes a /%d from, skipping ranges other networks or host routes use (default %s: %d apps)",
		engine.AppSubnetBits, engine.DefaultAppSubnets, engine.AppNetworks(netip.MustParsePrefix(engine.DefaultAppSubnets))), func(s string) (err error) {
		cfg.AppSubnets, err = engine.ParseAppSubnets(s)
		return err
	})
	fs.StringVar(&cfg.Orchestrator, "orchestrator", envOr("PLAT_ORCHESTRATOR", DefaultOrchestrator), `what runs the apps: "docker" (this host's engine) or "swarm" (the swarm this host manages; see docs/swarm.md)`)
	fs.StringVar(&cfg.Registry, "registry", envOr("PLAT_REGISTRY", engine.DefaultRegistry), "with --orchestrator swarm: host:port of the registry app images are pushed to and every node pulls from")
	fs.IntVar(&cfg.MaxPreviews, "max-previews", deploy.DefaultMaxPreviews, "branch previews one app may have at once; a push of one more branch is refused")
	fs.DurationVar(&cfg.PreviewIdle, "preview-idle", deploy.DefaultPreviewIdle, "how long a branch preview runs without requests before it sleeps (it wakes on its host)")
	cfg.Deploy.BaseImages = builder.BaseImages{}
	fs.Var(cfg.Deploy.BaseImages, "base-image", baseImageUsage())
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.MetricsAddr != "" {
		if err := checkMetricsAddr(cfg.MetricsAddr); err != nil {
			fmt.Fprintln(os.Stderr, "plat daemon:", err)
			return 2
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if spec := os.Getenv(envWorker); spec != "" {
		return workerMain(cfg, spec, log)
	}
	return supervise(cfg, log)
}

// Run serves until ctx ends or a listener fails (its error is returned).
// Everything it starts (the engine watcher, the autoscaler, the servers and
// their handlers) is stopped and waited for before the store is closed.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return run(ctx, cfg, log, nil)
}

// run is Run for a worker when ws is set: on the supervisor's listeners,
// reporting to it and handing over to the next worker when it says so.
func run(ctx context.Context, cfg Config, log *slog.Logger, ws *workerSetup) error {
	d, err := newDaemon(ctx, cfg, log, ws)
	if err != nil {
		return err
	}
	defer d.close()
	if err := d.listen(); err != nil {
		return err
	}
	return d.serve(ctx)
}

// daemon is one running plat daemon: what Run wires together.
type daemon struct {
	cfg   Config
	log   *slog.Logger
	store *store.Store
	eng   engine.Engine
	rt    *router.Router
	sw    *switcher
	dep   *deploy.Deployer
	hub   *logs.Hub
	tls   *router.TLS
	smp   *metrics.Sampler

	srv       *server
	ssh       *sshServer // nil when --ssh is ""
	servers   []*http.Server
	listeners []net.Listener
	// fast are the router's fast front ends among listeners.
	fast []*router.FastListener
	ws   *workerSetup // nil: not under a supervisor
	// loops are the background goroutines that use the store (watcher,
	// autoscaler, migrations); they stop before the store closes.
	loops sync.WaitGroup
	// gate admits the requests that use the store (API, dashboard, local
	// socket) and lets an upgrade wait for them before closing it.
	gate gate
	// unread and quiescing serve quiesce.
	unread    unread
	quiescing atomic.Bool
	// handlers counts the requests being served, so that shutdown can
	// wait for them before the store closes.
	handlers sync.WaitGroup
}

// newDaemon opens the store and the engine, wires the router and the
// deployer, and brings the engine in line with the store.
func newDaemon(ctx context.Context, cfg Config, log *slog.Logger, ws *workerSetup) (_ *daemon, err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	d := &daemon{cfg: cfg, log: log, ws: ws}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.eng, err = openEngine(ctx, cfg); err != nil {
		return nil, err
	}
	// An upgrade's new worker has come this far while the old one still
	// serves; the old one now stops accepting and releases the store.
	if d.store, err = ws.openStore(filepath.Join(cfg.DataDir, "plat.db"), cfg); err != nil {
		return nil, err
	}
	st := d.store
	d.rt = router.New(router.Options{Logger: log, WakeTimeout: cfg.WakeTimeout})
	d.sw = &switcher{router: d.rt, domain: cfg.Domain, store: st}
	d.dep = deploy.New(st, d.eng, d.sw, cfg.Deploy, log)
	d.hub = logs.NewHub(logSource{d.dep, d.eng}, logs.Options{Logger: log})
	d.dep.OnSwitch(func(app string, reps []deploy.Replica) { d.hub.Switch(app, logContainers(reps)) })
	d.rt.SetWaker(d.wake)
	d.smp = metrics.New(appsOnly{d.rt}, metrics.Options{})
	d.sw.keep = d.smp.Keep
	if err := d.dep.Reconcile(ctx); err != nil {
		return nil, fmt.Errorf("restore state: %w", err)
	}
	if ok, _ := st.HasTokens(); !ok {
		log.Warn("no API token yet: run `plat daemon token` on this host to create one")
	}
	return d, nil
}

// listen opens the listeners and makes their servers.
func (d *daemon) listen() error {
	cfg, log := d.cfg, d.log
	apiLn, err := d.listenOn(roleAPI, "tcp", cfg.APIAddr, "API address")
	if err != nil {
		return err
	}
	httpLn, err := d.listenOn(roleHTTP, "tcp", cfg.HTTPAddr, "router address")
	if err != nil {
		return err
	}
	httpIndex := len(d.listeners) - 1
	sockPath := filepath.Join(cfg.DataDir, socketName)
	if d.ws == nil {
		_ = os.Remove(sockPath)
	}
	if _, err := d.listenOn(roleLocal, "unix", sockPath, "local socket"); err != nil {
		return err
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
	publicURLGiven := cfg.PublicURL != ""
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + publicHost(apiLn.Addr())
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable for the git hook: %w", err)
	}
	st := d.store
	tokens := newTokenManager(st, log)
	limiter := authlimit.New(authlimit.Options{MaxFailures: cfg.AuthFailures, Lockout: cfg.AuthLockout, Logger: log})
	srv := &server{
		cfg: cfg, store: st, deployer: d.dep, engine: d.eng, log: log,
		tokens: tokens, limiter: limiter, publicURLGiven: publicURLGiven,
		repos:      &repos{dir: filepath.Join(cfg.DataDir, "repos"), hookBinary: self, socket: sockPath},
		routerAddr: httpLn.Addr().String(),
		switcher:   d.sw, localCA: localCA,
		logHub:       d.hub,
		sampler:      d.smp,
		prom:         promHandler(d.rt, st, d.fastStats),
		upgradeState: upgradeState{supervised: d.ws != nil, started: time.Now()},
		web: web.New(web.Options{
			VerifyToken: tokens.verifyLogin,
			TokenLive:   func(id uint64) bool { _, ok := tokens.live(id); return ok },
			Limiter:     limiter,
			Logs:        d.hub, Logger: log,
			Sessions: web.NewSessions(st, 0, 0),
		}),
	}
	d.srv = srv
	appURL := srv.appURL
	d.sw.appURL.Store(&appURL)
	api := d.gate.wrap(srv.apiHandler())
	routerHandler := http.Handler(d.rt)
	var httpsHandler http.Handler
	var httpsLn net.Listener
	if cfg.HTTPSAddr != "" {
		if httpsLn, err = d.listenOn(roleHTTPS, "tcp", cfg.HTTPSAddr, "router HTTPS address"); err != nil {
			return err
		}
		srv.routerTLSAddr = httpsLn.Addr().String()
		if d.tls, err = newTLS(cfg, d.rt, localCA, httpLn.Addr(), httpsLn.Addr()); err != nil {
			return err
		}
		apiHost := cfg.apiHost()
		routerHandler = d.tls.HTTPHandler(d.rt, func(host string) bool { return host == apiHost || d.rt.Serves(host) })
		httpsHandler = router.WithHandedOverTLS(byHost(apiHost, withHSTS(api), d.rt))
		d.listeners[len(d.listeners)-1] = tls.NewListener(httpsLn, d.tls.TLSConfig())
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
		s := httpx.NewServer(d.track(h), httpx.Limits{
			ReadHeaderTimeout: readHeaderTimeout, BodyIdleTimeout: bodyIdle,
			IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
			OwnBodyTimeout: isPushBody, // --push-idle-timeout bounds those
		}, errLog)
		s.ConnState = d.unread.hook
		return s
	}
	local := &http.Server{Handler: d.track(d.gate.wrap(srv.localHandler())), ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes, ErrorLog: errLog, ConnState: d.unread.hook}
	d.servers = []*http.Server{newServer(api), newServer(routerHandler), local}
	if httpsHandler != nil {
		d.servers = append(d.servers, newServer(httpsHandler))
	}
	// The fast front end serves the router's listener that reaches apps:
	// the HTTPS one (but for the API's host), or the HTTP one without
	// HTTPS (with HTTPS, HTTP only redirects and answers ACME).
	if cfg.FastRouter {
		i, opts := httpIndex, router.FastOptions{ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, Requests: &d.handlers}
		if cfg.HTTPSAddr != "" {
			i, opts.ExceptHosts = len(d.listeners)-1, []string{strings.ToLower(cfg.apiHost())}
		}
		opts.Server = d.servers[i] // servers and listeners pair up by index
		fl := d.rt.FastListener(d.listeners[i], opts)
		d.listeners[i], d.fast = fl, append(d.fast, fl)
	}
	if cfg.MetricsAddr != "" {
		if _, err := d.listenOn(roleMetrics, "tcp", cfg.MetricsAddr, "metrics address"); err != nil {
			return err
		}
		// Gated like the API: a scrape reads the store (the releases).
		d.servers = append(d.servers, newServer(d.gate.wrap(metricsOnly(srv.prom))))
	}
	// Opened last: serve pairs d.servers with the first listeners.
	if cfg.SSHAddr != "" {
		sshLn, err := d.listenOn(roleSSH, "tcp", cfg.SSHAddr, "SSH address")
		if err != nil {
			return err
		}
		if d.ssh, err = d.newSSH(sshLn); err != nil {
			return err
		}
	}
	return nil
}

// newSSH makes the SSH server for ln, with the host key kept in the data
// dir, and tells the API where it is.
func (d *daemon) newSSH(ln net.Listener) (*sshServer, error) {
	hostKey, err := loadOrCreateHostKey(filepath.Join(d.cfg.DataDir, sshDir, sshHostKeyFile))
	if err != nil {
		return nil, err
	}
	d.srv.sshInfo = sshInfo{
		Enabled: true, Addr: ln.Addr().String(), Port: ln.Addr().(*net.TCPAddr).Port,
		HostKey:            strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey.PublicKey()))),
		HostKeyFingerprint: ssh.FingerprintSHA256(hostKey.PublicKey()),
	}
	return newSSHServer(ln, sshOptions{
		HostKey: hostKey, Authorize: d.srv.authorizeKey, Run: d.srv.runSSH,
		IdleTimeout: d.cfg.pushIdleTimeout(), Logger: d.log,
	}), nil
}

// listenOn opens a listener that close closes, or takes the one the
// supervisor passed for role.
func (d *daemon) listenOn(role, network, addr, what string) (net.Listener, error) {
	ln, err := d.ws.listener(role)
	if ln == nil && err == nil {
		ln, err = net.Listen(network, addr)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", what, err)
	}
	d.listeners = append(d.listeners, ln)
	return ln, nil
}

// fastStats sums the counters of the router's fast front ends.
func (d *daemon) fastStats() router.FastStats {
	var sum router.FastStats
	for _, fl := range d.fast {
		st := fl.Stats()
		sum.Served += st.Served
		sum.HandedOver += st.HandedOver
	}
	return sum
}

// track counts the requests h serves in d.handlers.
func (d *daemon) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.handlers.Add(1)
		defer d.handlers.Done()
		h.ServeHTTP(w, r)
	})
}

// serve runs the engine watcher, the autoscaler and the servers until ctx
// ends or a server fails, then shuts everything down and waits for it.
func (d *daemon) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	d.loops.Go(func() { d.dep.Watch(loopCtx) })
	d.loops.Go(func() { d.dep.Autoscale(loopCtx) })
	d.loops.Go(func() { d.smp.Run(loopCtx) })
	d.loops.Go(func() { runRequestLog(loopCtx, d.rt, d.dep, d.hub) })
	d.loops.Go(func() { d.dep.MigrateNetworks(loopCtx) }) // apps adopted on the old shared network
	// Apps whose image is missing (a restored backup) are rebuilt while the
	// others already serve.
	d.loops.Go(func() { d.dep.RebuildMissing(loopCtx, d.srv.repos.archive) })
	var wg sync.WaitGroup
	var once sync.Once
	var serveErr error
	for i, s := range d.servers {
		ln := d.listeners[i]
		wg.Go(func() {
			if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) && !d.quiescing.Load() {
				once.Do(func() { serveErr = fmt.Errorf("serve %s: %w", ln.Addr(), err) })
				cancel() // one listener failing stops the daemon
			}
		})
	}
	if d.ssh != nil {
		wg.Go(func() {
			if err := d.ssh.Serve(); err != nil && !d.quiescing.Load() {
				once.Do(func() { serveErr = err })
				cancel()
			}
		})
	}
	d.log.Info("plat daemon ready", "api", d.listeners[0].Addr().String(), "router", d.srv.routerAddr, "https", d.srv.routerTLSAddr, "ssh", d.srv.sshInfo.Addr, "domain", d.cfg.Domain, "data", d.cfg.DataDir, "version", version(), "pid", os.Getpid())
	d.ws.send(msgReady)
	select {
	case <-ctx.Done():
		stopLoops()
		d.shutdown()
	case <-d.ws.drained():
		d.handOver(stopLoops)
	}
	wg.Wait()
	d.loops.Wait()
	return serveErr
}

// shutdown stops the servers: running deploys are cancelled (their
// releases fail and the old ones keep serving at the next start), requests
// get shutdownTimeout to finish, then their connections are closed.
func (d *daemon) shutdown() {
	d.hub.Close() // log followers would hold their responses open
	d.dep.CancelAll(deploy.ErrShutdown)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	d.quiesce(sctx)
	d.waitHandlers(shutdownTimeout)
}

// close releases what newDaemon and listen opened; the store goes last.
func (d *daemon) close() {
	for _, ln := range d.listeners {
		ln.Close()
	}
	if d.tls != nil {
		d.tls.Stop()
	}
	d.closeStore()
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

// isPushBody reports whether r is a git push's pack upload, whose reads
// the git endpoint bounds itself with --push-idle-timeout.
func isPushBody(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/git/") && strings.HasSuffix(r.URL.Path, "/git-receive-pack")
}

// wake is the router's waker: a preview host's route (deploy.PreviewKey)
// wakes its release, an app's own route the app.
func (d *daemon) wake(ctx context.Context, key string) error {
	if app, release, ok := deploy.ParsePreviewKey(key); ok {
		return d.dep.WakePreview(ctx, app, release)
	}
	return d.dep.Wake(ctx, key)
}
