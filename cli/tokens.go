package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/plat-paas/plat/api"
)

func cmdTokens(e *env, args []string) error {
	if _, err := e.parse(e.flags(), args, 0, 0); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var toks []api.Token
	raw, err := c.get(e.ctx, "/api/tokens", &toks)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	rows := [][]string{{"NAME", "CREATED", "LAST USED", "EXPIRES"}}
	for _, t := range toks {
		name := t.Name
		if t.Current {
			name += " (this one)"
		}
		rows = append(rows, []string{name, ago(t.CreatedAt), ago(t.LastUsed), expiresIn(t.ExpiresAt)})
	}
	table(e.stdout, rows)
	return nil
}

// expiresIn formats an expiry: "never", "in 89d", "expired 2h ago".
func expiresIn(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := t.Sub(now())
	switch {
	case d <= 0:
		return "expired " + ago(t)
	case d < time.Minute:
		return fmt.Sprintf("in %ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("in %dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("in %dh", int(d/time.Hour))
	}
	return fmt.Sprintf("in %dd", int(d/(24*time.Hour)))
}

func cmdTokensCreate(e *env, args []string) error {
	fs := e.flags()
	expires := fs.String("expires", "", "lifetime such as 90d, 12h, 30m or 1d12h (default: never expires)")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	body := map[string]string{"name": pos[0]}
	if *expires != "" {
		body["expires_in"] = *expires
	}
	raw, err := c.call(e.ctx, http.MethodPost, "/api/tokens", body)
	if err != nil {
		return err
	}
	var t api.NewToken
	if done, err := e.jsonOrDecode(raw, &t); done || err != nil {
		return err
	}
	exp := "never expires"
	if !t.ExpiresAt.IsZero() {
		exp = "expires " + t.ExpiresAt.Local().Format("2006-01-02 15:04 MST") + ", " + expiresIn(t.ExpiresAt)
	}
	fmt.Fprintf(e.stdout, "Created token %s (%s). Copy it now: it is not shown again.\n\n    %s\n\nUse it with: plat login %s --token TOKEN\n", t.Name, exp, t.Token, c.base)
	return nil
}

func cmdTokensRevoke(e *env, args []string) error {
	fs := e.flags()
	force := fs.Bool("force", false, "revoke it even if it is the last token that has not expired")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	path := "/api/tokens/" + url.PathEscape(pos[0])
	if *force {
		path += "?force=true"
	}
	raw, err := c.call(e.ctx, http.MethodDelete, path, nil)
	if err != nil {
		return err
	}
	var r api.Revoked
	if done, err := e.jsonOrDecode(raw, &r); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Revoked token %s: it is refused from now on; %s and %s ended.\n",
		r.Revoked, plural(r.SessionsEnded, "dashboard session"), plural(r.RequestsEnded, "open connection"))
	if r.Current {
		fmt.Fprintln(e.stdout, "That was the token this CLI uses: log in with another one (`plat login URL --token TOKEN`).")
	}
	return nil
}
