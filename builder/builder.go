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

	"github.com/plat-paas/plat/engine"
)

// ErrNoDockerfile is returned when the source has no Dockerfile at its root.
var ErrNoDockerfile = errors.New("no Dockerfile at the root of the repository: add one that builds your app and listens on $PORT")

// Request is one build.
type Request struct {
	App     string
	Version int
	GitSHA  string
	Source  io.Reader // tar stream (optionally gzip-compressed), Dockerfile at its root
	// Instance is the daemon's name on the engine (default "plat"): the
	// image is tagged <instance>/<app>:v<version> and labelled with it.
	Instance string
}

// Builder builds images with an engine.
type Builder struct {
	engine engine.Engine
}

// New returns a Builder that builds with e.
func New(e engine.Engine) *Builder {
	return &Builder{engine: e}
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

// Build spools req.Source to a temporary file, checks that it is a tar with a
// Dockerfile at its root (ErrNoDockerfile otherwise) and builds it, tagged
// plat/<app>:v<version> and labelled with the app, release and git SHA. The
// engine's build output is streamed to out. It returns the image ID.
func (b *Builder) Build(ctx context.Context, req Request, out io.Writer) (string, error) {
	if !appName.MatchString(req.App) {
		return "", fmt.Errorf("build: invalid app name %q", req.App)
	}
	if req.Version <= 0 {
		return "", fmt.Errorf("build: invalid release version %d", req.Version)
	}
	if req.Source == nil {
		return "", errors.New("build: no source")
	}
	if out == nil {
		out = io.Discard
	}

	f, err := os.CreateTemp("", "plat-build-*.tar")
	if err != nil {
		return "", fmt.Errorf("build: spooling source: %w", err)
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	if _, err := io.Copy(f, req.Source); err != nil {
		return "", fmt.Errorf("build: reading source: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("build: spooling source: %w", err)
	}
	if err := checkDockerfile(f); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("build: spooling source: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}

	instance := req.Instance
	if instance == "" {
		instance = "plat"
	}
	id, err := b.engine.Build(ctx, f, engine.BuildOptions{
		Tags: []string{InstanceTag(instance, req.App, req.Version)},
		// The classic builder adds one LABEL step (an intermediate
		// container, ~0.3 s) per label, so images carry just the one that
		// says which daemon owns them; the tag names app and release, and
		// the release record keeps the git SHA.
		Labels: map[string]string{engine.LabelInstance: instance},
	}, out)
	if err != nil {
		return "", err
	}
	return id, nil
}

// checkDockerfile reads a tar stream (plain or gzip-compressed) and reports
// ErrNoDockerfile unless it holds a file named Dockerfile at its root.
func checkDockerfile(r io.Reader) error {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("build: the source is not a valid tar archive: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	tr := tar.NewReader(src)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return ErrNoDockerfile
		}
		if err != nil {
			return fmt.Errorf("build: the source is not a valid tar archive: %w", err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeSymlink:
		default:
			continue // directories, pax global headers (git archive), ...
		}
		if path.Clean("/"+hdr.Name) == "/Dockerfile" {
			return nil
		}
	}
}
