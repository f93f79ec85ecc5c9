package daemon_test

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// revokeLimit is how soon a revoked token's open connections must close.
const revokeLimit = 2 * time.Second

// as is a view of d whose CLI and git use token instead of d.token.
func (d *daemon) as(token string) *daemon {
	c := *d
	c.token = token
	return &c
}

// createToken runs `plat tokens:create` and returns the secret.
func (d *daemon) createToken(name string, args ...string) string {
	d.t.Helper()
	secret, _ := d.createTokenExpiring(name, args...)
	return secret
}

// createTokenExpiring is createToken that also returns the expiry.
func (d *daemon) createTokenExpiring(name string, args ...string) (string, time.Time) {
	d.t.Helper()
	out := d.mustPlat(append([]string{"tokens:create", name, "--json"}, args...)...)
	var nt struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(out), &nt); err != nil || len(nt.Token) != 64 {
		d.t.Fatalf("tokens:create %s: %v\n%s", name, err, out)
	}
	return nt.Token, nt.ExpiresAt
}

// status sends an API request with a bearer token and returns its status.
func (d *daemon) status(method, path, bearer string) int {
	d.t.Helper()
	req, _ := http.NewRequest(method, "http://"+d.apiAddr+path, nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// gitStatus asks for the push advertisement with a token as git's basic
// auth password and returns the status.
func (d *daemon) gitStatus(app, token string) int {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.apiAddr+"/git/"+app+".git/info/refs?service=git-receive-pack", nil)
	req.SetBasicAuth("plat", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// logSocket opens the live-log websocket of app with the given headers.
func (d *daemon) logSocket(app string, h http.Header) *websocket.Conn {
	d.t.Helper()
	h.Set("Origin", "http://"+d.apiAddr)
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+d.apiAddr+"/api/apps/"+app+"/logs/ws", h)
	if err != nil {
		d.t.Fatalf("open log socket: %v (%v)", err, resp)
	}
	d.t.Cleanup(func() { conn.Close() })
	return conn
}

// socketClosed reads from conn until it closes and returns the close
// error, or fails when it stays open for limit.
func socketClosed(t *testing.T, conn *websocket.Conn, limit time.Duration) *websocket.CloseError {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(limit))
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue // a log line
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("log socket not closed by the daemon within %s: %v", limit, err)
		}
		return ce
	}
}

// TestTokens: tokens are listed without their secret, created with an
// expiry, refused once expired (saying so), and a revoked token is refused
// at once everywhere: API, git push (real git), its dashboard session, and
// its open live-log websockets and `plat logs -f` stream are closed.
func TestTokens(t *testing.T) {
	d := startDaemon(t)
	base := "http://" + d.apiAddr

	t.Run("list shows no secret", func(t *testing.T) {
		d.createToken("laptop", "--expires", "90d")
		out := d.mustPlat("tokens")
		for _, want := range []string{"NAME", "LAST USED", "admin (this one)", "laptop", "in 89d"} {
			if !strings.Contains(out, want) {
				t.Errorf("plat tokens lacks %q:\n%s", want, out)
			}
		}
		js := d.mustPlat("tokens", "--json")
		if strings.Contains(out, d.token) || strings.Contains(js, d.token) || strings.Contains(js, "sha256") {
			t.Errorf("plat tokens shows a secret or hash:\n%s\n%s", out, js)
		}
		if !strings.Contains(js, `"last_used"`) { // these very requests used admin
			t.Errorf("--json lacks admin's last use:\n%s", js)
		}
		if out, err := d.plat("tokens:create", "laptop"); err == nil || !strings.Contains(out, "exists") {
			t.Errorf("second token named laptop: %v\n%s", err, out)
		}
		if out, err := d.plat("tokens:create", "bad/name"); err == nil || !strings.Contains(out, "may only hold") {
			t.Errorf("token named bad/name: %v\n%s", err, out)
		}
		if out, err := d.plat("tokens:create", "x", "--expires", "5y"); err == nil || !strings.Contains(out, "units d, h, m, s") {
			t.Errorf("--expires 5y: %v\n%s", err, out)
		}
	})

	// A token deploys an app with a real git push; everything below uses it.
	dev := d.createToken("dev")
	devD := d.as(dev)
	devD.createApp("web")
	r := devD.newRepo("web")
	r.commit("v1", "")
	r.mustPush("main")
	d.mustServe("web", "version=v1")

	t.Run("expiry", func(t *testing.T) {
		// Long enough for a few requests from a -race CLI on a busy machine.
		const lifetime = 5 * time.Second
		short, expiresAt := d.createTokenExpiring("short", "--expires", lifetime.String())
		if code := d.status("GET", "/api/apps", short); code != http.StatusOK {
			t.Fatalf("API with a fresh token: %d", code)
		}
		ws := d.logSocket("web", http.Header{"Authorization": {"Bearer " + short}})
		// The open socket closes when the token expires, saying why.
		ce := socketClosed(t, ws, lifetime+revokeLimit)
		if ce.Code != websocket.ClosePolicyViolation || ce.Text != "token expired" {
			t.Errorf("socket of an expiring token closed with %d %q, want 1008 \"token expired\"", ce.Code, ce.Text)
		}
		if early := time.Until(expiresAt); early > 200*time.Millisecond {
			t.Errorf("socket closed %s before the token expired", early)
		}
		out, err := d.as(short).plat("apps")
		if err == nil || !strings.Contains(out, `token "short" expired at`) || !strings.Contains(out, "plat tokens:create") {
			t.Errorf("plat apps with an expired token: %v\n%s", err, out)
		}
		if code := d.gitStatus("web", short); code != http.StatusUnauthorized {
			t.Errorf("git with an expired token: %d, want 401", code)
		}
		if out := d.mustPlat("tokens"); !strings.Contains(out, "expired") {
			t.Errorf("plat tokens does not show short as expired:\n%s", out)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		// Open everything the dev token can hold open: a dashboard session
		// with its live-log socket, a socket with the bearer token, and a
		// `plat logs -f` stream.
		cookie := loginCookie(t, base, dev)
		if code := d.cookieStatus("/api/apps", cookie); code != http.StatusOK {
			t.Fatalf("dashboard session before the revocation: %d", code)
		}
		sessionWS := d.logSocket("web", http.Header{"Cookie": {cookie.String()}})
		bearerWS := d.logSocket("web", http.Header{"Authorization": {"Bearer " + dev}})
		follow := exec.Command(platBin, "logs", "web", "-f")
		follow.Env = devD.env()
		var followed lockedBuffer
		follow.Stdout, follow.Stderr = &followed, &followed
		must(t, follow.Start())
		followDone := make(chan error, 1)
		go func() { followDone <- follow.Wait() }()
		t.Cleanup(func() { follow.Process.Kill() })
		waitFor(t, 10*time.Second, "plat logs -f to stream", func() bool { return strings.Contains(followed.String(), "testapp") })

		out := d.mustPlat("tokens:revoke", "dev")
		revoked := time.Now()
		if !strings.Contains(out, "Revoked token dev") || !strings.Contains(out, "1 dashboard session and 3 open connections ended") {
			t.Errorf("tokens:revoke output:\n%s", out)
		}
		for name, ws := range map[string]*websocket.Conn{"session": sessionWS, "bearer": bearerWS} {
			ce := socketClosed(t, ws, revokeLimit)
			if ce.Code != websocket.ClosePolicyViolation || ce.Text != "token revoked" {
				t.Errorf("%s socket closed with %d %q, want 1008 \"token revoked\"", name, ce.Code, ce.Text)
			}
		}
		select {
		case <-followDone:
		case <-time.After(revokeLimit):
			t.Errorf("plat logs -f still streaming %s after the revocation", revokeLimit)
		}
		t.Logf("open connections seen closed %s after `plat tokens:revoke` returned", time.Since(revoked).Round(time.Millisecond))

		if code := d.status("GET", "/api/apps", dev); code != http.StatusUnauthorized {
			t.Errorf("API with the revoked token: %d, want 401", code)
		}
		if code := d.cookieStatus("/api/apps", cookie); code != http.StatusUnauthorized {
			t.Errorf("API with the revoked token's session: %d, want 401", code)
		}
		if code := d.cookieStatus("/apps/web", cookie); code != http.StatusSeeOther {
			t.Errorf("dashboard page with the revoked token's session: %d, want 303 to /login", code)
		}
		if code := d.gitStatus("web", dev); code != http.StatusUnauthorized {
			t.Errorf("git with the revoked token: %d, want 401", code)
		}
		r.commit("v2", "")
		out, err := r.push("main")
		if err == nil || !strings.Contains(out, "Authentication failed") {
			t.Errorf("git push with the revoked token: %v\n%s", err, out)
		}
		d.mustServe("web", "version=v1")
		// Other tokens are untouched.
		if code := d.status("GET", "/api/apps", d.token); code != http.StatusOK {
			t.Errorf("API with another token: %d", code)
		}
		if out, err := d.plat("tokens:revoke", "dev"); err == nil || !strings.Contains(out, "no token named") {
			t.Errorf("revoking dev twice: %v\n%s", err, out)
		}
	})

	t.Run("the last valid token needs --force", func(t *testing.T) {
		d.mustPlat("tokens:revoke", "laptop")
		out, err := d.plat("tokens:revoke", "admin") // short has expired
		if err == nil || !strings.Contains(out, "last token") || !strings.Contains(out, "--force") {
			t.Fatalf("revoking the last valid token: %v\n%s", err, out)
		}
		out = d.mustPlat("tokens:revoke", "admin", "--force")
		if !strings.Contains(out, "this CLI uses") {
			t.Errorf("revoking one's own token does not say so:\n%s", out)
		}
		if code := d.status("GET", "/api/apps", d.token); code != http.StatusUnauthorized {
			t.Errorf("API with the revoked admin token: %d", code)
		}
		// The server's root can always make a new one.
		newTok, err := exec.Command(platBin, "daemon", "token", "--data", d.data).Output()
		if err != nil {
			t.Fatal(err)
		}
		if code := d.status("GET", "/api/apps", strings.TrimSpace(string(newTok))); code != http.StatusOK {
			t.Errorf("token from plat daemon token: %d", code)
		}
		d.token = strings.TrimSpace(string(newTok))
		if out := d.mustPlat("tokens"); !strings.Contains(out, "admin (this one)") {
			t.Errorf("plat daemon token after admin was revoked is not named admin:\n%s", out)
		}
		// Run again it picks a free name; a taken --name is refused.
		if out, err := exec.Command(platBin, "daemon", "token", "--data", d.data, "--expires", "1d").CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) != 64 {
			t.Errorf("second plat daemon token: %v\n%s", err, out)
		}
		if out, err := exec.Command(platBin, "daemon", "token", "--data", d.data, "--name", "admin").CombinedOutput(); err == nil || !strings.Contains(string(out), "exists") {
			t.Errorf("plat daemon token --name admin (taken): %v\n%s", err, out)
		}
		if out := d.mustPlat("tokens"); !strings.Contains(out, "admin-2") || !strings.Contains(out, "in 23h") {
			t.Errorf("second plat daemon token is not admin-2, expiring in a day:\n%s", out)
		}
	})
}

func (d *daemon) cookieStatus(path string, c *http.Cookie) int {
	d.t.Helper()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.apiAddr+path, nil)
	req.AddCookie(c)
	resp, err := noRedirect.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAuthThrottle: failed tokens from one address are counted; past the
// limit that address gets 429 with Retry-After on the API, git and the
// login form, even with a good token (else a 429 would tell a guesser
// which guess was right), until the lockout ends. The log has one line
// per burst, not one per attempt. (Every test client is 127.0.0.1:
// loopback gets no exemption, since a local reverse proxy would make
// every client loopback.)
func TestAuthThrottle(t *testing.T) {
	const lockout = 3 * time.Second
	d := startDaemon(t, "--auth-lockout", lockout.String())
	bad := strings.Repeat("0", 64)
	for i := range 10 {
		if code := d.status("GET", "/api/apps", bad); code != http.StatusUnauthorized {
			t.Fatalf("bad token #%d: %d, want 401", i+1, code)
		}
	}
	lockedAt := time.Now()
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.apiAddr+"/api/apps", nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("good token after 10 bad ones: %d Retry-After %q, want 429 with 3", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code := d.gitStatus("web", d.token); code != http.StatusTooManyRequests {
		t.Errorf("git with a good token while locked out: %d, want 429", code)
	}
	lresp, err := http.PostForm("http://"+d.apiAddr+"/login", url.Values{"token": {d.token}})
	if err != nil {
		t.Fatal(err)
	}
	lresp.Body.Close()
	if lresp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("dashboard login while locked out: %d, want 429", lresp.StatusCode)
	}
	if out, err := d.plat("apps"); err == nil || !strings.Contains(out, "too many failed authentications") {
		t.Errorf("plat apps while locked out: %v\n%s", err, out)
	}

	time.Sleep(time.Until(lockedAt.Add(lockout + 100*time.Millisecond)))
	if code := d.status("GET", "/api/apps", d.token); code != http.StatusOK {
		t.Errorf("good token after the lockout: %d, want 200", code)
	}
	log := d.log.String()
	if n := strings.Count(log, "refused credentials"); n != 1 {
		t.Errorf("%d \"refused credentials\" log lines for one burst of 10, want 1:\n%s", n, log)
	}
	if n := strings.Count(log, "address locked out"); n != 1 || !strings.Contains(log, "ip=127.0.0.1") || !strings.Contains(log, "failures=10") {
		t.Errorf("lockout log (%d lines) does not name the address and count once:\n%s", n, log)
	}
}

// TestHTTPSSessionCookie: over HTTPS the dashboard's session cookie is
// __Host-plat_session (Secure, Path=/, no Domain), so an app's host cannot
// set or overwrite it; a plain-named cookie is not a session there. Over
// plain HTTP the cookie is plat_session, not Secure.
func TestHTTPSSessionCookie(t *testing.T) {
	httpsAddr := freePort(t)
	d := startDaemon(t, "--https", httpsAddr)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(d.mustPlat("ca"))) {
		t.Fatal("plat ca printed no certificate")
	}
	client := httpsClient(httpsAddr, roots)
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	_, port, _ := net.SplitHostPort(httpsAddr)
	apiURL := "https://plat.localhost:" + port

	resp, err := client.PostForm(apiURL+"/login", url.Values{"token": {d.token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	setCookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"__Host-plat_session=", "Path=/", "Secure", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("HTTPS login Set-Cookie %q lacks %q", setCookie, want)
		}
	}
	if strings.Contains(strings.ToLower(setCookie), "domain=") {
		t.Errorf("HTTPS login Set-Cookie %q has a Domain", setCookie)
	}
	value := strings.TrimPrefix(strings.SplitN(setCookie, ";", 2)[0], "__Host-plat_session=")
	get := func(name string) int {
		req, _ := http.NewRequest(http.MethodGet, apiURL+"/api/apps", nil)
		req.AddCookie(&http.Cookie{Name: name, Value: value})
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("__Host-plat_session"); code != http.StatusOK {
		t.Errorf("HTTPS API with the __Host- cookie: %d, want 200", code)
	}
	if code := get("plat_session"); code != http.StatusUnauthorized {
		t.Errorf("HTTPS API with a plain-named cookie (what a sibling host could set): %d, want 401", code)
	}

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	plain, err := noRedirect.PostForm("http://"+d.apiAddr+"/login", url.Values{"token": {d.token}})
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if sc := plain.Header.Get("Set-Cookie"); !strings.HasPrefix(sc, "plat_session=") || strings.Contains(sc, "Secure") {
		t.Errorf("HTTP login Set-Cookie %q: want plat_session, not Secure", sc)
	}
}
