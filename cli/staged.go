package cli

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/plat-paas/plat/api"
)

func cmdReleaseMode(e *env, args []string) error {
	pos, err := e.parse(e.flags(), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodGet, appPath(pos[0], "release-mode"), nil)
	if err != nil {
		return err
	}
	var m api.ReleaseMode
	if done, err := e.jsonOrDecode(raw, &m); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: release mode %s (%s)\n", pos[0], m.Mode, describeReleaseMode(m.Mode))
	return nil
}

func describeReleaseMode(mode string) string {
	if mode == api.ReleaseModeManual {
		return "pushes and config changes are staged; plat promote releases them"
	}
	return "pushes and config changes go live"
}

func cmdReleaseModeSet(e *env, args []string) error {
	pos, err := e.parse(e.flags(), args, 2, 2)
	if err != nil {
		return err
	}
	if pos[1] != api.ReleaseModeAuto && pos[1] != api.ReleaseModeManual {
		return usagef("release mode %q: use auto or manual", pos[1])
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodPut, appPath(pos[0], "release-mode"), api.ReleaseMode{Mode: pos[1]})
	if err != nil {
		return err
	}
	var m api.ReleaseMode
	if done, err := e.jsonOrDecode(raw, &m); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: release mode %s (%s)\n", pos[0], m.Mode, describeReleaseMode(m.Mode))
	return nil
}

func cmdPromote(e *env, args []string) error {
	name, v, err := e.releaseArgs(args)
	if err != nil {
		return err
	}
	return e.deploy(name, appPath(name, "releases", strconv.Itoa(v), "promote"), struct{}{}, func(r api.Release) string {
		return fmt.Sprintf("promoted %s v%d: it is live", name, r.Version)
	})
}

func cmdUnstage(e *env, args []string) error {
	name, v, err := e.releaseArgs(args)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodPost, appPath(name, "releases", strconv.Itoa(v), "unstage"), struct{}{})
	if err != nil {
		return err
	}
	var r api.Release
	if done, err := e.jsonOrDecode(raw, &r); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Unstaged %s v%d: its containers are stopped\n", name, r.Version)
	return nil
}
