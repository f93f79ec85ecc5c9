package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// liveLoad sends GETs to app through the router from two clients until
// stop is called, which returns how many were sent and how many failed
// (a transport error or a status other than 200).
func liveLoad(t *testing.T, d *daemon, app, path string) (stop func() (sent, failed int64)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var sentN, failedN atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				req, _ := http.NewRequest(http.MethodGet, "http://"+d.httpAddr+path, nil)
				req.Host = app + ".localhost"
				resp, err := client.Do(req)
				sentN.Add(1)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = &statusError{resp.StatusCode}
					}
				}
				if err != nil {
					failedN.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	return func() (int64, int64) {
		cancel()
		wg.Wait()
		if e := firstErr.Load(); e != nil {
			t.Logf("first failed live request: %v", e)
		}
		return sentN.Load(), failedN.Load()
	}
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }

// flagGet fetches /?echo=Plat-Flags&echo=Cookie from app with cookie and
// client headers; it returns the body and the plat_uid Set-Cookie.
func flagGet(t *testing.T, d *daemon, app, cookie, platFlags string) (body, setUID string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.httpAddr+"/?echo=Plat-Flags&echo=Cookie", nil)
	req.Host = app + ".localhost"
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	if platFlags != "" {
		req.Header.Set("Plat-Flags", platFlags)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "plat_uid=") {
			setUID = c
		}
	}
	return string(b), setUID
}

// TestFeatureFlags: flags:set/flags/flags:unset change what the app sees in
// Plat-Flags within a second, with no new release, under live load with no
// failed request; the browser id cookie is set once and never reaches the
// app; a client-sent Plat-Flags is dropped; bad input changes nothing; each
// change is an event.
func TestFeatureFlags(t *testing.T) {
	t.Parallel()
	requireTools(t)
	d := startDaemon(t)
	d.deployedApp("flagged", "v1")
	stop := liveLoad(t, d, "flagged", "/")

	// No flags yet: no cookie, and a forged header does not get through.
	if body, setUID := flagGet(t, d, "flagged", "", "admin"); setUID != "" || !strings.Contains(body, "Plat-Flags=[]") {
		t.Errorf("without flags: body %q, Set-Cookie %q; want no flags and no cookie", body, setUID)
	}

	out := d.mustPlat("flags:set", "flagged", "new-checkout=25%", "beta=on")
	if !strings.Contains(out, "new-checkout") || !strings.Contains(out, "25% of users") || !strings.Contains(out, "on (everyone)") {
		t.Errorf("flags:set printed:\n%s", out)
	}
	body, setUID := flagGet(t, d, "flagged", "", "admin")
	if !strings.Contains(setUID, "HttpOnly") || !strings.Contains(setUID, "SameSite=Lax") {
		t.Fatalf("first answer after flags:set: Set-Cookie %q; want an HttpOnly SameSite=Lax plat_uid", setUID)
	}
	if !strings.Contains(body, "beta") || strings.Contains(body, "admin") {
		t.Errorf("first answer: %q; want beta on and the forged admin flag gone", body)
	}
	uidCookie, _, _ := strings.Cut(setUID, ";")
	body, again := flagGet(t, d, "flagged", uidCookie+"; theme=dark", "")
	if again != "" || strings.Contains(body, "plat_uid") || !strings.Contains(body, "Cookie=[theme=dark]") {
		t.Errorf("with the id cookie: body %q, Set-Cookie %q; want no new cookie and the id not forwarded", body, again)
	}

	// Off applies within a second.
	d.mustPlat("flags:set", "flagged", "beta=off")
	deadline := time.Now().Add(time.Second)
	for {
		body, _ = flagGet(t, d, "flagged", uidCookie, "")
		if !strings.Contains(body, "beta") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("beta=off did not apply within a second: %q", body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Bad input: a clear error, and nothing changes (the API is checked too,
	// not only the CLI).
	if out, err := d.plat("flags:set", "flagged", "x=140%"); err == nil || !strings.Contains(out, "0% to 100%") {
		t.Errorf("flags:set x=140%%: err %v, output %q", err, out)
	}
	for _, bad := range []string{`{"flags":{"x":140}}`, `{"flags":{"Bad Name":10}}`, `{"flags":{"ok":5,"worse":-1}}`} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+d.apiAddr+"/api/apps/flagged/flags", strings.NewReader(bad))
		req.Header.Set("Authorization", "Bearer "+d.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "nothing was changed") {
			t.Errorf("POST %s: %d %s; want 400 saying nothing changed", bad, resp.StatusCode, msg)
		}
	}
	var listed struct {
		Flags []struct {
			Name    string `json:"name"`
			Percent int    `json:"percent"`
		} `json:"flags"`
	}
	if err := json.Unmarshal([]byte(d.mustPlat("flags", "flagged", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed.Flags) != 2 || listed.Flags[0].Name != "beta" || listed.Flags[0].Percent != 0 ||
		listed.Flags[1].Name != "new-checkout" || listed.Flags[1].Percent != 25 {
		t.Errorf("flags --json after the bad input: %+v; want beta 0, new-checkout 25", listed.Flags)
	}

	d.mustPlat("flags:unset", "flagged", "beta")
	if out, err := d.plat("flags:unset", "flagged", "beta"); err == nil || !strings.Contains(out, `no flag "beta"`) {
		t.Errorf("unsetting a missing flag: err %v, output %q", err, out)
	}
	if out := d.mustPlat("flags", "flagged"); strings.Contains(out, "beta") || !strings.Contains(out, "new-checkout") {
		t.Errorf("flags after unset:\n%s", out)
	}
	events := d.mustPlat("events", "flagged")
	for _, want := range []string{"flags set: beta=on, new-checkout=25%", "flags set: beta=off", "flag removed: beta"} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %q:\n%s", want, events)
		}
	}
	if rels := d.mustPlat("releases", "flagged"); strings.Contains(rels, "v2") {
		t.Errorf("a flag change made a release:\n%s", rels)
	}
	if sent, failed := stop(); failed != 0 || sent == 0 {
		t.Errorf("live load while flipping flags: %d of %d requests failed", failed, sent)
	}
}
