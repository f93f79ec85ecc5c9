package api

// Node is a swarm node as GET /api/nodes lists it (409 on a daemon that is
// not in swarm mode).
type Node struct {
	ID           string     `json:"id"`
	Hostname     string     `json:"hostname"`
	Role         string     `json:"role"`         // manager or worker
	State        string     `json:"state"`        // ready, down, unknown, disconnected
	Availability string     `json:"availability"` // active, pause, drain
	Addr         string     `json:"addr"`
	Leader       bool       `json:"leader"`
	Engine       string     `json:"engine"` // the node's Docker Engine version
	Tasks        []NodeTask `json:"tasks"`
}

// NodeTask is a running replica of an app on a node.
type NodeTask struct {
	App     string `json:"app"`
	Replica string `json:"replica"` // the replica's name
	Release string `json:"release"`
	Addr    string `json:"addr"` // where the router reaches it
}

// JoinCommand is the answer of GET /api/nodes/join-command: what a new
// worker runs (its token is a cluster secret).
type JoinCommand struct {
	Command string `json:"command"`
}
