package cli

import (
	"io"
	"net/http"
	"strconv"
)

// cmdReleasesDockerfile prints the Dockerfile plat generated for a release
// whose push had none: commit it as Dockerfile to take over the build.
func cmdReleasesDockerfile(e *env, args []string) error {
	pos, err := e.parse(e.flags(), args, 2, 2)
	if err != nil {
		return err
	}
	name := pos[0]
	v, err := parseVersion(pos[1])
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	resp, err := c.do(e.ctx, true, http.MethodGet, appPath(name, "releases", strconv.Itoa(v), "dockerfile"), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return c.transportError(e.ctx, err)
	}
	if e.json {
		return writeJSON(e.stdout, map[string]any{"app": name, "version": v, "dockerfile": string(b)})
	}
	_, err = e.stdout.Write(b)
	return err
}
