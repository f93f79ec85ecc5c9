// Package enginetest is an in-memory engine.Engine for unit tests: it keeps
// containers, images and an event stream in memory, serves each running
// container's port with an httptest server (so health checks are real HTTP),
// and injects the engine's failures on demand. No Docker is needed.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plat-paas/plat/engine"
)

// Behaviour is what a container does when it is started.
type Behaviour struct {
	// FailStart makes Run (or Start) return this error; no container is
	// left behind by Run.
	FailStart error
	// Exit makes the container exit with ExitCode right after it started,
	// as an app that crashes during its health check.
	Exit     bool
	ExitCode int
	// Handler answers the container's HTTP port; nil answers 200 to every
	// request.
	Handler http.Handler
	// Logs is the container's output (Logs, TimedLogs).
	Logs string
}

// Engine is an in-memory engine.Engine. Its zero value is not usable; call New.
type Engine struct {
	// Behave, if set, decides what a container does, by its spec; it is
	// read on every Run and Start.
	Behave func(spec engine.ContainerSpec) Behaviour

	mu         sync.Mutex
	containers map[string]*container
	images     map[string]string // tag or ID -> image ID
	subs       []*subscriber
	next       int
	runs       int
}

type container struct {
	info    engine.ContainerInfo
	spec    engine.ContainerSpec
	restart bool
	srv     *httptest.Server
	logs    string
	// thawed is open while the container is paused: its requests wait.
	thawed chan struct{}
}

type subscriber struct {
	labels map[string]string
	ch     chan engine.ContainerEvent
}

// eventBuffer is how many events a subscriber may lag behind; more are
// dropped, as a slow reader of the real engine's stream loses them too.
const eventBuffer = 1024

var _ engine.Engine = (*Engine)(nil)

// New returns an empty engine.
func New() *Engine {
	return &Engine{containers: map[string]*container{}, images: map[string]string{}}
}

// AddImage makes an image with ID id present under id and the given tags.
func (e *Engine) AddImage(id string, tags ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.images[id] = id
	for _, t := range tags {
		e.images[t] = id
	}
}

// Images returns the image references (IDs and tags) present, sorted.
func (e *Engine) Images() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.images))
}

// Containers returns every container, running or not, sorted by name.
func (e *Engine) Containers() []engine.ContainerInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]engine.ContainerInfo, 0, len(e.containers))
	for _, c := range e.containers {
		out = append(out, c.info)
	}
	slices.SortFunc(out, func(a, b engine.ContainerInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Runs counts the successful Run calls.
func (e *Engine) Runs() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs
}

// Close stops every container's HTTP server.
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.containers {
		c.stopServer()
	}
}

func (c *container) stopServer() {
	if c.thawed != nil {
		close(c.thawed)
		c.thawed = nil
	}
	if c.srv != nil {
		c.srv.Close()
		c.srv = nil
	}
}

func (e *Engine) behave(spec engine.ContainerSpec) Behaviour {
	if e.Behave == nil {
		return Behaviour{}
	}
	return e.Behave(spec)
}

// start runs c's behaviour; e.mu is held.
func (e *Engine) start(c *container) error {
	b := e.behave(c.spec)
	if b.FailStart != nil {
		return b.FailStart
	}
	c.logs = b.Logs
	c.info.StartedAt = time.Now()
	if b.Exit {
		c.info.State, c.info.Running, c.info.ExitCode, c.info.HostAddr = "exited", false, b.ExitCode, ""
		c.info.FinishedAt = time.Now()
		e.emit(c, engine.ActionStart, 0)
		e.emit(c, engine.ActionDie, b.ExitCode)
		return nil
	}
	h := b.Handler
	if h == nil {
		h = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	}
	c.srv = httptest.NewServer(e.frozen(c, h))
	c.info.State, c.info.Running, c.info.ExitCode = "running", true, 0
	c.info.HostAddr = c.srv.Listener.Addr().String()
	e.emit(c, engine.ActionStart, 0)
	return nil
}

// frozen makes c's requests wait while c is paused, as a frozen process
// answers nothing.
func (e *Engine) frozen(c *container, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		thawed := c.thawed
		e.mu.Unlock()
		if thawed != nil {
			select {
			case <-thawed:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// emit sends an event to the subscribers whose labels match; e.mu is held.
func (e *Engine) emit(c *container, action string, code int) {
	ev := engine.ContainerEvent{ID: c.info.ID, Action: action, Labels: maps.Clone(c.info.Labels), ExitCode: code, Time: time.Now()}
	for _, s := range e.subs {
		if matches(c.info.Labels, s.labels) {
			select {
			case s.ch <- ev:
			default:
			}
		}
	}
}

func matches(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func (e *Engine) get(id string) (*container, error) {
	c, ok := e.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
	}
	return c, nil
}

// Ping always answers.
func (e *Engine) Ping(context.Context) error { return nil }

// Build is not supported: tests add images with AddImage.
func (e *Engine) Build(context.Context, io.Reader, engine.BuildOptions, io.Writer) (string, error) {
	return "", errors.New("enginetest: Build is not supported; use AddImage")
}

// ImageExists reports whether AddImage added image (an ID or a tag).
func (e *Engine) ImageExists(_ context.Context, image string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.images[image]
	return ok, nil
}

// RemoveImage removes a tag (the image goes with its last tag) or an ID.
func (e *Engine) RemoveImage(_ context.Context, image string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, ok := e.images[image]
	if !ok {
		return fmt.Errorf("image %s: %w", image, engine.ErrNotFound)
	}
	delete(e.images, image)
	if image == id {
		for ref, v := range e.images {
			if v == id {
				delete(e.images, ref)
			}
		}
		return nil
	}
	for ref, v := range e.images {
		if v == id && ref != id {
			return nil // another tag keeps it
		}
	}
	delete(e.images, id)
	return nil
}

// RemoveNetwork succeeds: networks are not modelled.
func (e *Engine) RemoveNetwork(context.Context, string) error { return nil }

// Capacity reports a host of 4 CPUs and 8 GiB.
func (e *Engine) Capacity(context.Context) (engine.Capacity, error) {
	return engine.Capacity{CPUs: 4, MemoryBytes: 8 << 30}, nil
}

// Run creates and starts a container, failing as the real engine does for
// a missing image or a name in use, or as Behave says.
func (e *Engine) Run(ctx context.Context, spec engine.ContainerSpec) (engine.ContainerInfo, error) {
	if err := ctx.Err(); err != nil {
		return engine.ContainerInfo{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	image, ok := e.images[spec.Image]
	if !ok {
		return engine.ContainerInfo{}, fmt.Errorf("no such image %s: %w", spec.Image, engine.ErrNotFound)
	}
	for _, c := range e.containers {
		if c.info.Name == spec.Name {
			return engine.ContainerInfo{}, fmt.Errorf("container %s: %w", spec.Name, engine.ErrNameInUse)
		}
	}
	e.next++
	c := &container{spec: spec, info: engine.ContainerInfo{
		ID: fmt.Sprintf("c%03d", e.next), Name: spec.Name, Image: image,
		Labels: maps.Clone(spec.Labels), State: "created",
	}}
	if spec.Network != "" {
		c.info.Networks = []string{spec.Network}
	}
	if err := e.start(c); err != nil {
		return engine.ContainerInfo{}, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	e.containers[c.info.ID] = c
	e.runs++
	return c.info, nil
}

// RunOnce runs nothing and returns exit code 0.
func (e *Engine) RunOnce(context.Context, engine.ContainerSpec, engine.OneOff) (int, error) {
	return 0, nil
}

// HasFile reports true: images are assumed to have a shell.
func (e *Engine) HasFile(context.Context, string, string) (bool, error) { return true, nil }

// SetRestart records the restart policy.
func (e *Engine) SetRestart(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id)
	if err != nil {
		return err
	}
	c.restart = true
	return nil
}

// Inspect returns a container's state.
func (e *Engine) Inspect(_ context.Context, id string) (engine.ContainerInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id)
	if err != nil {
		return engine.ContainerInfo{}, err
	}
	return c.info, nil
}

// Rename renames a container.
func (e *Engine) Rename(_ context.Context, id, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id)
	if err != nil {
		return err
	}
	c.info.Name = name
	return nil
}

// Start starts a stopped container again, as Behave says.
func (e *Engine) Start(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id)
	if err != nil {
		return err
	}
	if c.info.Running {
		return nil
	}
	return e.start(c)
}

// Stop stops a container (its port stops answering) and sends a die event.
func (e *Engine) Stop(_ context.Context, id string, _ time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id)
	if err != nil {
		return err
	}
	if !c.info.Running {
		return nil
	}
	c.stopServer()
	c.info.State, c.info.Running, c.info.Paused, c.info.HostAddr, c.info.FinishedAt = "exited", false, false, "", time.Now()
	e.emit(c, engine.ActionDie, 0)
	return nil
}

// Pause freezes a running container: it keeps its address, its requests
// wait until it is unpaused, and a pause event is sent.
func (e *Engine) Pause(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id)
	if err != nil {
		return err
	}
	if !c.info.Running || c.info.Paused {
		return fmt.Errorf("container %s is not running or already paused", id)
	}
	c.info.Paused, c.info.State, c.thawed = true, "paused", make(chan struct{})
	e.emit(c, engine.ActionPause, 0)
	return nil
}

// Unpause thaws a paused container.
func (e *Engine) Unpause(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id)
	if err != nil {
		return err
	}
	if !c.info.Paused {
		return fmt.Errorf("container %s is not paused", id)
	}
	c.info.Paused, c.info.State = false, "running"
	close(c.thawed)
	c.thawed = nil
	e.emit(c, engine.ActionUnpause, 0)
	return nil
}

// Remove force-removes a container.
func (e *Engine) Remove(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id)
	if err != nil {
		return err
	}
	c.stopServer()
	if c.info.Running {
		c.info.Running = false
		e.emit(c, engine.ActionDie, 137)
	}
	delete(e.containers, id)
	e.emit(c, engine.ActionDestroy, 0)
	return nil
}

// List returns the containers carrying all the given labels, by name.
func (e *Engine) List(_ context.Context, labels map[string]string) ([]engine.ContainerInfo, error) {
	var out []engine.ContainerInfo
	for _, c := range e.Containers() {
		if matches(c.Labels, labels) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Logs writes the container's Behaviour.Logs.
func (e *Engine) Logs(_ context.Context, id string, _ int, _ bool, w io.Writer) error {
	e.mu.Lock()
	c, err := e.get(id)
	var logs string
	if err == nil {
		logs = c.logs
	}
	e.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, logs)
	return err
}

// TimedLogs writes the container's logs, each line stamped now.
func (e *Engine) TimedLogs(ctx context.Context, id string, _ time.Time, tail int, follow bool, w io.Writer) error {
	var b strings.Builder
	if err := e.Logs(ctx, id, tail, follow, &b); err != nil {
		return err
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for line := range strings.Lines(b.String()) {
		if _, err := io.WriteString(w, now+" "+line); err != nil {
			return err
		}
	}
	return nil
}

// Events calls fn, in order, for every start, die and destroy of a
// matching container until ctx ends.
func (e *Engine) Events(ctx context.Context, labels map[string]string, fn func(engine.ContainerEvent)) error {
	s := &subscriber{labels: maps.Clone(labels), ch: make(chan engine.ContainerEvent, eventBuffer)}
	e.mu.Lock()
	e.subs = append(e.subs, s)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.subs = slices.DeleteFunc(e.subs, func(x *subscriber) bool { return x == s })
		e.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-s.ch:
			fn(ev)
		}
	}
}
