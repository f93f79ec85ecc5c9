package router

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Feature flags at the edge: an app's route may carry flags (Route.Flags),
// each on for a percentage of users. The router gives each browser a stable
// random id in UIDCookie and tells the app which flags are on for that user
// in the FlagsHeader of the request it proxies.
const (
	// UIDCookie holds a browser's random id. The router sets it on the first
	// answer of an app with flags and strips it from requests, like
	// BucketCookie: the app never sees it.
	UIDCookie = "plat_uid"
	// UIDMaxAge is how long a browser keeps its id: long, so a user keeps
	// the same flags across visits.
	UIDMaxAge = 2 * 365 * 24 * time.Hour
	// FlagsHeader lists the flags on for the request's user, comma
	// separated, in name order. A client-sent one is always removed.
	FlagsHeader = "Plat-Flags"
	// MaxFlags bounds an app's flags (each costs a hash per request).
	MaxFlags = 64
	// maxUIDLen bounds the ids the router accepts from a client.
	maxUIDLen = 64
)

// FlagName is what a flag's name must match: a lower-case token that fits in
// a header list (no commas or spaces).
var FlagName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Flag is one feature flag of a route: on for Percent percent of users
// (0: no one, 100: everyone).
type Flag struct {
	Name    string
	Percent int
}

// ValidateFlag returns an error that says what is wrong with f, or nil.
func ValidateFlag(f Flag) error {
	if !FlagName.MatchString(f.Name) {
		return fmt.Errorf("flag name %q is not valid: use 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", f.Name)
	}
	if f.Percent < 0 || f.Percent > 100 {
		return fmt.Errorf("flag %s: %d%% is not a percentage: give 0 to 100 (or on/off)", f.Name, f.Percent)
	}
	return nil
}

// flagSet is the serving form of Route.Flags, sorted by name.
type flagSet struct {
	flags []Flag
	// maxLen is the longest FlagsHeader value: all names and commas, so a
	// header is built with one allocation.
	maxLen int
}

// newFlagSet validates flags and returns their serving form, nil if none.
func newFlagSet(app string, flags []Flag) (*flagSet, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	if len(flags) > MaxFlags {
		return nil, fmt.Errorf("%w: app %s: %d flags; at most %d", ErrInvalidRoute, app, len(flags), MaxFlags)
	}
	fs := &flagSet{flags: make([]Flag, 0, len(flags))}
	for _, f := range flags {
		if err := ValidateFlag(f); err != nil {
			return nil, fmt.Errorf("%w: app %s: %w", ErrInvalidRoute, app, err)
		}
		fs.flags = append(fs.flags, f)
		fs.maxLen += len(f.Name) + 1
	}
	slices.SortFunc(fs.flags, func(a, b Flag) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(fs.flags); i++ {
		if fs.flags[i].Name == fs.flags[i-1].Name {
			return nil, fmt.Errorf("%w: app %s: flag %s given twice", ErrInvalidRoute, app, fs.flags[i].Name)
		}
	}
	return fs, nil
}

// FlagBucket is the user's bucket 0..99 for flag name: a flag at p% is on
// for uid iff FlagBucket(name, uid) < p. It hashes the flag's name with the
// id, so each flag picks its own users, and a user's bucket never changes:
// raising p keeps everyone who had the flag on.
func FlagBucket(name, uid string) int {
	// FNV-1a, 64 bits, of name, a zero byte and uid: inline, so that it
	// does not allocate (hash/fnv's would, per flag and request).
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * prime
	}
	h *= prime // the zero byte: h ^ 0 == h
	for i := 0; i < len(uid); i++ {
		h = (h ^ uint64(uid[i])) * prime
	}
	return int(h % 100)
}

// header returns the FlagsHeader value for uid: the flags on for it, ""
// if none.
func (fs *flagSet) header(uid string) string {
	var b strings.Builder
	for _, f := range fs.flags {
		if f.Percent >= 100 || (f.Percent > 0 && FlagBucket(f.Name, uid) < f.Percent) {
			if b.Len() > 0 {
				b.WriteByte(',')
			} else {
				b.Grow(fs.maxLen)
			}
			b.WriteString(f.Name)
		}
	}
	return b.String()
}

// applyFlags removes client-sent flags, ShadowHeader and the UIDCookie from req and, when
// rt has flags, adds the FlagsHeader for the browser's id. A browser without
// a valid id gets a new one, which the returned writer sets as a cookie on
// the answer; otherwise w is returned as is.
func applyFlags(w http.ResponseWriter, req *http.Request, rt *route) http.ResponseWriter {
	delete(req.Header, FlagsHeader)
	delete(req.Header, ShadowHeader) // only the router marks mirrored requests
	uid := takeUID(req)
	if rt == nil || rt.flags == nil {
		return w
	}
	if uid == "" {
		uid = newRequestID() + newRequestID() // 128 random bits
		w = &cookieWriter{ResponseWriter: w, setCookie: uidCookie(uid, req.TLS != nil)}
	}
	if v := rt.flags.header(uid); v != "" {
		req.Header[FlagsHeader] = []string{v}
	}
	return w
}

// uidCookie is the Set-Cookie value that gives a browser its id (Secure
// over HTTPS).
func uidCookie(uid string, secure bool) string {
	c := UIDCookie + "=" + uid + uidCookieAttrs
	if secure {
		c += "; Secure"
	}
	return c
}

var uidCookieAttrs = "; Path=/; Max-Age=" + strconv.Itoa(int(UIDMaxAge/time.Second)) + "; HttpOnly; SameSite=Lax"

// takeUID removes UIDCookie from req's Cookie headers and returns its value,
// "" if there is none or it is not a plausible id. Requests without it cost a
// substring search per Cookie header.
func takeUID(req *http.Request) string {
	lines := req.Header["Cookie"]
	found := false
	for _, l := range lines {
		if strings.Contains(l, UIDCookie) {
			found = true
			break
		}
	}
	if !found {
		return ""
	}
	uid := ""
	var kept []string
	for _, l := range lines {
		if !strings.Contains(l, UIDCookie) {
			kept = append(kept, l)
			continue
		}
		if rest := stripUID(l, &uid); rest != "" {
			kept = append(kept, rest)
		}
	}
	if len(kept) == 0 {
		delete(req.Header, "Cookie")
	} else {
		req.Header["Cookie"] = kept
	}
	return uid
}

// stripUID returns the Cookie header line l without UIDCookie pairs (""
// if nothing else is left) and stores the first valid id it had in *uid if
// that is still "".
func stripUID(l string, uid *string) string {
	rest, v := stripCookie(l, UIDCookie, validUID)
	if *uid == "" {
		*uid = v
	}
	return rest
}

// validUID accepts the ids the router hands out and any other short token
// a client kept (letters, digits, '-', '_').
func validUID(v string) bool {
	if v == "" || len(v) > maxUIDLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// cookieWriter adds a Set-Cookie to the final response head (not to 1xx
// ones, which ReverseProxy clears the header map after).
type cookieWriter struct {
	http.ResponseWriter
	setCookie string
	done      bool
}

func (cw *cookieWriter) WriteHeader(code int) {
	if !cw.done && code >= 200 {
		cw.done = true
		h := cw.ResponseWriter.Header()
		h["Set-Cookie"] = append(h["Set-Cookie"], cw.setCookie)
	}
	cw.ResponseWriter.WriteHeader(code)
}

func (cw *cookieWriter) Write(p []byte) (int, error) {
	if !cw.done {
		cw.WriteHeader(http.StatusOK)
	}
	return cw.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (cw *cookieWriter) Unwrap() http.ResponseWriter { return cw.ResponseWriter }

// Hijack hands over an upgrade's connection; the 101 goes onto it unseen.
func (cw *cookieWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	cw.done = true
	return http.NewResponseController(cw.ResponseWriter).Hijack()
}

// Flags returns the flags app's route carries, in name order.
func (r *Router) Flags(app string) []Flag {
	rt, ok := r.table.Load().apps[app]
	if !ok || rt.flags == nil {
		return nil
	}
	return slices.Clone(rt.flags.flags)
}
