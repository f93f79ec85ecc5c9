package builder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	dockerfilebuilder "github.com/moby/buildkit/frontend/dockerfile/builder"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/tonistiigi/fsutil"

	"github.com/plat-paas/plat/engine"
)

// buildKitProbeTimeout bounds the check that the engine serves BuildKit.
const buildKitProbeTimeout = 10 * time.Second

// errNoBuildKit is wrapped when the engine does not serve BuildKit: the
// builder falls back to the classic builder.
var errNoBuildKit = errors.New("the engine does not serve BuildKit")

// ErrBuildArg is wrapped when a build arg is not allowed.
var ErrBuildArg = errors.New("invalid build arg")

// CheckBuildArg reports whether name may be a build arg: plat sets the
// BUILDKIT_* args itself (the cache namespace keeps one app out of
// another's cache mounts; BUILDKIT_SYNTAX would pull a frontend image).
func CheckBuildArg(name string) error {
	if strings.HasPrefix(strings.ToUpper(name), "BUILDKIT_") {
		return fmt.Errorf("%w %s: plat sets the BUILDKIT_* build args itself", ErrBuildArg, name)
	}
	return nil
}

// buildKit builds the source tar src (a Dockerfile at its root) with the
// engine's BuildKit, running a current Dockerfile frontend in this process
// and sending its LLB to the engine's solver; the engine's "moby" exporter
// tags the image into its image store. It returns errNoBuildKit when the
// engine does not serve BuildKit.
func (b *Builder) buildKit(ctx context.Context, dialer engine.BuildKitDialer, src io.Reader, req Request, instance string, out io.Writer) (string, error) {
	c, err := client.New(ctx, "",
		client.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return dialer.DialBuildKit(ctx, "/grpc", "h2c", nil)
		}),
		client.WithSessionDialer(func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return dialer.DialBuildKit(ctx, "/session", proto, meta)
		}),
	)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errNoBuildKit, err)
	}
	defer c.Close()
	probeCtx, cancel := context.WithTimeout(ctx, buildKitProbeTimeout)
	_, err = c.ListWorkers(probeCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%w: %w", errNoBuildKit, err)
	}

	dir, err := os.MkdirTemp("", "plat-context-*")
	if err != nil {
		return "", fmt.Errorf("build: unpacking source: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := unpack(src, dir); err != nil {
		return "", err
	}
	df, err := os.ReadFile(dir + "/Dockerfile")
	if err != nil {
		return "", fmt.Errorf("build: reading the Dockerfile: %w", err)
	}
	if ref, _, _, ok := parser.DetectSyntax(df); ok {
		fmt.Fprintf(out, "Note: ignoring the Dockerfile's \"# syntax=%s\" line: plat builds with its own Dockerfile frontend (BuildKit %s) and pulls no frontend image\n", ref, frontendVersion)
	}
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return "", fmt.Errorf("build: build context: %w", err)
	}

	tag := InstanceTag(instance, req.App, req.Version)
	attrs := map[string]string{
		"filename": "Dockerfile",
		// Set, "cmdline" keeps the frontend from handing the build to
		// the frontend image a "# syntax=" line names (which it would pull).
		"cmdline": "plat",
		// Cache mounts are per app: another app's RUN --mount=type=cache
		// with the same id gets its own, empty cache.
		"build-arg:BUILDKIT_CACHE_MOUNT_NS": instance + "/" + req.App,
		"label:" + engine.LabelInstance:     instance,
	}
	for k, v := range req.BuildArgs {
		if err := CheckBuildArg(k); err != nil {
			return "", err
		}
		attrs["build-arg:"+k] = v
	}
	if req.Target != "" {
		attrs["target"] = req.Target
	}
	secrets := make(map[string][]byte, len(req.Secrets))
	for k, v := range req.Secrets {
		secrets[k] = []byte(v)
	}

	pw := newProgressWriter(out, req.Secrets)
	status := make(chan *client.SolveStatus)
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for s := range status {
			pw.write(s)
		}
		pw.close()
	}()
	resp, err := c.Build(ctx, client.SolveOpt{
		Exports:       []client.ExportEntry{{Type: "moby", Attrs: map[string]string{"name": tag}}},
		LocalMounts:   map[string]fsutil.FS{"context": fs, "dockerfile": fs},
		FrontendAttrs: attrs,
		// The engine keeps each app's last context and is sent only files
		// whose size or mtime changed (unpack makes content changes show
		// in the mtime: contentTime). Per app: another app's files are
		// never taken for this one's.
		SharedKey: instance + "/" + req.App,
		Session:   []session.Attachable{secretsprovider.FromMap(secrets)},
	}, "plat", dockerfilebuilder.Build, status)
	<-printed // c.Build closes status
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if f := pw.failure(); f != "" {
			return "", fmt.Errorf("%s\n%s", pw.redact(rootMessage(err)), f)
		}
		return "", errors.New(pw.redact(rootMessage(err)))
	}
	if id := resp.ExporterResponse[exptypes.ExporterImageDigestKey]; id != "" {
		return id, nil
	}
	return "", fmt.Errorf("build: the engine reported no image ID for %s", tag)
}

// frontendVersion is the BuildKit release whose Dockerfile frontend plat
// runs (go.mod pins it).
const frontendVersion = "v0.34"

// rootMessage is err's message without the gRPC and frontend wrapping
// ("rpc error: code = Unknown desc = ..."), which says nothing to a user.
func rootMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"rpc error: code = Unknown desc = ", "failed to solve: "} {
		if i := strings.LastIndex(msg, p); i >= 0 {
			msg = msg[i+len(p):]
		}
	}
	return strings.TrimSpace(msg)
}

// unpack writes the tar stream r (plain or gzip-compressed) into dir. Only
// regular files, directories and symbolic links are written; os.Root keeps
// every write inside dir whatever the names and links say.
func unpack(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("build: unpacking source: %w", err)
	}
	defer root.Close()
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
			return nil
		}
		if err != nil {
			return fmt.Errorf("build: the source is not a valid tar archive: %w", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if name == "" {
			continue
		}
		if err := unpackEntry(root, tr, hdr, name); err != nil {
			return fmt.Errorf("build: unpacking %s: %w", name, err)
		}
	}
}

// contentTime is the mtime a context file gets: its time in the tar (git
// archive: the commit's, in whole seconds) plus nanoseconds from a hash of
// its content. The engine sends again only files whose size or mtime
// changed since the app's last build; this way a file changed within one
// second at the same size is sent too, and an unchanged one is not.
func contentTime(t time.Time, sum uint64) time.Time {
	return t.Truncate(time.Second).Add(time.Duration(sum % uint64(time.Second)))
}

func unpackEntry(root *os.Root, tr *tar.Reader, hdr *tar.Header, name string) error {
	mode := os.FileMode(hdr.Mode).Perm()
	if parent := path.Dir(name); parent != "." {
		if err := root.MkdirAll(parent, 0o755); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.MkdirAll(name, 0o755); err != nil {
			return err
		}
		return root.Chmod(name, mode|0o700)
	case tar.TypeReg:
		f, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		h := fnv.New64a()
		if _, err := io.Copy(io.MultiWriter(f, h), tr); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		mtime := contentTime(hdr.ModTime, h.Sum64())
		return root.Chtimes(name, mtime, mtime)
	case tar.TypeSymlink:
		return root.Symlink(hdr.Linkname, name)
	}
	return nil // pax headers, hard links (git archive makes none), devices
}
