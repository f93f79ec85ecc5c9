package cli

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/plat-paas/plat/api"
)

func cmdDeployCancel(e *env, args []string) error {
	name, c, err := e.appCmd(args)
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodPost, appPath(name, "deploy", "cancel"), nil)
	if err != nil {
		return err
	}
	var res api.Cancelled
	if done, err := e.jsonOrDecode(raw, &res); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Cancelled %s of %s; the previous release keeps serving.\n", strings.Join(res.Cancelled, ", "), name)
	return nil
}
