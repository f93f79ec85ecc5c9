package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/plat-paas/plat/api"
)

// maxPubKeyFile bounds what keys:add reads: a .pub file is one short line.
const maxPubKeyFile = 64 << 10

func cmdKeys(e *env, args []string) error {
	if _, err := e.parse(e.flags(), args, 0, 0); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var keys []api.SSHKey
	if _, err := c.get(e.ctx, "/api/keys", &keys); err != nil {
		return err
	}
	var info api.SSHInfo
	if _, err := c.get(e.ctx, "/api/ssh", &info); err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, struct {
			Keys []api.SSHKey `json:"keys"`
			SSH  api.SSHInfo  `json:"ssh"`
		}{keys, info})
	}
	if info.Enabled {
		fmt.Fprintf(e.stdout, "SSH on port %d, host key %s\n\n", info.Port, info.HostKeyFingerprint)
	} else {
		fmt.Fprintf(e.stdout, "SSH is off on this daemon (plat daemon --ssh ADDR turns it on)\n\n")
	}
	if len(keys) == 0 {
		fmt.Fprintln(e.stdout, "No SSH keys yet: add one with `plat keys:add NAME ~/.ssh/id_ed25519.pub`")
		return nil
	}
	rows := [][]string{{"NAME", "TYPE", "FINGERPRINT", "ADDED"}}
	for _, k := range keys {
		rows = append(rows, []string{k.Name, k.Type, k.Fingerprint, ago(k.AddedAt)})
	}
	table(e.stdout, rows)
	return nil
}

func cmdKeysAdd(e *env, args []string) error {
	pos, err := e.parse(e.flags(), args, 2, 2)
	if err != nil {
		return err
	}
	name, path := pos[0], pos[1]
	var r io.Reader = e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("read the public key: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxPubKeyFile+1))
	if err != nil {
		return fmt.Errorf("read the public key: %w", err)
	}
	if len(data) > maxPubKeyFile {
		return errors.New("the public key file is too large: pass a .pub file, e.g. ~/.ssh/id_ed25519.pub")
	}
	// Never sent anywhere: a private key stays on this machine.
	if strings.Contains(string(data), "PRIVATE KEY") {
		return fmt.Errorf("%s is a private key: pass the public key instead (%s.pub)", path, strings.TrimSuffix(path, ".pub"))
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodPost, "/api/keys", map[string]string{"name": name, "public_key": string(data)})
	if err != nil {
		return err
	}
	var k api.SSHKey
	if done, err := e.jsonOrDecode(raw, &k); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Added SSH key %s (%s %s).\nPush over SSH: plat git:remote APP --ssh, then git push platform main\n", k.Name, k.Type, k.Fingerprint)
	return nil
}

func cmdKeysRemove(e *env, args []string) error {
	pos, err := e.parse(e.flags(), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodDelete, "/api/keys/"+url.PathEscape(pos[0]), nil)
	if err != nil {
		return err
	}
	var r api.KeyRemoved
	if done, err := e.jsonOrDecode(raw, &r); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Removed SSH key %s (%s): its next connection is refused.\n", r.Removed, r.Fingerprint)
	return nil
}

// sshRemoteURL is the git URL of app over SSH: the host of the daemon's
// URL, the port the daemon serves SSH on.
func sshRemoteURL(base string, port int, app string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("cannot take the host from the daemon URL %q", base)
	}
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("ssh://plat@%s:%d/%s", host, port, app), nil
}
