package engine

import (
	"context"
	"fmt"
	"net"
	"sort"

	"github.com/docker/docker/api/types/swarm"
	"github.com/plat-paas/plat/api"
)

// Node is one machine of the swarm as `plat nodes` shows it (the API's
// wire type).
type Node = api.Node

// NodeTask is a running replica of an app on a node.
type NodeTask = api.NodeTask

// Nodes lists the swarm's nodes with the running tasks of the services
// carrying labels (this daemon's replicas).
func (s *Swarm) Nodes(ctx context.Context, labels map[string]string) ([]Node, error) {
	nodes, err := s.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	svcs, tasks, err := s.services(ctx, labels)
	if err != nil {
		return nil, err
	}
	byNode := map[string][]NodeTask{}
	for _, svc := range svcs {
		t, ok := runningTask(tasks[svc.ID])
		if !ok {
			continue
		}
		nt := NodeTask{App: svc.Spec.Labels[LabelApp], Replica: svc.Spec.Labels[LabelName], Release: svc.Spec.Labels[LabelRelease]}
		for _, n := range nodes {
			if n.ID == t.NodeID && len(t.Status.PortStatus.Ports) > 0 {
				nt.Addr = net.JoinHostPort(nodeAddress(n), fmt.Sprint(t.Status.PortStatus.Ports[0].PublishedPort))
			}
		}
		byNode[t.NodeID] = append(byNode[t.NodeID], nt)
	}
	out := make([]Node, 0, len(nodes))
	for _, n := range nodes {
		node := Node{
			ID: n.ID, Hostname: n.Description.Hostname, Role: string(n.Spec.Role),
			State: string(n.Status.State), Availability: string(n.Spec.Availability),
			Addr: nodeAddress(n), Engine: n.Description.Engine.EngineVersion,
			Leader: n.ManagerStatus != nil && n.ManagerStatus.Leader,
			Tasks:  byNode[n.ID],
		}
		sort.Slice(node.Tasks, func(i, j int) bool { return node.Tasks[i].Replica < node.Tasks[j].Replica })
		if node.Tasks == nil {
			node.Tasks = []NodeTask{}
		}
		out = append(out, node)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Role != out[j].Role {
			return out[i].Role == string(swarm.NodeRoleManager)
		}
		return out[i].Hostname < out[j].Hostname
	})
	return out, nil
}

// JoinCommand is the command a new host runs to join the swarm as a worker.
func (s *Swarm) JoinCommand(ctx context.Context) (string, error) {
	sw, err := s.cli.SwarmInspect(ctx)
	if err != nil {
		return "", fmt.Errorf("inspect swarm: %w", err)
	}
	info, err := s.cli.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("engine info: %w", err)
	}
	addr := ""
	for _, m := range info.Swarm.RemoteManagers {
		if m.NodeID == info.Swarm.NodeID {
			addr = m.Addr
		}
	}
	if addr == "" && len(info.Swarm.RemoteManagers) > 0 {
		addr = info.Swarm.RemoteManagers[0].Addr
	}
	if addr == "" {
		return "", fmt.Errorf("the swarm reports no manager address")
	}
	return fmt.Sprintf("docker swarm join --token %s %s", sw.JoinTokens.Worker, addr), nil
}

// Capacity is what the largest ready node offers one replica (a task runs
// on one node): its CPUs and memory, each the most any active node has.
func (s *Swarm) Capacity(ctx context.Context) (Capacity, error) {
	nodes, err := s.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return Capacity{}, fmt.Errorf("list nodes: %w", err)
	}
	var c Capacity
	for _, n := range nodes {
		if n.Status.State != swarm.NodeStateReady || n.Spec.Availability != swarm.NodeAvailabilityActive {
			continue
		}
		r := n.Description.Resources
		c.CPUs = max(c.CPUs, int(r.NanoCPUs/1e9))
		c.MemoryBytes = max(c.MemoryBytes, r.MemoryBytes)
	}
	if c.CPUs == 0 || c.MemoryBytes == 0 {
		return s.Docker.Capacity(ctx)
	}
	return c, nil
}
