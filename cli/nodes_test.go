package cli

import (
	"slices"
	"testing"

	"github.com/plat-paas/plat/api"
)

func TestNodeRows(t *testing.T) {
	rows := nodeRows([]api.Node{
		{Hostname: "m1", Role: "manager", Leader: true, State: "ready", Availability: "active", Addr: "10.0.0.1",
			Tasks: []api.NodeTask{{App: "a", Replica: "plat-a-v2.1", Release: "2", Addr: "10.0.0.1:30001"}, {Replica: "plat-a-v2.2", Addr: "10.0.0.1:30002"}}},
		{Hostname: "w1", Role: "worker", State: "down", Availability: "active", Addr: "10.0.0.2"},
	})
	want := [][]string{
		{"HOSTNAME", "ROLE", "STATE", "AVAILABILITY", "ADDRESS", "TASKS"},
		{"m1", "manager (leader)", "ready", "active", "10.0.0.1", "plat-a-v2.1 at 10.0.0.1:30001, plat-a-v2.2 at 10.0.0.1:30002"},
		{"w1", "worker", "down", "active", "10.0.0.2", "-"},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("rows:\n%q\nwant\n%q", rows, want)
	}
}
