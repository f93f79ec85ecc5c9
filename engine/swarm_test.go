package engine

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plat-paas/plat/internal/swarmtest"
)

// TestNewSwarmRefusesPlainEngine: the machine's engine is no swarm manager,
// and swarm mode says so instead of failing at the first deploy.
func TestNewSwarmRefusesPlainEngine(t *testing.T) {
	d := testDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := NewSwarm(ctx, d, SwarmOptions{}); !errors.Is(err, ErrNotManager) {
		t.Fatalf("NewSwarm on a plain engine: got %v, want ErrNotManager", err)
	}
}

// eventLog collects a Swarm's events.
type eventLog struct {
	mu sync.Mutex
	ev []ContainerEvent
}

func (l *eventLog) add(e ContainerEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, e)
}

func (l *eventLog) count(id, action string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.ev {
		if e.ID == id && e.Action == action {
			n++
		}
	}
	return n
}

// wait waits until an event of action for id arrived after the first skip
// ones of that kind.
func (l *eventLog) wait(t *testing.T, id, action string, n int) ContainerEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		seen := 0
		for _, e := range l.ev {
			if e.ID == id && e.Action == action {
				seen++
				if seen == n {
					l.mu.Unlock()
					return e
				}
			}
		}
		l.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s event #%d for %s; events: %+v", action, n, id, l.ev)
	return ContainerEvent{}
}

// TestSwarm runs a replica as a service on a single-node swarm of its own
// engine, with the registry beside it: the image is pushed and pinned by
// digest, the task's host-mode port answers at the node's address, a
// killed task is replaced and reported (die, start) with its new address,
// logs come from the service, stop/start/rename/remove behave as the
// deployer expects of a container.
func TestSwarm(t *testing.T) {
	se := swarmtest.Start(t)
	t.Setenv("DOCKER_HOST", se.Host)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, err := NewDocker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s, err := NewSwarm(ctx, d, SwarmOptions{Registry: se.Registry})
	if err != nil {
		t.Fatal(err)
	}

	// A replica gets at most what one node has: here the only node, this host.
	if got, err := s.Capacity(ctx); err != nil || got.CPUs < 1 || got.MemoryBytes < 64<<20 {
		t.Fatalf("capacity %+v, %v", got, err)
	} else if host, _ := d.Capacity(ctx); got != host {
		t.Errorf("capacity of the one-node swarm %+v, want the host's %+v", got, host)
	}

	var out safeBuffer
	id, err := s.Build(ctx, makeTar(t,
		tarFile{name: "Dockerfile", data: []byte(helloDockerfile)},
		tarFile{name: "app", data: helloBinary(t), mode: 0o755},
		tarFile{name: "note.txt", data: []byte("swarm")},
	), BuildOptions{Tags: []string{"plat/swt:v1"}, Labels: map[string]string{LabelApp: "swt"}}, &out)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Pushing "+se.Registry+"/plat/swt:v1") {
		t.Fatalf("build output does not show the push:\n%s", out.String())
	}

	events := &eventLog{}
	evCtx, stopEvents := context.WithCancel(ctx)
	evDone := make(chan error, 1)
	labels := map[string]string{LabelManaged: "true", LabelInstance: "swt"}
	go func() { evDone <- s.Events(evCtx, labels, events.add) }()
	defer func() {
		stopEvents()
		if err := <-evDone; err != nil {
			t.Errorf("Events: %v", err)
		}
	}()

	spec := ContainerSpec{
		Name: "swt-web-1", Image: id, Port: 8080,
		Env:     []string{"GREETING=swarm"},
		Labels:  map[string]string{LabelManaged: "true", LabelInstance: "swt", LabelApp: "swt", LabelRelease: "1", LabelRole: RoleApp},
		Network: "swt-net", NetworkLabels: map[string]string{LabelInstance: "swt", LabelApp: "swt"},
		MemoryBytes: 64 << 20, ReadOnly: true,
	}
	c, err := s.Run(ctx, spec)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !c.Running || c.Name != "swt-web-1" || c.Image != id || !strings.HasPrefix(c.HostAddr, "127.0.0.1:") ||
		len(c.Networks) != 1 || c.Networks[0] != "swt-net" {
		t.Fatalf("run returned %+v", c)
	}
	if got := httpGet(t, ctx, "http://"+c.HostAddr+"/"); !strings.Contains(got, "hello swarm") {
		t.Fatalf("task answered %q", got)
	}
	svcImage, err := se.Docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", c.ID)
	if err != nil || !regexp.MustCompile(`^`+regexp.QuoteMeta(se.Registry)+`/plat/swt:v1@sha256:[0-9a-f]{64}$`).MatchString(svcImage) {
		t.Fatalf("service image %q (%v), want the registry reference pinned by digest", svcImage, err)
	}
	if _, err := s.Run(ctx, spec); !errors.Is(err, ErrNameInUse) {
		t.Fatalf("second run of the same name: %v, want ErrNameInUse", err)
	}
	events.wait(t, c.ID, ActionStart, 1)

	list, err := s.List(ctx, map[string]string{LabelInstance: "swt", LabelApp: "swt"})
	if err != nil || len(list) != 1 || list[0].ID != c.ID || list[0].HostAddr != c.HostAddr {
		t.Fatalf("list: %+v, %v", list, err)
	}

	var logs safeBuffer
	if err := s.Logs(ctx, c.ID, -1, false, &logs); err != nil || !strings.Contains(logs.String(), "hello-stdout listening on 8080") ||
		!strings.Contains(logs.String(), "hello-stderr ready") {
		t.Fatalf("logs: %v\n%s", err, logs.String())
	}
	var timed safeBuffer
	if err := s.TimedLogs(ctx, c.ID, time.Time{}, 1, false, &timed); err != nil ||
		!regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z `).MatchString(timed.String()) {
		t.Fatalf("timed logs: %v\n%q", err, timed.String())
	}

	// A task that dies is replaced by Swarm; the events say so and the
	// new task's address answers.
	ctr, err := se.Docker("ps", "-q", "--filter", "label="+LabelName+"=swt-web-1")
	if err != nil || ctr == "" {
		t.Fatalf("task container: %q %v", ctr, err)
	}
	if out, err := se.Docker("kill", ctr); err != nil {
		t.Fatalf("kill: %v %s", err, out)
	}
	events.wait(t, c.ID, ActionDie, 1)
	events.wait(t, c.ID, ActionStart, 2)
	again, err := s.Inspect(ctx, c.ID)
	if err != nil || !again.Running || again.Restarts != 1 || again.HostAddr == "" {
		t.Fatalf("after the kill: %+v, %v", again, err)
	}
	if got := httpGet(t, ctx, "http://"+again.HostAddr+"/"); !strings.Contains(got, "hello swarm") {
		t.Fatalf("replacement task answered %q", got)
	}

	if err := s.Rename(ctx, c.ID, "swt-web-1.old"); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Inspect(ctx, c.ID); err != nil || info.Name != "swt-web-1.old" || info.HostAddr != again.HostAddr {
		t.Fatalf("after rename (the task must keep running): %+v, %v", info, err)
	}

	if err := s.Stop(ctx, c.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Inspect(ctx, c.ID); err != nil || info.Running || info.State != "exited" {
		t.Fatalf("after stop: %+v, %v", info, err)
	}
	// Stop's end of the task is not reported as a crash: the poll may
	// see it late, after a wake started the replica again.
	time.Sleep(3 * taskPollInterval)
	if n := events.count(c.ID, ActionDie); n != 1 {
		t.Fatalf("%d die events after Stop, want only the kill's", n)
	}
	if err := s.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	woke, err := s.Inspect(ctx, c.ID)
	if err != nil || !woke.Running || woke.Restarts != 1 {
		t.Fatalf("after start: %+v, %v", woke, err)
	}
	httpGet(t, ctx, "http://"+woke.HostAddr+"/")

	// An app that exits at once is no start error: the health check
	// reports it (not running, or restarted) with its output.
	crash := spec
	crash.Name, crash.Env = "swt-crash-1", []string{"EXIT_CODE=3"}
	cc, err := s.Run(ctx, crash)
	if err != nil {
		t.Fatalf("run crashing app: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := s.Inspect(ctx, cc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !info.Running || info.Restarts > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("crashing app still reported as running and never restarted: %+v", info)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var clog safeBuffer
	if err := s.Logs(ctx, cc.ID, 5, false, &clog); err != nil || !strings.Contains(clog.String(), "exiting with 3") {
		t.Fatalf("crash logs: %v %q", err, clog.String())
	}

	for _, id := range []string{c.ID, cc.ID} {
		if err := s.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Inspect(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("inspect after remove: %v, want ErrNotFound", err)
		}
	}
	events.wait(t, c.ID, ActionDestroy, 1)
	if err := s.RemoveNetwork(ctx, "swt-net"); err != nil {
		t.Fatalf("remove network after its services: %v", err)
	}
	// The nodes remove a service's task containers shortly after it.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		err := s.RemoveImage(ctx, "plat/swt:v1")
		if err == nil {
			break
		}
		if !errors.Is(err, ErrImageInUse) || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	if ok, _ := s.ImageExists(ctx, se.Registry+"/plat/swt:v1"); ok {
		t.Fatal("the registry tag outlived RemoveImage")
	}
}

func TestServiceName(t *testing.T) {
	tests := []struct{ in, prefix string }{
		{"plat-myapp-v3.1", "plat-myapp-v3-1-"},
		{"", "plat-"},
		{"a.replaced-xyz", "a-replaced-xyz-"},
		{strings.Repeat("x", 80), strings.Repeat("x", 54) + "-"},
	}
	for _, tt := range tests {
		got := serviceName(tt.in)
		if !strings.HasPrefix(got, tt.prefix) || len(got) != len(tt.prefix)+8 || len(got) > maxServiceName ||
			!regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]*$`).MatchString(got) {
			t.Errorf("serviceName(%q) = %q, want %q + 8 hex digits, a DNS label", tt.in, got, tt.prefix)
		}
	}
}
