package router

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// BucketCookie is the cookie in which the router keeps a client's bucket
// (0..99) while an app's requests are split between two releases. Its
// value is the bucket in decimal; a client (or a tester) that sets it
// chooses its side: plat_bucket=0 sees the canary from Weight 1 on.
const BucketCookie = "plat_bucket"

// BucketMaxAge is how long a client keeps its bucket: longer than a
// rollout, short enough that the same clients are not always the first to
// see the next one.
const BucketMaxAge = 24 * time.Hour

// Buckets is the number of buckets; Group.Weight is in the same unit.
const Buckets = 100

// bucketCookieAttrs follow the value in Set-Cookie.
var bucketCookieAttrs = "; Path=/; Max-Age=" + strconv.Itoa(int(BucketMaxAge/time.Second)) + "; HttpOnly; SameSite=Lax"

// takeBucket removes the BucketCookie from req's Cookie headers, so the app
// never sees it, and returns its bucket: -1 if there is none or it is not a
// number in 0..99. Requests without it cost one map lookup and a substring
// search per Cookie header.
func takeBucket(req *http.Request) int {
	lines := req.Header["Cookie"]
	found := false
	for _, l := range lines {
		if strings.Contains(l, BucketCookie) {
			found = true
			break
		}
	}
	if !found {
		return -1
	}
	bucket := -1
	var kept []string // allocated only if other cookies remain
	for _, l := range lines {
		if !strings.Contains(l, BucketCookie) {
			kept = append(kept, l)
			continue
		}
		if rest := stripBucket(l, &bucket); rest != "" {
			kept = append(kept, rest)
		}
	}
	if len(kept) == 0 {
		delete(req.Header, "Cookie")
	} else {
		req.Header["Cookie"] = kept
	}
	return bucket
}

// stripBucket returns the Cookie header line l without BucketCookie pairs
// ("" if nothing else is left) and stores the first valid bucket it had in
// *bucket if that is still -1.
func stripBucket(l string, bucket *int) string {
	rest, v := stripCookie(l, BucketCookie, validBucket)
	if v != "" && *bucket < 0 {
		*bucket, _ = strconv.Atoi(v)
	}
	return rest
}

func validBucket(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 0 && n < Buckets
}

// stripCookie returns the Cookie header line l without the pairs named
// name ("" if nothing else is left) and the first of their values (quotes
// and spaces trimmed) that valid accepts, "" if none.
func stripCookie(l, name string, valid func(string) bool) (rest, value string) {
	var b strings.Builder
	for part := range strings.SplitSeq(l, ";") {
		part = strings.TrimSpace(part)
		n, val, _ := strings.Cut(part, "=")
		if strings.TrimSpace(n) == name {
			if v := strings.Trim(strings.TrimSpace(val), `"`); value == "" && valid(v) {
				value = v
			}
			continue
		}
		if part == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(part)
	}
	return b.String(), value
}

// newBucket draws a random bucket for a client that has none and returns
// it with the Set-Cookie value that gives it to the client.
func newBucket(req *http.Request) (bucket int, setCookie string) {
	bucket = randomBucket()
	return bucket, bucketCookie(bucket, req.TLS != nil)
}

// randomBucket draws a bucket for a client without one.
func randomBucket() int { return rand.IntN(Buckets) }

// bucketCookie is the Set-Cookie value that gives a client its bucket
// (Secure over HTTPS).
func bucketCookie(bucket int, secure bool) string {
	c := BucketCookie + "=" + strconv.Itoa(bucket) + bucketCookieAttrs
	if secure {
		c += "; Secure"
	}
	return c
}
