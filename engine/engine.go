// Package engine is plat's only door to the container engine. Everything else
// talks to the small Engine interface below, so replacing the Docker SDK (or
// faking it in a unit test) is a change to this package alone.
package engine

import (
	"context"
	"errors"
	"io"
	"time"
)

// Labels plat puts on every container and image it creates.
const (
	LabelManaged = "plat.managed" // "true"
	LabelApp     = "plat.app"
	LabelRelease = "plat.release" // release version, decimal
	LabelGitSHA  = "plat.git-sha"
	// LabelReplica numbers the replicas of one release: 1, 2, ...
	LabelReplica = "plat.replica"
	// LabelRole marks the containers plat runs; images never carry it, so
	// the build's intermediate containers (which inherit image labels) do not.
	LabelRole = "plat.role"
	RoleApp   = "app"
	// RoleRun marks one-off containers (`plat run`, the release phase):
	// never routed, never restarted, removed when they end.
	RoleRun = "run"
	// LabelRun numbers the one-off containers of an app that run at the
	// same time: 1, 2, ... (`plat ps` shows run.1).
	LabelRun = "plat.run"
	// LabelRestart marks the containers a `plat restart` started: until
	// it switched to them they are its own, not replicas to re-route.
	LabelRestart = "plat.restart"
	// LabelInstance names the daemon that runs a container, so daemons that
	// share an engine never touch each other's containers.
	LabelInstance = "plat.instance"
)

// ErrNotFound is returned when a container, image or network does not exist.
var ErrNotFound = errors.New("not found")

// Capacity is what the engine's host has for containers.
type Capacity struct {
	CPUs        int   // CPUs the engine can give one container
	MemoryBytes int64 // the host's memory
}

// BuildOptions describe one image build.
type BuildOptions struct {
	Tags   []string          // e.g. plat/myapp:v3
	Labels map[string]string // put on the image
	// BuildArgs are the Dockerfile's ARG values.
	BuildArgs map[string]string
	// Target is the stage to build; empty: the last one.
	Target string
}

// ContainerSpec describes a container to create and start.
type ContainerSpec struct {
	Name   string
	Image  string // image ID or tag
	Env    []string
	Labels map[string]string
	// Port is the TCP port the app listens on inside the container. It is
	// published on 127.0.0.1 at an ephemeral host port (see ContainerInfo.HostAddr).
	Port        int
	MemoryBytes int64
	// NanoCPUs caps the CPU time in billionths of a CPU (1e9 = one CPU);
	// 0 means no cap.
	NanoCPUs int64
	// ReadOnly runs the container with a read-only root filesystem and a
	// small writable tmpfs at /tmp.
	ReadOnly bool
	Network  string // created on demand when not empty
	// NetworkLabels label the network when Run creates it.
	NetworkLabels map[string]string
	// Cmd, when set, replaces the image's CMD (an ENTRYPOINT stays and
	// gets it as arguments, as with `docker run IMAGE CMD...`).
	Cmd []string
}

// OneOff is the command and the streams of a one-off container (RunOnce).
type OneOff struct {
	// Tty gives the container a terminal: stdout and stderr arrive
	// together on Stdout, and stdin is the terminal's input.
	Tty bool
	// Stdin, when not nil, is copied to the container's stdin; its EOF
	// closes the container's stdin.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer // unused with Tty
}

// ContainerInfo is what plat needs to know about a container.
type ContainerInfo struct {
	ID     string
	Name   string
	Image  string // image ID
	Labels map[string]string
	State  string // created, running, paused, exited, restarting, ...
	// Running is true for a paused container too (its processes exist,
	// frozen); Paused tells them apart.
	Running  bool
	Paused   bool
	ExitCode int
	// HostAddr is "127.0.0.1:PORT" where the container's app port is
	// published; empty when the container is not running.
	HostAddr   string
	StartedAt  time.Time
	FinishedAt time.Time
	Restarts   int
	// Networks are the names of the networks the container is attached to.
	Networks []string
}

// Container lifecycle actions reported by Events.
const (
	ActionStart   = "start"
	ActionDie     = "die"
	ActionDestroy = "destroy"
	ActionPause   = "pause"
	ActionUnpause = "unpause"
)

// ContainerEvent is one lifecycle change of a container.
type ContainerEvent struct {
	ID       string
	Action   string // ActionStart, ActionDie, ActionDestroy, ActionPause or ActionUnpause
	Labels   map[string]string
	ExitCode int // set for ActionDie
	Time     time.Time
}

// Engine is the container engine as plat uses it.
type Engine interface {
	// Ping checks that the engine answers.
	Ping(ctx context.Context) error
	// Build builds an image from a tar build context (Dockerfile at its root).
	// Human-readable build output is written to out as it arrives. A failed
	// build returns an error carrying the engine's message.
	Build(ctx context.Context, buildContext io.Reader, opts BuildOptions, out io.Writer) (imageID string, err error)
	// ImageExists reports whether an image (ID or tag) is present.
	ImageExists(ctx context.Context, image string) (bool, error)
	// RemoveImage removes an image reference: a tag (the image goes with
	// its last tag) or an ID; ErrNotFound if it is gone already.
	RemoveImage(ctx context.Context, image string) error
	// RemoveNetwork removes a network by name; ErrNotFound if it is gone
	// already, ErrNetworkInUse while a container is attached.
	RemoveNetwork(ctx context.Context, name string) error
	// Capacity reports the CPUs and memory of the engine's host.
	Capacity(ctx context.Context) (Capacity, error)

	// Run creates and starts a container (no restart policy yet; see SetRestart).
	Run(ctx context.Context, spec ContainerSpec) (ContainerInfo, error)
	// RunOnce creates a container hardened as Run does (but publishing no
	// port), attaches the streams of o, starts it, waits for it to end and
	// removes it. It returns the command's exit code. When ctx ends first
	// the container is stopped and removed, and ctx's error returned.
	RunOnce(ctx context.Context, spec ContainerSpec, o OneOff) (exitCode int, err error)
	// HasFile reports whether path exists in image's filesystem (e.g.
	// /bin/sh: images FROM scratch have no shell).
	HasFile(ctx context.Context, image, path string) (bool, error)
	// SetRestart turns on the "unless-stopped" restart policy once a container is known good.
	SetRestart(ctx context.Context, id string) error
	Inspect(ctx context.Context, id string) (ContainerInfo, error)
	// Rename renames a container, running or not.
	Rename(ctx context.Context, id, name string) error
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Pause freezes a running container's processes (the cgroup freezer):
	// they keep their memory and use no CPU. Unpause thaws them. An engine
	// that cannot returns an error wrapping errors.ErrUnsupported.
	Pause(ctx context.Context, id string) error
	Unpause(ctx context.Context, id string) error
	// Remove force-removes a container; ErrNotFound if it is gone already.
	Remove(ctx context.Context, id string) error
	// List returns all containers (running or not) carrying all the given labels.
	List(ctx context.Context, labels map[string]string) ([]ContainerInfo, error)
	// Logs writes a container's stdout and stderr, demultiplexed, to w. tail <
	// 0 means all lines. With follow it returns when ctx ends or the container stops.
	Logs(ctx context.Context, id string, tail int, follow bool, w io.Writer) error
	// Events calls fn for every start, die, destroy, pause and unpause of a container
	// carrying all the given labels, from now on, until ctx ends (nil) or
	// the connection to the engine drops (an error).
	Events(ctx context.Context, labels map[string]string, fn func(ContainerEvent)) error
	// TimedLogs is Logs with the engine's timestamps: every line written to w
	// starts with an RFC 3339 time (nanoseconds) and a space. A non-zero since
	// skips lines logged before it, so a follower can resume where it stopped.
	TimedLogs(ctx context.Context, id string, since time.Time, tail int, follow bool, w io.Writer) error
}
