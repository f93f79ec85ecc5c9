package cli

import (
	"fmt"
	"strings"

	"github.com/plat-paas/plat/api"
)

func cmdNodes(e *env, args []string) error {
	if _, err := e.parse(e.flags(), args, 0, 0); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var nodes []api.Node
	raw, err := c.get(e.ctx, "/api/nodes", &nodes)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	table(e.stdout, nodeRows(nodes))
	return nil
}

// nodeRows is the table of `plat nodes`: one row per node, its replicas
// as NAME at ADDRESS.
func nodeRows(nodes []api.Node) [][]string {
	rows := [][]string{{"HOSTNAME", "ROLE", "STATE", "AVAILABILITY", "ADDRESS", "TASKS"}}
	for _, n := range nodes {
		role := n.Role
		if n.Leader {
			role += " (leader)"
		}
		var tasks []string
		for _, t := range n.Tasks {
			tasks = append(tasks, fmt.Sprintf("%s at %s", t.Replica, t.Addr))
		}
		list := strings.Join(tasks, ", ")
		if list == "" {
			list = "-"
		}
		rows = append(rows, []string{n.Hostname, role, n.State, n.Availability, n.Addr, list})
	}
	return rows
}

func cmdNodesJoinCommand(e *env, args []string) error {
	if _, err := e.parse(e.flags(), args, 0, 0); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var out api.JoinCommand
	raw, err := c.get(e.ctx, "/api/nodes/join-command", &out)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	fmt.Fprintln(e.stdout, "Run this on each new host (its Docker Engine joins the swarm as a worker):")
	fmt.Fprintln(e.stdout, "  "+out.Command)
	return nil
}
