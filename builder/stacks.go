package builder

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Stacks plat can build without a Dockerfile (detect.go), as named in
// `plat daemon --base-image STACK=IMAGE`.
const (
	StackNode   = "node"
	StackGo     = "go"
	StackPython = "python"
	StackRuby   = "ruby"
	StackStatic = "static"
)

// Default base images of generated Dockerfiles: the official images. The
// Go stack builds on DefaultGoImage and runs the static binary FROM
// scratch; a static site built by a package.json script builds on the node
// image and is served from the static one.
const (
	DefaultNodeImage   = "node:24-slim"
	DefaultGoImage     = "golang:1.26"
	DefaultPythonImage = "python:3.14-slim"
	DefaultRubyImage   = "ruby:3.4"
	DefaultStaticImage = "busybox:1.37"
)

// BaseImages maps a stack to the image its generated Dockerfiles build FROM.
type BaseImages map[string]string

// DefaultBaseImages returns the default base image of every stack.
func DefaultBaseImages() BaseImages {
	return BaseImages{
		StackNode:   DefaultNodeImage,
		StackGo:     DefaultGoImage,
		StackPython: DefaultPythonImage,
		StackRuby:   DefaultRubyImage,
		StackStatic: DefaultStaticImage,
	}
}

// Stacks returns the stack names in a stable order.
func Stacks() []string {
	return []string{StackNode, StackGo, StackPython, StackRuby, StackStatic}
}

// image returns the base image of stack: the configured one, else the
// default.
func (b BaseImages) image(stack string) string {
	if img := b[stack]; img != "" {
		return img
	}
	return DefaultBaseImages()[stack]
}

// Set parses one `STACK=IMAGE` (the --base-image flag, repeatable).
func (b BaseImages) Set(s string) error {
	stack, img, ok := strings.Cut(s, "=")
	stack, img = strings.TrimSpace(stack), strings.TrimSpace(img)
	if !ok || stack == "" || img == "" {
		return fmt.Errorf("base image %q: want STACK=IMAGE, e.g. node=%s", s, DefaultNodeImage)
	}
	if !slices.Contains(Stacks(), stack) {
		return fmt.Errorf("base image %q: unknown stack %q; the stacks are %s", s, stack, strings.Join(Stacks(), ", "))
	}
	if strings.ContainsAny(img, " \t\r\n") {
		return fmt.Errorf("base image %q: an image reference has no blanks", s)
	}
	b[stack] = img
	return nil
}

// String lists the configured images as STACK=IMAGE,... (flag.Value).
func (b BaseImages) String() string {
	var parts []string
	for _, stack := range slices.Sorted(maps.Keys(b)) {
		parts = append(parts, stack+"="+b[stack])
	}
	return strings.Join(parts, ",")
}
