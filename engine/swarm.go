package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stdcopy"
)

// Swarm mode: every replica plat runs is a Swarm service of one task.
// Services are named after the replica plus a random suffix (Swarm cannot
// rename a service; the replica's name is the LabelName label, which can
// change without restarting the task). The task publishes the app's port
// in host mode at an ephemeral port of whichever node runs it, and the
// service uses DNS round-robin endpoints: this kernel family has no IPVS,
// so the routing mesh and service VIPs do not work, and plat's router
// balances and health-checks the task addresses itself.
const (
	// LabelName carries the replica's name (the service's own name has a
	// random suffix, see above).
	LabelName = "plat.name"
	// LabelImage carries the image ID the replica runs (the service names
	// the registry reference).
	LabelImage = "plat.image"
	// LabelNetwork carries the name of the replica's network (the service
	// names it by ID).
	LabelNetwork = "plat.network"

	// DefaultRegistry is where plat pushes app images in swarm mode: the
	// registry install.sh runs on the manager (see docs/swarm.md).
	DefaultRegistry = "127.0.0.1:5000"
	// taskPollInterval is how often Events looks at the tasks: Swarm
	// sends no event when a task dies on another node.
	taskPollInterval = 500 * time.Millisecond
	// taskStartTimeout bounds the wait for a task to run (a worker pulls
	// the image first).
	taskStartTimeout = 2 * time.Minute
	// taskStopExtra is added to a stop's grace period before Stop gives
	// up waiting for Swarm to take the stop.
	taskStopExtra = 10 * time.Second
	// serviceGoneTimeout bounds the wait for a removed service's tasks to
	// leave its network.
	serviceGoneTimeout = 30 * time.Second
	// taskRestartDelay is Swarm's pause before it replaces a dead task
	// (its default is 5 s; plat wants crashed replicas back soon).
	taskRestartDelay = 500 * time.Millisecond
	// maxServiceName is the longest name Swarm accepts (a DNS label).
	maxServiceName = 63
	// stopGracePeriod is the time a task gets between SIGTERM and SIGKILL.
	stopGracePeriod = 10 * time.Second
)

// ErrNotManager is returned by NewSwarm when the engine is not a manager of
// an active swarm.
var ErrNotManager = errors.New("the Docker Engine is not a swarm manager")

// SwarmOptions configure NewSwarm.
type SwarmOptions struct {
	// Registry is host:port of the registry every node pulls app images
	// from; DefaultRegistry when empty.
	Registry string
}

// Swarm implements Engine on a Docker Swarm cluster. The manager's engine
// (the embedded Docker) builds images, runs one-off containers and keeps
// the local image store; app replicas are services.
type Swarm struct {
	*Docker
	registry string

	mu     sync.Mutex
	pushed map[string]string // image ID → registry reference with digest
	nodes  map[string]string // node ID → address
}

var _ Engine = (*Swarm)(nil)

// NewSwarm checks that d's engine is a swarm manager and returns the swarm
// engine on top of it.
func NewSwarm(ctx context.Context, d *Docker, opts SwarmOptions) (*Swarm, error) {
	info, err := d.cli.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("engine info: %w", err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		return nil, fmt.Errorf("%w (swarm state %q): run `docker swarm init` on this host, or start the daemon without --orchestrator swarm",
			ErrNotManager, info.Swarm.LocalNodeState)
	}
	reg := opts.Registry
	if reg == "" {
		reg = DefaultRegistry
	}
	if _, _, err := net.SplitHostPort(reg); err != nil {
		return nil, fmt.Errorf("registry %q: want host:port: %w", reg, err)
	}
	return &Swarm{Docker: d, registry: reg, pushed: map[string]string{}, nodes: map[string]string{}}, nil
}

// Registry is host:port of the registry app images are pushed to.
func (s *Swarm) Registry() string { return s.registry }

// Build builds the image on the manager and pushes it to the registry, so
// that every node can pull it.
func (s *Swarm) Build(ctx context.Context, buildContext io.Reader, opts BuildOptions, out io.Writer) (string, error) {
	id, err := s.Docker.Build(ctx, buildContext, opts, out)
	if err != nil {
		return "", err
	}
	if _, err := s.push(ctx, id, out); err != nil {
		return "", err
	}
	return id, nil
}

// RemoveImage removes ref and its registry tag from the manager (the
// registry keeps its copy; see docs/swarm.md).
func (s *Swarm) RemoveImage(ctx context.Context, ref string) error {
	if err := s.Docker.RemoveImage(ctx, s.registry+"/"+ref); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return s.Docker.RemoveImage(ctx, ref)
}

// push tags the image for the registry (after its first plat tag) and
// pushes it, once per image ID per daemon; it returns the reference with
// the digest the services pin.
func (s *Swarm) push(ctx context.Context, id string, out io.Writer) (string, error) {
	s.mu.Lock()
	ref, ok := s.pushed[id]
	s.mu.Unlock()
	if ok {
		return ref, nil
	}
	img, err := s.cli.ImageInspect(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("image %s: %w", id, ErrNotFound)
		}
		return "", fmt.Errorf("inspect image %s: %w", id, err)
	}
	target := ""
	for _, t := range img.RepoTags {
		if strings.HasPrefix(t, s.registry+"/") {
			target = t
			break
		}
	}
	if target == "" {
		name := "plat/image:" + strings.TrimPrefix(img.ID, "sha256:")[:12]
		if len(img.RepoTags) > 0 {
			name = img.RepoTags[0] // e.g. plat/myapp:v3
		}
		target = s.registry + "/" + name
		if err := s.cli.ImageTag(ctx, img.ID, target); err != nil {
			return "", fmt.Errorf("tag %s: %w", target, err)
		}
	}
	if out == nil {
		out = io.Discard
	}
	fmt.Fprintf(out, "Pushing %s\n", target)
	// Loopback and --insecure-registry registries need no credentials;
	// the API wants a (here empty) auth header all the same.
	rc, err := s.cli.ImagePush(ctx, target, image.PushOptions{RegistryAuth: "e30="})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", target, err)
	}
	defer rc.Close()
	digest := ""
	dec := json.NewDecoder(rc)
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("push %s: reading engine output: %w", target, err)
		}
		if msg := m.errorMessage(); msg != "" {
			return "", fmt.Errorf("push %s to the registry failed: %s (is the registry at %s running? see docs/swarm.md)", target, msg, s.registry)
		}
		var aux struct{ Digest string }
		if len(m.Aux) > 0 && json.Unmarshal(m.Aux, &aux) == nil && aux.Digest != "" {
			digest = aux.Digest
		}
	}
	if digest == "" {
		return "", fmt.Errorf("push %s: the engine reported no digest", target)
	}
	ref = target + "@" + digest
	s.mu.Lock()
	s.pushed[id] = ref
	s.mu.Unlock()
	return ref, nil
}

// ensureOverlay creates an overlay network for an app's replicas unless it
// exists (a same-named network without plat's labels is refused).
func (s *Swarm) ensureOverlay(ctx context.Context, name string, labels map[string]string) (string, error) {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	nw, err := s.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err == nil {
		if err := checkNetworkLabels(nw, labels); err != nil {
			return "", err
		}
		return nw.ID, nil
	}
	if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspect network %s: %w", name, err)
	}
	all := map[string]string{LabelManaged: "true"}
	maps.Copy(all, labels)
	// Attachable: one-off containers (plat run, the release phase) run on
	// the manager's engine and join the app's network as in plain mode.
	created, err := s.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "overlay", Attachable: true, Labels: all})
	if err != nil {
		return "", fmt.Errorf("create overlay network %s: %w", name, err)
	}
	return created.ID, nil
}

// RemoveNetwork removes an app's overlay network, waiting (bounded) for
// the tasks of its removed services to leave it.
func (s *Swarm) RemoveNetwork(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, serviceGoneTimeout)
	defer cancel()
	for {
		err := s.Docker.RemoveNetwork(ctx, name)
		// Swarm says "network … is in use by task …" while a task holds it.
		if err != nil && !errors.Is(err, ErrNetworkInUse) && strings.Contains(err.Error(), "in use") {
			err = fmt.Errorf("%w: %w", ErrNetworkInUse, err)
		}
		if !errors.Is(err, ErrNetworkInUse) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(taskPollInterval):
		}
	}
}

// Run creates a service of one task for the replica and waits until the
// task runs, so the returned HostAddr is the node's address and the task's
// published port. A task that cannot start (the node cannot pull the
// image, say) is an error and the service is removed; an app that starts
// and exits at once is not: the health check reports it with its output.
func (s *Swarm) Run(ctx context.Context, spec ContainerSpec) (ContainerInfo, error) {
	if spec.Name != "" {
		if cur, err := s.byName(ctx, spec.Name); err != nil {
			return ContainerInfo{}, err
		} else if cur != "" {
			return ContainerInfo{}, fmt.Errorf("create service: %w: %s", ErrNameInUse, spec.Name)
		}
	}
	imageID := spec.Image
	if img, err := s.cli.ImageInspect(ctx, spec.Image); err == nil {
		imageID = img.ID
	}
	ref, err := s.push(ctx, imageID, nil)
	if err != nil {
		return ContainerInfo{}, fmt.Errorf("create service: %w", err)
	}
	svc := serviceSpec(spec, ref, imageID)
	if spec.Network != "" {
		id, err := s.ensureOverlay(ctx, spec.Network, spec.NetworkLabels)
		if err != nil {
			return ContainerInfo{}, err
		}
		svc.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: id}}
	}
	created, err := s.cli.ServiceCreate(ctx, svc, swarm.ServiceCreateOptions{})
	if err != nil {
		return ContainerInfo{}, fmt.Errorf("create service %s: %w", svc.Name, err)
	}
	info, err := s.waitRunning(ctx, created.ID, time.Time{})
	if err != nil {
		s.removeService(context.WithoutCancel(ctx), created.ID)
		return ContainerInfo{}, err
	}
	return info, nil
}

// serviceSpec is the service of one replica: hardened as Docker.Run's
// containers are where Swarm can express it (see docs/swarm.md).
func serviceSpec(spec ContainerSpec, ref, imageID string) swarm.ServiceSpec {
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelName] = spec.Name
	labels[LabelImage] = imageID
	if spec.Network != "" {
		labels[LabelNetwork] = spec.Network
	}
	one := uint64(1)
	grace := stopGracePeriod
	delay := taskRestartDelay
	cs := &swarm.ContainerSpec{
		Image:           ref,
		Env:             spec.Env,
		Args:            spec.Cmd,
		ReadOnly:        spec.ReadOnly,
		StopGracePeriod: &grace,
		CapabilityDrop:  []string{"ALL"},
		// For `docker ps` on the node; plat finds replicas by the
		// service's labels.
		Labels: map[string]string{LabelApp: spec.Labels[LabelApp], LabelName: spec.Name},
	}
	if spec.ReadOnly {
		cs.Mounts = []mount.Mount{{Type: mount.TypeTmpfs, Target: "/tmp", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20}}}
	}
	svc := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: serviceName(spec.Name), Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: cs,
			Resources: &swarm.ResourceRequirements{Limits: &swarm.Limit{
				MemoryBytes: spec.MemoryBytes, NanoCPUs: spec.NanoCPUs, Pids: pidsLimit,
			}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay},
			LogDriver: &swarm.Driver{Name: "json-file", Options: map[string]string{
				"max-size": logMaxSize, "max-file": logMaxFiles,
			}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	if spec.Port > 0 {
		svc.EndpointSpec.Ports = []swarm.PortConfig{{
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(spec.Port), PublishMode: swarm.PortConfigPublishModeHost,
		}}
	}
	return svc
}

// serviceName is a replica's name made a DNS label (what Swarm accepts:
// letters, digits, dashes, at most 63) plus a random suffix: a replaced
// replica's service keeps running under its own name until plat removes it.
func serviceName(name string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := "-" + hex.EncodeToString(b[:])
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, name)
	clean = strings.Trim(clean, "-")
	if clean == "" {
		clean = "plat"
	}
	if max := maxServiceName - len(suffix); len(clean) > max {
		clean = strings.TrimRight(clean[:max], "-")
	}
	return clean + suffix
}

// byName returns the ID of this engine's service of the replica name, or "".
func (s *Swarm) byName(ctx context.Context, name string) (string, error) {
	svcs, err := s.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelName+"="+name))})
	if err != nil {
		return "", fmt.Errorf("list services: %w", err)
	}
	if len(svcs) == 0 {
		return "", nil
	}
	return svcs[0].ID, nil
}

// waitRunning waits until the service's newest task made after since runs
// (or ran: an app that exits at once is reported, not refused), or failed
// to start. The daemon runs on a manager, whose clock stamps the tasks.
func (s *Swarm) waitRunning(ctx context.Context, id string, since time.Time) (ContainerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, taskStartTimeout)
	defer cancel()
	for {
		svc, tasks, err := s.serviceTasks(ctx, id)
		if err != nil {
			return ContainerInfo{}, err
		}
		if t, ok := newestTask(tasks); ok && !t.CreatedAt.Before(since) {
			switch {
			case t.Status.State == swarm.TaskStateRunning && len(t.Status.PortStatus.Ports) > 0 || t.Status.State == swarm.TaskStateRunning && !publishes(svc):
				return s.info(ctx, svc, tasks)
			case t.Status.State == swarm.TaskStateRejected,
				t.Status.State == swarm.TaskStateFailed && (t.Status.ContainerStatus == nil || t.Status.ContainerStatus.ContainerID == ""):
				return ContainerInfo{}, fmt.Errorf("start service %s: task %s: %s", svc.Spec.Name, t.Status.State, firstNonEmpty(t.Status.Err, t.Status.Message))
			case t.Status.State == swarm.TaskStateFailed, t.Status.State == swarm.TaskStateComplete:
				return s.info(ctx, svc, tasks)
			}
		}
		select {
		case <-ctx.Done():
			return ContainerInfo{}, fmt.Errorf("start service %s: no running task after %s: %w", svc.Spec.Name, taskStartTimeout, ctx.Err())
		case <-time.After(taskPollInterval / 5):
		}
	}
}

func publishes(svc swarm.Service) bool {
	return svc.Spec.EndpointSpec != nil && len(svc.Spec.EndpointSpec.Ports) > 0
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}

// serviceTasks inspects a service and lists its tasks.
func (s *Swarm) serviceTasks(ctx context.Context, id string) (swarm.Service, []swarm.Task, error) {
	svc, _, err := s.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		return swarm.Service{}, nil, containerErr("inspect service", id, err)
	}
	tasks, err := s.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
	if err != nil {
		return swarm.Service{}, nil, fmt.Errorf("list tasks of %s: %w", svc.Spec.Name, err)
	}
	return svc, tasks, nil
}

// newestTask is the task Swarm made last for the service's slot.
func newestTask(tasks []swarm.Task) (swarm.Task, bool) {
	if len(tasks) == 0 {
		return swarm.Task{}, false
	}
	return slices.MaxFunc(tasks, func(a, b swarm.Task) int { return a.CreatedAt.Compare(b.CreatedAt) }), true
}

// runningTask is the service's running task, if any.
func runningTask(tasks []swarm.Task) (swarm.Task, bool) {
	for _, t := range tasks {
		if t.Status.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning {
			return t, true
		}
	}
	return swarm.Task{}, false
}

// info describes a replica the way Docker.Inspect describes a container.
func (s *Swarm) info(ctx context.Context, svc swarm.Service, tasks []swarm.Task) (ContainerInfo, error) {
	labels := maps.Clone(svc.Spec.Labels)
	c := ContainerInfo{
		ID:     svc.ID,
		Name:   labels[LabelName],
		Image:  labels[LabelImage],
		Labels: labels,
		State:  "exited",
	}
	if n := labels[LabelNetwork]; n != "" {
		c.Networks = []string{n}
	}
	// Tasks that ended on their own were restarts; Stop's end in shutdown.
	for _, t := range tasks {
		if st := t.Status.State; st == swarm.TaskStateFailed || st == swarm.TaskStateComplete || st == swarm.TaskStateRejected {
			c.Restarts++
		}
	}
	desired := desired(svc)
	if t, ok := runningTask(tasks); ok {
		c.State, c.Running, c.StartedAt = "running", true, t.Status.Timestamp
		if len(t.Status.PortStatus.Ports) > 0 {
			addr, err := s.nodeAddr(ctx, t.NodeID)
			if err != nil {
				return c, err
			}
			c.HostAddr = net.JoinHostPort(addr, strconv.Itoa(int(t.Status.PortStatus.Ports[0].PublishedPort)))
		}
		return c, nil
	}
	if t, ok := newestTask(tasks); ok {
		if cs := t.Status.ContainerStatus; cs != nil {
			c.ExitCode = cs.ExitCode
		}
		c.FinishedAt = t.Status.Timestamp
		if desired > 0 {
			// Swarm replaces the task (restart policy "any").
			c.State = "restarting"
		}
	} else if desired > 0 {
		c.State = "created"
	}
	return c, nil
}

// desired is the number of tasks the service wants (0 or 1).
func desired(svc swarm.Service) uint64 {
	if m := svc.Spec.Mode.Replicated; m != nil && m.Replicas != nil {
		return *m.Replicas
	}
	return 0
}

// nodeAddr is the address a node's published ports are reached at.
func (s *Swarm) nodeAddr(ctx context.Context, nodeID string) (string, error) {
	s.mu.Lock()
	addr, ok := s.nodes[nodeID]
	s.mu.Unlock()
	if ok {
		return addr, nil
	}
	n, _, err := s.cli.NodeInspectWithRaw(ctx, nodeID)
	if err != nil {
		return "", fmt.Errorf("inspect node %s: %w", nodeID, err)
	}
	addr = nodeAddress(n)
	s.mu.Lock()
	s.nodes[nodeID] = addr
	s.mu.Unlock()
	return addr, nil
}

// nodeAddress is the node's advertised address; a manager may report
// 0.0.0.0 as its status address, its manager address is right then.
func nodeAddress(n swarm.Node) string {
	addr := n.Status.Addr
	if ip := net.ParseIP(addr); (ip == nil || ip.IsUnspecified()) && n.ManagerStatus != nil {
		if h, _, err := net.SplitHostPort(n.ManagerStatus.Addr); err == nil {
			addr = h
		}
	}
	return addr
}

// Inspect describes the replica's service and its current task.
func (s *Swarm) Inspect(ctx context.Context, id string) (ContainerInfo, error) {
	svc, tasks, err := s.serviceTasks(ctx, id)
	if err != nil {
		return ContainerInfo{}, err
	}
	return s.info(ctx, svc, tasks)
}

// SetRestart does nothing: the service restarts its task from the start
// (changing the policy would make Swarm replace the running task), and a
// restart during the health check counts as a failure (Inspect's Restarts).
func (s *Swarm) SetRestart(context.Context, string) error { return nil }

// Rename changes the replica's name label; the service keeps its name.
func (s *Swarm) Rename(ctx context.Context, id, name string) error {
	return s.updateService(ctx, id, func(spec *swarm.ServiceSpec) { spec.Labels[LabelName] = name })
}

// updateService applies change to the service's spec, retrying when
// another update came between the read and the write.
func (s *Swarm) updateService(ctx context.Context, id string, change func(*swarm.ServiceSpec)) error {
	for attempt := 0; ; attempt++ {
		svc, _, err := s.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			return containerErr("inspect service", id, err)
		}
		if svc.Spec.Labels == nil {
			svc.Spec.Labels = map[string]string{}
		}
		change(&svc.Spec)
		_, err = s.cli.ServiceUpdate(ctx, id, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{})
		if err == nil {
			return nil
		}
		if attempt < 3 && strings.Contains(err.Error(), "update out of sequence") {
			continue
		}
		return containerErr("update service", id, err)
	}
}

// scale sets the service's replica count (0 or 1).
func (s *Swarm) scale(ctx context.Context, id string, n uint64) error {
	return s.updateService(ctx, id, func(spec *swarm.ServiceSpec) {
		spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n}
	})
}

// Start runs the replica's task again and waits until it runs.
func (s *Swarm) Start(ctx context.Context, id string) error {
	if info, err := s.Inspect(ctx, id); err == nil && info.Running {
		return nil
	}
	// Scaling down deletes the slot's task, but one that failed before
	// stays: only a task made for this start counts.
	since := time.Now()
	if err := s.scale(ctx, id, 1); err != nil {
		return err
	}
	_, err := s.waitRunning(ctx, id, since)
	return err
}

// Pause is not supported in swarm mode (a task's container is on any
// node): sleeping apps go cold at once and there are no standbys.
func (s *Swarm) Pause(context.Context, string) error {
	return fmt.Errorf("pause a replica in swarm mode: %w", errors.ErrUnsupported)
}

// Unpause is not supported in swarm mode (see Pause).
func (s *Swarm) Unpause(context.Context, string) error {
	return fmt.Errorf("unpause a replica in swarm mode: %w", errors.ErrUnsupported)
}

// Stop scales the service to no task. It returns once Swarm has told the
// task to stop, not when the container has: an app's task on an overlay
// network first leaves the service's DNS and waits for gossip to converge
// (2 s inside Docker), and plat has already drained it. The grace period
// before SIGKILL is the service's (stopGracePeriod), not timeout.
func (s *Swarm) Stop(ctx context.Context, id string, timeout time.Duration) error {
	if err := s.scale(ctx, id, 0); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, max(timeout, stopGracePeriod)+taskStopExtra)
	defer cancel()
	for {
		_, tasks, err := s.serviceTasks(ctx, id)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(tasks, func(t swarm.Task) bool {
			return t.DesiredState == swarm.TaskStateRunning && !taskEnded(t.Status.State)
		}) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stop service %s: its task was not told to stop: %w", id, ctx.Err())
		case <-time.After(taskPollInterval / 5):
		}
	}
}

func taskEnded(st swarm.TaskState) bool {
	switch st {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed,
		swarm.TaskStateRejected, swarm.TaskStateOrphaned, swarm.TaskStateRemove:
		return true
	}
	return false
}

// Remove removes the replica's service (its task ends in the background);
// a one-off container ID is removed as a container.
func (s *Swarm) Remove(ctx context.Context, id string) error {
	err := s.cli.ServiceRemove(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return s.Docker.Remove(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("remove service %s: %w", id, err)
	}
	return nil
}

func (s *Swarm) removeService(ctx context.Context, id string) {
	rctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	_ = s.cli.ServiceRemove(rctx, id)
}

// List returns the replicas (services) and one-off containers (on the
// manager) carrying all the given labels.
func (s *Swarm) List(ctx context.Context, labels map[string]string) ([]ContainerInfo, error) {
	out, err := s.Docker.List(ctx, labels)
	if err != nil {
		return nil, err
	}
	if labels[LabelRole] == RoleRun {
		return out, nil
	}
	svcs, tasks, err := s.services(ctx, labels)
	if err != nil {
		return nil, err
	}
	for _, svc := range svcs {
		info, err := s.info(ctx, svc, tasks[svc.ID])
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// services lists the services carrying labels and their tasks by service.
func (s *Swarm) services(ctx context.Context, labels map[string]string) ([]swarm.Service, map[string][]swarm.Task, error) {
	f := filters.NewArgs()
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	svcs, err := s.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		return nil, nil, fmt.Errorf("list services: %w", err)
	}
	byService := map[string][]swarm.Task{}
	if len(svcs) == 0 {
		return svcs, byService, nil
	}
	tf := filters.NewArgs()
	for _, svc := range svcs {
		tf.Add("service", svc.ID)
	}
	tasks, err := s.cli.TaskList(ctx, swarm.TaskListOptions{Filters: tf})
	if err != nil {
		return nil, nil, fmt.Errorf("list tasks: %w", err)
	}
	for _, t := range tasks {
		byService[t.ServiceID] = append(byService[t.ServiceID], t)
	}
	return svcs, byService, nil
}

// Logs writes the replica's output from its tasks on any node, or a
// one-off container's.
func (s *Swarm) Logs(ctx context.Context, id string, tail int, follow bool, w io.Writer) error {
	return s.serviceLogs(ctx, id, container.LogsOptions{Follow: follow}, tail, w, func() error {
		return s.Docker.Logs(ctx, id, tail, follow, w)
	})
}

// TimedLogs is Logs with timestamps, from since on.
func (s *Swarm) TimedLogs(ctx context.Context, id string, since time.Time, tail int, follow bool, w io.Writer) error {
	opts := container.LogsOptions{Follow: follow, Timestamps: true}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	return s.serviceLogs(ctx, id, opts, tail, w, func() error {
		return s.Docker.TimedLogs(ctx, id, since, tail, follow, w)
	})
}

func (s *Swarm) serviceLogs(ctx context.Context, id string, opts container.LogsOptions, tail int, w io.Writer, notService func() error) error {
	if _, _, err := s.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{}); cerrdefs.IsNotFound(err) {
		return notService()
	} else if err != nil {
		return containerErr("logs", id, err)
	}
	opts.Tail = "all"
	if tail >= 0 {
		opts.Tail = strconv.Itoa(tail)
	}
	opts.ShowStdout, opts.ShowStderr = true, true
	rc, err := s.cli.ServiceLogs(ctx, id, opts)
	if err != nil {
		if opts.Follow && ctx.Err() != nil {
			return nil
		}
		return containerErr("logs", id, err)
	}
	defer rc.Close()
	sw := &syncWriter{w: w}
	stdout, stderr := &lineWriter{dst: sw}, &lineWriter{dst: sw}
	_, err = stdcopy.StdCopy(stdout, stderr, rc)
	ferr := errors.Join(stdout.Flush(), stderr.Flush())
	if err != nil {
		if opts.Follow && ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("logs %s: %w", id, err)
	}
	return ferr
}

// Events reports replicas' task changes as container events: a running
// task that ends is a die, a new running task a start, a service that
// went a destroy. Swarm has no event for a task on another node, so it
// polls the tasks (taskPollInterval); it returns an error when the manager
// stops answering.
func (s *Swarm) Events(ctx context.Context, labels map[string]string, fn func(ContainerEvent)) error {
	type seen struct {
		running string // running task ID, "" when none
		labels  map[string]string
		stopped bool // scaled to no task
	}
	var prev map[string]seen
	tick := time.NewTicker(taskPollInterval)
	defer tick.Stop()
	for {
		svcs, tasks, err := s.services(ctx, labels)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("engine events: %w", err)
		}
		now := make(map[string]seen, len(svcs))
		for _, svc := range svcs {
			cur := seen{labels: svc.Spec.Labels, stopped: desired(svc) == 0}
			if t, ok := runningTask(tasks[svc.ID]); ok {
				cur.running = t.ID
			}
			now[svc.ID] = cur
			if prev == nil {
				continue
			}
			was := prev[svc.ID]
			// A task ended by Stop (no task wanted) is no crash to report:
			// the poll may see it after a wake already took the lock.
			if was.running != "" && was.running != cur.running && !cur.stopped {
				e := ContainerEvent{ID: svc.ID, Action: ActionDie, Labels: cur.labels, Time: time.Now()}
				for _, t := range tasks[svc.ID] {
					if t.ID == was.running && t.Status.ContainerStatus != nil {
						e.ExitCode = t.Status.ContainerStatus.ExitCode
					}
				}
				fn(e)
			}
			if cur.running != "" && cur.running != was.running {
				fn(ContainerEvent{ID: svc.ID, Action: ActionStart, Labels: cur.labels, Time: time.Now()})
			}
		}
		for id, was := range prev {
			if _, ok := now[id]; !ok {
				if was.running != "" {
					fn(ContainerEvent{ID: id, Action: ActionDie, Labels: was.labels, Time: time.Now()})
				}
				fn(ContainerEvent{ID: id, Action: ActionDestroy, Labels: was.labels, Time: time.Now()})
			}
		}
		prev = now
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
