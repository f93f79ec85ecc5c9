package engine

import (
	"context"
	"fmt"
	"io"
	"net"
)

// BuildKitDialer is implemented by engines that embed BuildKit and serve
// its gRPC API and build sessions over the Engine API (Docker's /grpc and
// /session hijack endpoints, as a "docker" buildx driver uses them).
type BuildKitDialer interface {
	// DialBuildKit opens a hijacked connection to the engine at path
	// ("/grpc" or "/session") speaking proto ("h2c" for gRPC), with the
	// given headers (a session's metadata).
	DialBuildKit(ctx context.Context, path, proto string, meta map[string][]string) (net.Conn, error)
}

var _ BuildKitDialer = (*Docker)(nil)

// ImagePublisher is implemented by engines whose nodes pull images from a
// registry (swarm mode): an image built outside Engine.Build (a BuildKit
// build talks to the manager's engine directly) must be published before a
// service can run it on any node.
type ImagePublisher interface {
	// Publish pushes the image with this ID (tagged by the build) to the
	// registry, writing a progress line to out.
	Publish(ctx context.Context, imageID string, out io.Writer) error
}

// DialBuildKit implements BuildKitDialer.
func (d *Docker) DialBuildKit(ctx context.Context, path, proto string, meta map[string][]string) (net.Conn, error) {
	conn, err := d.cli.DialHijack(ctx, path, proto, meta)
	if err != nil {
		return nil, fmt.Errorf("dial the engine's BuildKit at %s: %w", path, err)
	}
	return conn, nil
}
