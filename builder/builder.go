// Package builder turns an app's source tree, as a tar stream (the output of
// `git archive`), into a tagged container image.
package builder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strconv"
	"time"

	"github.com/plat-paas/plat/engine"
)

// ErrNoDockerfile is returned when the source has no Dockerfile at its root.
// A source without one gets a generated Dockerfile when its stack is known
// (Detect); otherwise the error wraps ErrNoDockerfile and ErrUnknownStack.
var ErrNoDockerfile = errors.New("no Dockerfile at the root of the repository")

// Request is one build.
type Request struct {
	App     string
	Version int
	GitSHA  string
	Source  io.Reader // tar stream (optionally gzip-compressed), Dockerfile at its root
	// Instance is the daemon's name on the engine (default "plat"): the
	// image is tagged <instance>/<app>:v<version> and labelled with it.
	Instance string
	// BaseImages are the images generated Dockerfiles build FROM, by
	// stack (defaults: DefaultBaseImages).
	BaseImages BaseImages
	// OnGenerate, if set, is called with the generated Dockerfile of a
	// source without one, before the build starts.
	OnGenerate func(Generated)
	// BuildArgs are the Dockerfile's ARG values (plat config:set --build-arg).
	BuildArgs map[string]string
	// Secrets are the values of RUN --mount=type=secret,id=KEY (plat
	// config:set --build-secret): BuildKit only, and never printed.
	Secrets map[string]string
	// Target is the Dockerfile stage to build; empty: the last one.
	Target string
}

// Builder builds images with an engine.
type Builder struct {
	engine engine.Engine
	// slots holds one token per running build (WithMaxBuilds).
	slots   chan struct{}
	timeout time.Duration
}

// New returns a Builder that builds with e: through the engine's BuildKit
// when e serves it (engine.BuildKitDialer), else with the classic builder.
func New(e engine.Engine, opts ...Option) *Builder {
	b := &Builder{engine: e, slots: make(chan struct{}, DefaultMaxBuilds), timeout: DefaultBuildTimeout}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Tag returns the image tag of an app's release: plat/<app>:v<version>.
func Tag(app string, version int) string {
	return InstanceTag("plat", app, version)
}

// InstanceTag is Tag for a daemon with another instance name.
func InstanceTag(instance, app string, version int) string {
	return instance + "/" + app + ":v" + strconv.Itoa(version)
}

// appName is what Docker accepts as one path component of a repository name.
var appName = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// Result is what a build made: the image and the commit's Procfile.
type Result struct {
	ImageID string
	// Procfile holds the commands of the Procfile at the root of the
	// source by process type (ParseProcfile); nil without one.
	Procfile map[string]string
	// Generated is the Dockerfile plat generated for a source without
	// one; nil when the source had its own.
	Generated *Generated
}

// Build is BuildRelease for callers that need only the image ID.
func (b *Builder) Build(ctx context.Context, req Request, out io.Writer) (string, error) {
	res, err := b.BuildRelease(ctx, req, out)
	return res.ImageID, err
}

// BuildRelease spools req.Source to a temporary file, checks that it is a tar with a
// Dockerfile at its root (ErrNoDockerfile otherwise) and builds it, tagged
// plat/<app>:v<version> and labelled with the app, release and git SHA. The
// engine's build output is streamed to out. A Procfile at the root is read
// before the build: a bad one (ErrProcfile) fails the build before it starts.
func (b *Builder) BuildRelease(ctx context.Context, req Request, out io.Writer) (Result, error) {
	if !appName.MatchString(req.App) {
		return Result{}, fmt.Errorf("build: invalid app name %q", req.App)
	}
	if req.Version <= 0 {
		return Result{}, fmt.Errorf("build: invalid release version %d", req.Version)
	}
	if req.Source == nil {
		return Result{}, errors.New("build: no source")
	}
	if out == nil {
		out = io.Discard
	}

	f, err := os.CreateTemp("", "plat-build-*.tar")
	if err != nil {
		return Result{}, fmt.Errorf("build: spooling source: %w", err)
	}
	defer removeTemp(f)
	if _, err := io.Copy(f, req.Source); err != nil {
		return Result{}, fmt.Errorf("build: reading source: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Result{}, fmt.Errorf("build: spooling source: %w", err)
	}
	procfile, err := scanSource(f)
	var gen *Generated
	if errors.Is(err, ErrNoDockerfile) {
		// No Dockerfile: build with one generated for the detected stack
		// (detect.go), added to the build context.
		if f, gen, err = generateDockerfile(f, req.BaseImages); err != nil {
			return Result{}, err
		}
		defer removeTemp(f)
		if req.OnGenerate != nil {
			req.OnGenerate(*gen)
		}
		procfile, err = scanSource(f)
	}
	if err != nil {
		return Result{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Result{}, fmt.Errorf("build: spooling source: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	instance := req.Instance
	if instance == "" {
		instance = "plat"
	}
	release, err := b.acquire(ctx, out)
	if err != nil {
		return Result{}, err
	}
	defer release()
	ctx, cancel := context.WithTimeoutCause(ctx, b.timeout, errBuildTimeout)
	defer cancel()
	id, err := b.build(ctx, f, req, instance, out)
	if err != nil {
		if errors.Is(context.Cause(ctx), errBuildTimeout) {
			return Result{}, fmt.Errorf("%w after %s: make the build faster or raise the limit (plat daemon --build-timeout)", ErrBuildTimeout, b.timeout)
		}
		return Result{}, err
	}
	return Result{ImageID: id, Procfile: procfile, Generated: gen}, nil
}

// build builds the spooled source f with BuildKit, or with the classic
// builder when the engine has no BuildKit.
func (b *Builder) build(ctx context.Context, f *os.File, req Request, instance string, out io.Writer) (string, error) {
	if bk, ok := b.engine.(engine.BuildKitDialer); ok {
		id, err := b.buildKit(ctx, bk, f, req, instance, out)
		if err == nil {
			// The classic path's Engine.Build publishes by itself.
			if p, ok := b.engine.(engine.ImagePublisher); ok {
				if err := p.Publish(ctx, id, out); err != nil {
					return "", fmt.Errorf("build: %w", err)
				}
			}
			return id, nil
		}
		if !errors.Is(err, errNoBuildKit) {
			return id, err
		}
		fmt.Fprintf(out, "Note: BuildKit is not available on this engine (%v): building with the classic builder, which has no RUN --mount, COPY --link or heredocs\n", err)
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", fmt.Errorf("build: spooling source: %w", err)
		}
	} else {
		fmt.Fprintln(out, "Note: this engine has no BuildKit: building with the classic builder, which has no RUN --mount, COPY --link or heredocs")
	}
	if len(req.Secrets) > 0 {
		fmt.Fprintln(out, "Note: the classic builder cannot pass build secrets: they are left out")
	}
	return b.engine.Build(ctx, f, engine.BuildOptions{
		Tags: []string{InstanceTag(instance, req.App, req.Version)},
		// The classic builder adds one LABEL step (an intermediate
		// container, ~0.3 s) per label, so images carry just the one that
		// says which daemon owns them; the tag names app and release, and
		// the release record keeps the git SHA.
		Labels:    map[string]string{engine.LabelInstance: instance},
		BuildArgs: req.BuildArgs,
		Target:    req.Target,
	}, out)
}

// removeTemp closes and removes a temporary file.
func removeTemp(f *os.File) {
	_ = f.Close()
	_ = os.Remove(f.Name())
}

// scanSource reads a tar stream (plain or gzip-compressed): it reports
// ErrNoDockerfile unless it holds a file named Dockerfile at its root, and
// returns the parsed Procfile at its root, if any.
func scanSource(r io.Reader) (map[string]string, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("build: the source is not a valid tar archive: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	tr := tar.NewReader(src)
	var dockerfile bool
	var procfile map[string]string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if !dockerfile {
				return nil, ErrNoDockerfile
			}
			return procfile, nil
		}
		if err != nil {
			return nil, fmt.Errorf("build: the source is not a valid tar archive: %w", err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeSymlink:
		default:
			continue // directories, pax global headers (git archive), ...
		}
		switch path.Clean("/" + hdr.Name) {
		case "/Dockerfile":
			dockerfile = true
		case "/Procfile":
			if hdr.Typeflag != tar.TypeReg {
				return nil, fmt.Errorf("%w: it is a symbolic link; commit the file itself", ErrProcfile)
			}
			if procfile, err = ParseProcfile(tr); err != nil {
				return nil, err
			}
		}
	}
}
