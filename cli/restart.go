package cli

import (
	"encoding/json"
	"fmt"

	"github.com/plat-paas/plat/api"
)

func cmdRestart(e *env, args []string) error {
	name, _, err := e.appCmd(args)
	if err != nil {
		return err
	}
	raw, err := e.operation(appPath(name, "restart"), nil, "plat ps "+name)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	var a api.App
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("unexpected app in the answer: %v", err)
	}
	fmt.Fprintf(e.stdout, "Restarted %s: %s of v%d\n", name, plural(a.Replicas, "replica"), a.Active)
	return nil
}
