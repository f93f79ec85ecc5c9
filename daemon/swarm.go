package daemon

import (
	"context"
	"fmt"
	"net/http"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/engine"
)

// Orchestrators: what runs the apps' replicas (--orchestrator, PLAT_ORCHESTRATOR).
const (
	// OrchestratorDocker runs replicas as containers on this host's engine.
	OrchestratorDocker = "docker"
	// OrchestratorSwarm runs them as services of the swarm this host's
	// engine manages (docs/swarm.md).
	OrchestratorSwarm = "swarm"
	// DefaultOrchestrator is the plain engine: one host, nothing to set up.
	DefaultOrchestrator = OrchestratorDocker
)

// openEngine connects to the engine the configuration names.
func openEngine(ctx context.Context, cfg Config) (engine.Engine, error) {
	var opts []engine.DockerOption
	if cfg.AppSubnets.IsValid() {
		opts = append(opts, engine.WithAppSubnets(cfg.AppSubnets))
	}
	d, err := engine.NewDocker(ctx, opts...)
	if err != nil {
		return nil, err
	}
	switch cfg.Orchestrator {
	case "", OrchestratorDocker:
		return d, nil
	case OrchestratorSwarm:
		s, err := engine.NewSwarm(ctx, d, engine.SwarmOptions{Registry: cfg.Registry})
		if err != nil {
			_ = d.Close()
			return nil, err
		}
		return s, nil
	default:
		_ = d.Close()
		return nil, fmt.Errorf("unknown orchestrator %q: use %q (one host) or %q", cfg.Orchestrator, OrchestratorDocker, OrchestratorSwarm)
	}
}

// cluster is what the swarm engine adds for `plat nodes`.
type cluster interface {
	Nodes(ctx context.Context, labels map[string]string) ([]engine.Node, error)
	JoinCommand(ctx context.Context) (string, error)
}

// clusterOf returns the server's engine as a cluster, or answers 409.
func (s *server) clusterOf(w http.ResponseWriter) (cluster, bool) {
	c, ok := s.engine.(cluster)
	if !ok {
		writeError(w, http.StatusConflict, "the daemon runs apps on this host's engine, not on a swarm: start it with --orchestrator swarm (see docs/swarm.md)")
	}
	return c, ok
}

// listNodes answers GET /api/nodes: the swarm's nodes and this daemon's
// replicas on each.
func (s *server) listNodes(w http.ResponseWriter, r *http.Request) {
	c, ok := s.clusterOf(w)
	if !ok {
		return
	}
	nodes, err := c.Nodes(r.Context(), map[string]string{engine.LabelManaged: "true", engine.LabelInstance: s.cfg.Deploy.Instance})
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, nodes)
}

// joinCommand answers GET /api/nodes/join-command.
func (s *server) joinCommand(w http.ResponseWriter, r *http.Request) {
	c, ok := s.clusterOf(w)
	if !ok {
		return
	}
	cmd, err := c.JoinCommand(r.Context())
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.JoinCommand{Command: cmd})
}

func (s *server) nodeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/nodes", s.listNodes)
	mux.HandleFunc("GET /api/nodes/join-command", s.joinCommand)
}
