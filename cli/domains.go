package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/plat-paas/plat/api"
)

func cmdDomains(e *env, args []string) error {
	name, c, err := e.appCmd(args)
	if err != nil {
		return err
	}
	var d api.Domains
	raw, err := c.get(e.ctx, appPath(name, "domains"), &d)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	printDomains(e.stdout, d)
	return nil
}

func printDomains(w io.Writer, d api.Domains) {
	rows := [][]string{{"DOMAIN", "KIND"}, {d.Default, "default"}}
	for _, h := range d.Domains {
		rows = append(rows, []string{h, "custom"})
	}
	table(w, rows)
}

// domainCmd parses NAME HOST and returns them with a client.
func (e *env) domainCmd(args []string) (string, string, *client, error) {
	pos, err := e.parse(e.flags(), args, 2, 2)
	if err != nil {
		return "", "", nil, err
	}
	c, err := e.client()
	return pos[0], pos[1], c, err
}

func cmdDomainsAdd(e *env, args []string) error {
	name, host, c, err := e.domainCmd(args)
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodPost, appPath(name, "domains"), map[string]string{"domain": host})
	if err != nil {
		return err
	}
	return e.domainsDone(raw, "Added", host)
}

func cmdDomainsRemove(e *env, args []string) error {
	name, host, c, err := e.domainCmd(args)
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodDelete, appPath(name, "domains", url.PathEscape(host)), nil)
	if err != nil {
		return err
	}
	return e.domainsDone(raw, "Removed", host)
}

func (e *env) domainsDone(raw []byte, verb, host string) error {
	var d api.Domains
	if done, err := e.jsonOrDecode(raw, &d); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s %s (%s); it applies now. Domains of %s:\n", verb, host, d.App, d.App)
	printDomains(e.stdout, d)
	return nil
}

// cmdCA prints the daemon's local CA root certificate (PEM), for users to
// trust: `plat ca > plat-root.pem`.
func cmdCA(e *env, args []string) error {
	if _, err := e.parse(e.flags(), args, 0, 0); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	resp, err := c.do(e.ctx, false, http.MethodGet, "/api/ca", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	pem, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return c.transportError(e.ctx, err)
	}
	if e.json {
		return writeJSON(e.stdout, map[string]string{"root_pem": string(pem)})
	}
	_, err = e.stdout.Write(pem)
	return err
}
