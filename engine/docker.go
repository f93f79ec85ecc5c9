package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
)

// ErrImageInUse is wrapped by RemoveImage when a container (running or
// stopped) still uses the image.
var ErrImageInUse = errors.New("image is in use by a container")

// ErrNameInUse is wrapped by Run when a container of the same name exists.
var ErrNameInUse = errors.New("container name is in use")

// ErrNetworkInUse is wrapped by RemoveNetwork while a container is attached.
var ErrNetworkInUse = errors.New("network has containers attached")

// ErrNetworkNotOurs is wrapped by Run when a network of the name it wants
// exists without the labels plat gave it: plat does not join a network it
// did not make.
var ErrNetworkNotOurs = errors.New("network exists but was not made by plat for this app")

// Container hardening defaults applied by Run.
const (
	pidsLimit     = 512
	logMaxSize    = "10m"
	logMaxFiles   = "3"
	publishHostIP = "127.0.0.1"
	// tmpfsOptions are Docker's own defaults for --tmpfs plus a size, for
	// the /tmp of read-only containers; it counts against the memory limit.
	tmpfsOptions = "rw,noexec,nosuid,nodev,size=64m"
)

// cleanupTimeout bounds the removal of a failed build's layers, which runs
// after the build's own context may have been cancelled.
const cleanupTimeout = 30 * time.Second

// Docker implements Engine with the Docker Engine API.
type Docker struct {
	cli *client.Client
	// netMu serialises ensureNetwork: Docker 20.10's duplicate-name check
	// is not atomic, so concurrent creates can make same-named networks.
	netMu sync.Mutex
	// networks already known to exist: a deploy skips the inspect call
	// (Run forgets a network the engine says is missing).
	networks map[string]bool
	// appSubnets is the pool new networks take their subnet from.
	appSubnets netip.Prefix
	// routes lists the host's routes (hostRoutes; a test adds its own).
	routes func() ([]netip.Prefix, error)
}

// DockerOption configures NewDocker.
type DockerOption func(*Docker) error

// WithAppSubnets makes the networks Run creates take their subnet (a /26,
// AppSubnetBits) from pool instead of DefaultAppSubnets.
func WithAppSubnets(pool netip.Prefix) DockerOption {
	return func(d *Docker) error {
		if err := checkAppSubnets(pool); err != nil {
			return err
		}
		d.appSubnets = pool
		return nil
	}
}

var _ Engine = (*Docker)(nil)

// NewDocker connects to the Docker Engine configured by the environment
// (DOCKER_HOST etc., default unix:///var/run/docker.sock), negotiates the API
// version and checks that the engine answers.
func NewDocker(ctx context.Context, opts ...DockerOption) (*Docker, error) {
	d := &Docker{appSubnets: defaultAppSubnets, routes: hostRoutes}
	for _, o := range opts {
		if err := o(d); err != nil {
			return nil, err
		}
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	d.cli = cli
	if err := d.Ping(ctx); err != nil {
		_ = cli.Close()
		return nil, err
	}
	return d, nil
}

// Close releases the client's resources.
func (d *Docker) Close() error { return d.cli.Close() }

// Ping checks that the engine answers.
func (d *Docker) Ping(ctx context.Context) error {
	if _, err := d.cli.Ping(ctx); err != nil {
		return fmt.Errorf("cannot reach the Docker Engine at %s: is dockerd running? (%w)", d.cli.DaemonHost(), err)
	}
	return nil
}

// buildMessage is one message of the JSON stream ImageBuild answers with.
type buildMessage struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Progress    string `json:"progress"`
	ID          string `json:"id"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// Build builds an image with the classic builder from a tar build context.
func (d *Docker) Build(ctx context.Context, buildContext io.Reader, opts BuildOptions, out io.Writer) (string, error) {
	if out == nil {
		out = io.Discard
	}
	resp, err := d.cli.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:        opts.Tags,
		Labels:      opts.Labels,
		Remove:      true,
		ForceRemove: true,
		Dockerfile:  "Dockerfile",
		Version:     build.BuilderV1,
		BuildArgs:   buildArgs(opts.BuildArgs),
		Target:      opts.Target,
	})
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	defer resp.Body.Close()

	var imageID string
	var layers []string // the steps' images, to remove if the build fails
	failed := func(err error) (string, error) {
		d.removeUntagged(layers)
		return "", err
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if ctx.Err() != nil {
				return failed(fmt.Errorf("build: %w", ctx.Err()))
			}
			return failed(fmt.Errorf("build: reading engine output: %w", err))
		}
		if msg := m.errorMessage(); msg != "" {
			return failed(fmt.Errorf("build failed: %s", msg))
		}
		if m.Stream != "" {
			if id, ok := strings.CutPrefix(strings.TrimSpace(m.Stream), "---> "); ok && stepImage.MatchString(id) {
				layers = append(layers, id)
			}
			if _, err := io.WriteString(out, m.Stream); err != nil {
				return "", fmt.Errorf("build: writing output: %w", err)
			}
		}
		if m.Status != "" {
			line := m.Status
			if m.ID != "" {
				line = m.ID + ": " + line
			}
			if m.Progress != "" {
				line += " " + m.Progress
			}
			if _, err := io.WriteString(out, line+"\n"); err != nil {
				return "", fmt.Errorf("build: writing output: %w", err)
			}
		}
		if len(m.Aux) > 0 {
			var aux struct {
				ID string `json:"ID"`
			}
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				imageID = aux.ID
			}
		}
	}
	if imageID != "" {
		return imageID, nil
	}
	if len(opts.Tags) == 0 {
		return "", errors.New("build: the engine reported no image ID and the build has no tag to look it up")
	}
	img, err := d.cli.ImageInspect(ctx, opts.Tags[0])
	if err != nil {
		return "", fmt.Errorf("build: inspecting %s: %w", opts.Tags[0], err)
	}
	return img.ID, nil
}

// buildArgs is args as ImageBuild takes them.
func buildArgs(args map[string]string) map[string]*string {
	if len(args) == 0 {
		return nil
	}
	m := make(map[string]*string, len(args))
	for k, v := range args {
		m[k] = &v
	}
	return m
}

// stepImage is the image ID the classic builder prints after each step
// ("---> 3b2f4a9c1d0e").
var stepImage = regexp.MustCompile(`^[0-9a-f]{12,64}$`)

// removeUntagged removes, newest first, the step images of a failed build
// that nothing else uses: the classic builder keeps them as cache, and each
// failed push would otherwise leave untagged layers behind for good. A
// tagged image (the FROM base) and a layer that other images build on
// (cache of a successful build) are kept; the engine refuses the latter.
func (d *Docker) removeUntagged(ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	for _, id := range slices.Backward(ids) {
		img, err := d.cli.ImageInspect(ctx, id)
		if err != nil || len(img.RepoTags) > 0 {
			continue
		}
		_, _ = d.cli.ImageRemove(ctx, id, image.RemoveOptions{PruneChildren: false})
	}
}

func (m *buildMessage) errorMessage() string {
	if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
		return strings.TrimSpace(m.ErrorDetail.Message)
	}
	return strings.TrimSpace(m.Error)
}

// ImageExists reports whether an image (ID or tag) is present.
func (d *Docker) ImageExists(ctx context.Context, ref string) (bool, error) {
	if _, err := d.cli.ImageInspect(ctx, ref); err != nil {
		if cerrdefs.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return true, nil
}

// RemoveImage removes an image (and its untagged parents) without forcing.
// It returns ErrNotFound when the image is gone already and an error wrapping
// ErrImageInUse when a container still uses it.
func (d *Docker) RemoveImage(ctx context.Context, ref string) error {
	_, err := d.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true, Force: false})
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("image %s: %w", ref, ErrNotFound)
	case cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "container"):
		return fmt.Errorf("remove image %s: %w: %w", ref, ErrImageInUse, err)
	default:
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
}

// ensureNetwork creates a bridge network called name, labelled with labels
// and LabelManaged, unless it exists. An existing network must carry labels:
// a same-named network made by someone else is refused (ErrNetworkNotOurs).
// Inter-container traffic stays on inside the network (the replicas of one
// app may talk to each other); Docker's isolation rules drop traffic between
// two bridge networks, which keeps apps apart.
func (d *Docker) ensureNetwork(ctx context.Context, name string, labels map[string]string) error {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	if d.networks[name] {
		return nil
	}
	nw, err := d.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err == nil {
		if err := checkNetworkLabels(nw, labels); err != nil {
			return err
		}
		d.rememberNetwork(name, true)
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect network %s: %w", name, err)
	}
	all := map[string]string{LabelManaged: "true"}
	maps.Copy(all, labels)
	var taken []netip.Prefix // picked, then refused by Docker as overlapping
	for attempt := 1; ; attempt++ {
		subnet, err := d.freeAppSubnet(ctx, taken)
		if err != nil {
			return fmt.Errorf("create network %s: %w", name, err)
		}
		_, err = d.cli.NetworkCreate(ctx, name, network.CreateOptions{
			Driver: "bridge",
			Labels: all,
			IPAM: &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{
				Subnet:  subnet.String(),
				Gateway: subnet.Addr().Next().String(),
			}}},
		})
		if err == nil {
			d.rememberNetwork(name, true)
			return nil
		}
		// Someone else may have created it in the meantime.
		if nw, ierr := d.cli.NetworkInspect(ctx, name, network.InspectOptions{}); ierr == nil {
			if err := checkNetworkLabels(nw, labels); err != nil {
				return err
			}
			d.rememberNetwork(name, true)
			return nil
		}
		// Or made a network on the subnet since plat listed them.
		if strings.Contains(strings.ToLower(err.Error()), "overlap") && attempt < maxSubnetAttempts {
			taken = append(taken, subnet)
			continue
		}
		return fmt.Errorf("create network %s on %s: %w", name, subnet, err)
	}
}

// freeAppSubnet picks the first app subnet of the pool that overlaps no
// Docker network, no host route and none of taken. Docker checks an
// explicit subnet against its own networks only, not the host's routes
// (a VPN, a LAN on 10.x), which a bridge on the same range would hijack.
// netMu must be held.
func (d *Docker) freeAppSubnet(ctx context.Context, taken []netip.Prefix) (netip.Prefix, error) {
	nets, err := d.cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("list networks: %w", err)
	}
	used := slices.Clone(taken)
	for _, nw := range nets {
		for _, c := range nw.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil {
				used = append(used, p)
			}
		}
	}
	routes, err := d.routes()
	if err != nil {
		return netip.Prefix{}, err
	}
	used = append(used, routes...)
	subnet, ok := freeSubnet(d.appSubnets, AppSubnetBits, used)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("%w %s: every /%d in it is used by a Docker network or overlaps a host route; give plat a wider or another range with plat daemon --app-subnets (e.g. %s)",
			ErrSubnetPoolFull, d.appSubnets, AppSubnetBits, widerPool(d.appSubnets))
	}
	return subnet, nil
}

// widerPool suggests a pool twice the size of p.
func widerPool(p netip.Prefix) netip.Prefix {
	if p.Bits() <= 8 {
		return p
	}
	return netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked()
}

// checkNetworkLabels reports ErrNetworkNotOurs unless nw carries labels.
func checkNetworkLabels(nw network.Inspect, labels map[string]string) error {
	for k, v := range labels {
		if nw.Labels[k] != v {
			return fmt.Errorf("network %s (label %s=%q, want %q): %w; remove or rename it", nw.Name, k, nw.Labels[k], v, ErrNetworkNotOurs)
		}
	}
	return nil
}

// RemoveNetwork removes the network called name.
func (d *Docker) RemoveNetwork(ctx context.Context, name string) error {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	delete(d.networks, name)
	err := d.cli.NetworkRemove(ctx, name)
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("network %s: %w", name, ErrNotFound)
	case strings.Contains(err.Error(), "active endpoints"):
		return fmt.Errorf("remove network %s: %w: %w", name, ErrNetworkInUse, err)
	default:
		return fmt.Errorf("remove network %s: %w", name, err)
	}
}

// Capacity reports the engine host's CPUs and memory.
func (d *Docker) Capacity(ctx context.Context) (Capacity, error) {
	info, err := d.cli.Info(ctx)
	if err != nil {
		return Capacity{}, fmt.Errorf("engine info: %w", err)
	}
	return Capacity{CPUs: info.NCPU, MemoryBytes: info.MemTotal}, nil
}

// rememberNetwork records whether a network exists; netMu must be held.
func (d *Docker) rememberNetwork(name string, exists bool) {
	if d.networks == nil {
		d.networks = map[string]bool{}
	}
	d.networks[name] = exists
}

// Run creates and starts a hardened container: all capabilities dropped,
// no-new-privileges, a PID limit, memory and CPU limits, bounded json-file
// logs, no mounts (but /tmp of a read-only one), no restart policy, and
// spec.Port published on 127.0.0.1 at an ephemeral port.
func (d *Docker) Run(ctx context.Context, spec ContainerSpec) (ContainerInfo, error) {
	cfg, hc := hardened(spec)
	if spec.Port > 0 {
		p, err := nat.NewPort("tcp", strconv.Itoa(spec.Port))
		if err != nil {
			return ContainerInfo{}, fmt.Errorf("port %d: %w", spec.Port, err)
		}
		cfg.ExposedPorts = nat.PortSet{p: struct{}{}}
		hc.PortBindings = nat.PortMap{p: []nat.PortBinding{{HostIP: publishHostIP, HostPort: ""}}}
	}
	id, err := d.create(ctx, spec, cfg, hc)
	if err != nil {
		return ContainerInfo{}, err
	}
	if err := d.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		d.removeQuietly(ctx, id)
		return ContainerInfo{}, fmt.Errorf("start container: %w", err)
	}
	return d.Inspect(ctx, id)
}

// hardened is the configuration every container plat runs gets (see Run),
// apps' replicas and one-off containers alike.
func hardened(spec ContainerSpec) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image:  spec.Image,
		Env:    spec.Env,
		Labels: spec.Labels,
		Cmd:    spec.Cmd,
	}
	pids := int64(pidsLimit)
	hc := &container.HostConfig{
		Resources: container.Resources{
			Memory:    spec.MemoryBytes,
			NanoCPUs:  spec.NanoCPUs,
			PidsLimit: &pids,
		},
		ReadonlyRootfs: spec.ReadOnly,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		Privileged:     false,
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		LogConfig: container.LogConfig{
			Type:   "json-file",
			Config: map[string]string{"max-size": logMaxSize, "max-file": logMaxFiles},
		},
	}
	if spec.ReadOnly {
		hc.Tmpfs = map[string]string{"/tmp": tmpfsOptions}
	}
	if spec.Network != "" {
		hc.NetworkMode = container.NetworkMode(spec.Network)
	}
	return cfg, hc
}

// create creates (does not start) a container on spec's network, which it
// makes when missing.
func (d *Docker) create(ctx context.Context, spec ContainerSpec, cfg *container.Config, hc *container.HostConfig) (string, error) {
	if spec.Network != "" {
		if err := d.ensureNetwork(ctx, spec.Network, spec.NetworkLabels); err != nil {
			return "", err
		}
	}
	created, err := d.cli.ContainerCreate(ctx, cfg, hc, nil, nil, spec.Name)
	if err != nil && spec.Network != "" && cerrdefs.IsNotFound(err) && strings.Contains(err.Error(), "network") {
		// Removed behind plat's back since it was last seen: make it again.
		d.netMu.Lock()
		d.rememberNetwork(spec.Network, false)
		d.netMu.Unlock()
		if err := d.ensureNetwork(ctx, spec.Network, spec.NetworkLabels); err != nil {
			return "", err
		}
		created, err = d.cli.ContainerCreate(ctx, cfg, hc, nil, nil, spec.Name)
	}
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("create container: image %s: %w", spec.Image, ErrNotFound)
		}
		if cerrdefs.IsConflict(err) {
			return "", fmt.Errorf("create container: %w: %w", ErrNameInUse, err)
		}
		return "", fmt.Errorf("create container: %w", err)
	}
	return created.ID, nil
}

// removeQuietly force-removes a container, even when ctx (what made the
// caller give up) has ended.
func (d *Docker) removeQuietly(ctx context.Context, id string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = d.cli.ContainerRemove(rctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
}

// oneOffStopTimeout is how long a one-off container whose caller went away
// (Ctrl-C, a cancelled deploy) gets after SIGTERM before it is killed.
const oneOffStopTimeout = 5 * time.Second

// RunOnce runs a one-off container to its end (see Engine).
func (d *Docker) RunOnce(ctx context.Context, spec ContainerSpec, o OneOff) (int, error) {
	cfg, hc := hardened(spec)
	cfg.Tty = o.Tty
	cfg.AttachStdout, cfg.AttachStderr = true, true
	if o.Stdin != nil {
		cfg.OpenStdin, cfg.StdinOnce, cfg.AttachStdin = true, true, true
	}
	id, err := d.create(ctx, spec, cfg, hc)
	if err != nil {
		return -1, err
	}
	defer d.removeQuietly(ctx, id)
	// Attached and waited for before the start: no output and no exit is missed.
	att, err := d.cli.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdin: o.Stdin != nil, Stdout: true, Stderr: true})
	if err != nil {
		return -1, fmt.Errorf("attach container: %w", err)
	}
	defer att.Close()
	waitC, waitErr := d.cli.ContainerWait(ctx, id, container.WaitConditionNextExit)
	if err := d.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return -1, fmt.Errorf("start container: %w", err)
	}
	stdout, stderr := orDiscard(o.Stdout), orDiscard(o.Stderr)
	copied := make(chan error, 1)
	go func() {
		var err error
		if o.Tty {
			_, err = io.Copy(stdout, att.Reader)
		} else {
			_, err = stdcopy.StdCopy(stdout, stderr, att.Reader)
		}
		copied <- err
	}()
	if o.Stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, o.Stdin)
			_ = att.CloseWrite()
		}()
	}
	select {
	case res := <-waitC:
		// The output ends with the container; wait for its last bytes.
		select {
		case <-copied:
		case <-time.After(oneOffStopTimeout):
		}
		if res.Error != nil {
			return -1, fmt.Errorf("wait for container: %s", res.Error.Message)
		}
		return int(res.StatusCode), nil
	case err := <-waitErr:
		if ctx.Err() != nil {
			d.stopQuietly(ctx, id)
			return -1, ctx.Err()
		}
		return -1, fmt.Errorf("wait for container: %w", err)
	}
}

// stopQuietly stops a one-off container whose caller gave up.
func (d *Docker) stopQuietly(ctx context.Context, id string) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), oneOffStopTimeout+cleanupTimeout)
	defer cancel()
	secs := int(oneOffStopTimeout / time.Second)
	_ = d.cli.ContainerStop(sctx, id, container.StopOptions{Timeout: &secs})
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// HasFile creates (without starting) a container of image and asks the
// engine about path in it: the only way the API looks into an image.
func (d *Docker) HasFile(ctx context.Context, image, path string) (bool, error) {
	created, err := d.cli.ContainerCreate(ctx, &container.Config{
		Image: image,
		// Never started; a command is only needed for images without one.
		Cmd:    []string{path},
		Labels: map[string]string{LabelManaged: "true"},
	}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return false, fmt.Errorf("look into image %s: %w", image, ErrNotFound)
		}
		return false, fmt.Errorf("look into image %s: %w", image, err)
	}
	defer d.removeQuietly(ctx, created.ID)
	_, err = d.cli.ContainerStatPath(ctx, created.ID, path)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("look for %s in image %s: %w", path, image, err)
	}
}

// SetRestart turns on the "unless-stopped" restart policy.
func (d *Docker) SetRestart(ctx context.Context, id string) error {
	_, err := d.cli.ContainerUpdate(ctx, id, container.UpdateConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
	})
	return containerErr("update container", id, err)
}

// Inspect returns what plat needs to know about a container.
func (d *Docker) Inspect(ctx context.Context, id string) (ContainerInfo, error) {
	c, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return ContainerInfo{}, containerErr("inspect container", id, err)
	}
	var info ContainerInfo
	if c.ContainerJSONBase != nil {
		info.ID = c.ID
		info.Image = c.Image
		info.Name = strings.TrimPrefix(c.Name, "/")
		info.Restarts = c.RestartCount
		if s := c.State; s != nil {
			info.State = s.Status
			info.Running = s.Running
			info.Paused = s.Paused
			info.ExitCode = s.ExitCode
			info.StartedAt = parseTime(s.StartedAt)
			info.FinishedAt = parseTime(s.FinishedAt)
		}
	}
	if c.Config != nil {
		info.Labels = c.Config.Labels
	}
	if c.NetworkSettings != nil {
		if info.Running {
			info.HostAddr = hostAddr(c.NetworkSettings.Ports)
		}
		info.Networks = slices.Sorted(maps.Keys(c.NetworkSettings.Networks))
	}
	return info, nil
}

// hostAddr returns "127.0.0.1:PORT" for the first (by container port) tcp
// port published on 127.0.0.1, or "".
func hostAddr(ports nat.PortMap) string {
	keys := make([]nat.Port, 0, len(ports))
	for p := range ports {
		if p.Proto() == "tcp" {
			keys = append(keys, p)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Int() < keys[j].Int() })
	for _, p := range keys {
		for _, b := range ports[p] {
			if b.HostIP == publishHostIP && b.HostPort != "" {
				return net.JoinHostPort(b.HostIP, b.HostPort)
			}
		}
	}
	return ""
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// Rename renames a container, running or not.
func (d *Docker) Rename(ctx context.Context, id, name string) error {
	return containerErr("rename container", id, d.cli.ContainerRename(ctx, id, name))
}

// Start starts an existing container.
func (d *Docker) Start(ctx context.Context, id string) error {
	return containerErr("start container", id, d.cli.ContainerStart(ctx, id, container.StartOptions{}))
}

// Pause freezes a running container's processes.
func (d *Docker) Pause(ctx context.Context, id string) error {
	return containerErr("pause container", id, d.cli.ContainerPause(ctx, id))
}

// Unpause thaws a paused container.
func (d *Docker) Unpause(ctx context.Context, id string) error {
	return containerErr("unpause container", id, d.cli.ContainerUnpause(ctx, id))
}

// Stop stops a container, killing it after timeout (rounded up to whole
// seconds; 0 kills at once).
func (d *Docker) Stop(ctx context.Context, id string, timeout time.Duration) error {
	secs := int(math.Ceil(timeout.Seconds()))
	if secs < 0 {
		secs = 0
	}
	return containerErr("stop container", id, d.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}))
}

// Remove force-removes a container and its anonymous volumes.
func (d *Docker) Remove(ctx context.Context, id string) error {
	err := d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	return containerErr("remove container", id, err)
}

// List returns all containers (running or not) carrying all the given
// labels, newest first. Each container is inspected, so the entries are as
// complete as Inspect's; containers removed meanwhile are left out.
func (d *Docker) List(ctx context.Context, labels map[string]string) ([]ContainerInfo, error) {
	f := filters.NewArgs()
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	summaries, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	infos := make([]ContainerInfo, 0, len(summaries))
	for _, s := range summaries {
		info, err := d.Inspect(ctx, s.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// Logs writes a container's stdout and stderr to w, whole lines at a time.
// tail < 0 means all lines. With follow it returns when the container stops
// or when ctx ends; the latter is a normal end and returns nil.
func (d *Docker) Logs(ctx context.Context, id string, tail int, follow bool, w io.Writer) error {
	return d.logs(ctx, id, container.LogsOptions{Follow: follow}, tail, w)
}

// TimedLogs is Logs with timestamps, from since on (see Engine).
func (d *Docker) TimedLogs(ctx context.Context, id string, since time.Time, tail int, follow bool, w io.Writer) error {
	opts := container.LogsOptions{Follow: follow, Timestamps: true}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	return d.logs(ctx, id, opts, tail, w)
}

func (d *Docker) logs(ctx context.Context, id string, opts container.LogsOptions, tail int, w io.Writer) error {
	follow := opts.Follow
	c, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return containerErr("logs", id, err)
	}
	t := "all"
	if tail >= 0 {
		t = strconv.Itoa(tail)
	}
	opts.ShowStdout, opts.ShowStderr, opts.Tail = true, true, t
	rc, err := d.cli.ContainerLogs(ctx, id, opts)
	if err != nil {
		if follow && ctx.Err() != nil {
			return nil
		}
		return containerErr("logs", id, err)
	}
	defer rc.Close()

	sw := &syncWriter{w: w}
	stdout, stderr := &lineWriter{dst: sw}, &lineWriter{dst: sw}
	if c.Config != nil && c.Config.Tty {
		_, err = io.Copy(stdout, rc)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, rc)
	}
	ferr := errors.Join(stdout.Flush(), stderr.Flush())
	if err != nil {
		if follow && ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("logs %s: %w", id, err)
	}
	return ferr
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// maxLogLine bounds how much of an unterminated line lineWriter holds.
const maxLogLine = 64 << 10

// lineWriter forwards only complete lines to dst, so that two streams
// sharing dst never interleave within a line. Flush writes the rest.
type lineWriter struct {
	dst io.Writer
	buf []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
		if _, err := l.dst.Write(l.buf[:i+1]); err != nil {
			return 0, err
		}
		l.buf = append(l.buf[:0], l.buf[i+1:]...)
	}
	if len(l.buf) > maxLogLine {
		if err := l.Flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (l *lineWriter) Flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.dst.Write(l.buf)
	l.buf = l.buf[:0]
	return err
}

// containerErr maps a Docker API error about a container to plat's errors.
func containerErr(op, id string, err error) error {
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s %s: %w", op, id, ErrNotFound)
	default:
		return fmt.Errorf("%s %s: %w", op, id, err)
	}
}

// Events streams container start, die, destroy, pause and unpause events
// filtered by labels.
func (d *Docker) Events(ctx context.Context, labels map[string]string, fn func(ContainerEvent)) error {
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)))
	for _, a := range []string{ActionStart, ActionDie, ActionDestroy, ActionPause, ActionUnpause} {
		f.Add("event", a)
	}
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	msgs, errs := d.cli.Events(ctx, events.ListOptions{Filters: f})
	for {
		select {
		case m := <-msgs:
			fn(containerEvent(m))
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("engine events: %w", err)
		}
	}
}

// containerEvent converts the engine's message; the container's labels
// arrive mixed with other attributes (name, image, exitCode).
func containerEvent(m events.Message) ContainerEvent {
	e := ContainerEvent{ID: m.Actor.ID, Action: string(m.Action), Labels: m.Actor.Attributes, Time: time.Unix(0, m.TimeNano)}
	if code, err := strconv.Atoi(m.Actor.Attributes["exitCode"]); err == nil {
		e.ExitCode = code
	}
	return e
}
