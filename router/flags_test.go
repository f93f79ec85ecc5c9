package router

import (
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// flagEcho is a backend that answers with the Plat-Flags and Cookie
// headers it received.
func flagEcho(t *testing.T) *httptest.Server {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Join(r.Header.Values(FlagsHeader), "|")+"\n"+strings.Join(r.Header.Values("Cookie"), "|"))
	}))
	t.Cleanup(app.Close)
	return app
}

type flagReply struct {
	flags, cookies, setUID string
}

func getFlags(t *testing.T, front *httptest.Server, cookie string, hdr map[string]string) flagReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
	req.Host = "app.localhost"
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	flags, cookies, _ := strings.Cut(string(body), "\n")
	out := flagReply{flags: flags, cookies: cookies}
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, UIDCookie+"=") {
			out.setUID = c
		}
	}
	return out
}

func TestFlagsHeaderAndUIDCookie(t *testing.T) {
	app := flagEcho(t)
	r := New(Options{})
	front := httptest.NewServer(r)
	defer front.Close()
	route := Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{NewBackend(strings.TrimPrefix(app.URL, "http://"))}}
	if _, err := r.Set(route); err != nil {
		t.Fatal(err)
	}

	// No flags: no cookie set, client-sent flags and a stale uid cookie removed.
	got := getFlags(t, front, "a=1; "+UIDCookie+"=abc; b=2", map[string]string{FlagsHeader: "admin"})
	if got.flags != "" || got.setUID != "" || got.cookies != "a=1; b=2" {
		t.Fatalf("without flags: got %+v; want no flags, no Set-Cookie, cookies a=1; b=2", got)
	}

	route.Flags = []Flag{{Name: "beta", Percent: 100}, {Name: "off", Percent: 0}, {Name: "half", Percent: 50}}
	if _, err := r.Set(route); err != nil {
		t.Fatal(err)
	}
	first := getFlags(t, front, "", map[string]string{FlagsHeader: "off"})
	for _, attr := range []string{"HttpOnly", "SameSite=Lax", "Max-Age=63072000", "Path=/"} {
		if !strings.Contains(first.setUID, attr) {
			t.Errorf("uid cookie %q lacks %s", first.setUID, attr)
		}
	}
	if strings.Contains(first.setUID, "Secure") {
		t.Errorf("uid cookie %q is Secure over plain HTTP", first.setUID)
	}
	uid, _, _ := strings.Cut(strings.TrimPrefix(first.setUID, UIDCookie+"="), ";")
	if len(uid) != 32 {
		t.Fatalf("uid %q: want 32 hex characters", uid)
	}
	want := "beta"
	if FlagBucket("half", uid) < 50 {
		want = "beta,half"
	}
	if first.flags != want {
		t.Errorf("first answer: Plat-Flags %q, want %q (client-sent 'off' must be dropped)", first.flags, want)
	}
	again := getFlags(t, front, UIDCookie+"="+uid, map[string]string{FlagsHeader: "off,admin"})
	if again.flags != want || again.setUID != "" || again.cookies != "" {
		t.Errorf("with the cookie: got %+v; want flags %q, no new cookie, no cookie forwarded", again, want)
	}
}

func TestFlagsPercentageIsStickyAndMonotonic(t *testing.T) {
	app := flagEcho(t)
	r := New(Options{})
	front := httptest.NewServer(r)
	defer front.Close()
	route := Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{NewBackend(strings.TrimPrefix(app.URL, "http://"))}}
	const users = 400
	on := func(percent int) map[int]bool {
		route.Flags = []Flag{{Name: "new-checkout", Percent: percent}}
		if _, err := r.Set(route); err != nil {
			t.Fatal(err)
		}
		out := map[int]bool{}
		for u := range users {
			if getFlags(t, front, UIDCookie+"=user"+strconv.Itoa(u), nil).flags == "new-checkout" {
				out[u] = true
			}
		}
		return out
	}
	at25, at25again, at50 := on(25), on(25), on(50)
	if n := len(at25); n < users*15/100 || n > users*35/100 {
		t.Errorf("25%%: %d of %d users have the flag", n, users)
	}
	if n := len(at50); n < users*40/100 || n > users*60/100 {
		t.Errorf("50%%: %d of %d users have the flag", n, users)
	}
	for u := range at25 {
		if !at25again[u] {
			t.Errorf("user %d lost the flag on a second pass at 25%%", u)
		}
		if !at50[u] {
			t.Errorf("user %d had the flag at 25%% but not at 50%%", u)
		}
	}
}

func TestFlagsRejected(t *testing.T) {
	r := New(Options{})
	for _, f := range []Flag{{Name: "x", Percent: 140}, {Name: "x", Percent: -1}, {Name: "Bad Name", Percent: 10}, {Name: "a,b", Percent: 10}, {Name: "", Percent: 10}} {
		_, err := r.Set(Route{App: "app", Hosts: []string{"app.localhost"}, Flags: []Flag{f}})
		if err == nil {
			t.Errorf("flag %+v accepted", f)
		}
	}
	if _, err := r.Set(Route{App: "app", Hosts: []string{"app.localhost"}, Flags: []Flag{{Name: "a", Percent: 1}, {Name: "a", Percent: 2}}}); err == nil {
		t.Error("a flag given twice was accepted")
	}
}

func TestFlagsCookieSecureOverTLS(t *testing.T) {
	app := flagEcho(t)
	r := New(Options{})
	front := httptest.NewTLSServer(r)
	defer front.Close()
	if _, err := r.Set(Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{NewBackend(strings.TrimPrefix(app.URL, "http://"))},
		Flags: []Flag{{Name: "beta", Percent: 100}}}); err != nil {
		t.Fatal(err)
	}
	got := getFlags(t, front, "", nil)
	if !strings.Contains(got.setUID, "; Secure") || got.flags != "beta" {
		t.Errorf("over TLS: got %+v; want a Secure uid cookie and beta on", got)
	}
}

// TestFlagBucketIsFNV1a pins the hash: changing it would move every user's
// flags at the next daemon upgrade.
func TestFlagBucketIsFNV1a(t *testing.T) {
	for _, c := range []struct{ name, uid string }{{"beta", "0123456789abcdef0123456789abcdef"}, {"new-checkout", "u1"}, {"x", ""}} {
		h := fnv.New64a()
		_, _ = h.Write([]byte(c.name + "\x00" + c.uid))
		if want := int(h.Sum64() % 100); FlagBucket(c.name, c.uid) != want {
			t.Errorf("FlagBucket(%q, %q) = %d, want %d", c.name, c.uid, FlagBucket(c.name, c.uid), want)
		}
	}
}
