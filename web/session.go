package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"
)

// Session defaults.
const (
	CookieName          = "plat_session"
	CSRFHeader          = "X-CSRF-Token"
	DefaultIdleTimeout  = 12 * time.Hour
	DefaultMaxLifetime  = 7 * 24 * time.Hour
	sessionIDBytes      = 32
	sessionSweepPercent = 1 // of lookups that also sweep expired sessions
)

// Errors Authorize returns.
var (
	ErrNoSession = errors.New("no valid session")
	ErrCSRF      = errors.New("missing or wrong CSRF token")
)

// session is what the server keeps about one login. The map is keyed by a
// hash of the cookie's ID so the IDs themselves are never held.
type session struct {
	csrf     string
	created  time.Time
	lastSeen time.Time
}

// Sessions are dashboard logins, kept in memory: a daemon restart logs
// browsers out (they log in again with the token), and no session secret
// ever reaches the disk.
type Sessions struct {
	idle, max time.Duration
	now       func() time.Time

	mu sync.Mutex
	m  map[[32]byte]*session
}

// NewSessions returns an empty session table; zero durations take the defaults.
func NewSessions(idle, maxLifetime time.Duration) *Sessions {
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	if maxLifetime <= 0 {
		maxLifetime = DefaultMaxLifetime
	}
	return &Sessions{idle: idle, max: maxLifetime, now: time.Now, m: map[[32]byte]*session{}}
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create starts a session and returns its ID (the cookie value) and CSRF token.
func (s *Sessions) Create() (id, csrf string) {
	id, csrf = randomString(sessionIDBytes), randomString(sessionIDBytes)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[sha256.Sum256([]byte(id))] = &session{csrf: csrf, created: now, lastSeen: now}
	return id, csrf
}

// Lookup returns the CSRF token of a live session and marks it used.
func (s *Sessions) Lookup(id string) (csrf string, ok bool) {
	key := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.m[key]
	if !ok {
		return "", false
	}
	if now.Sub(se.lastSeen) > s.idle || now.Sub(se.created) > s.max {
		delete(s.m, key)
		return "", false
	}
	se.lastSeen = now
	if key[0] < 256*sessionSweepPercent/100 {
		s.sweep(now)
	}
	return se.csrf, true
}

// sweep drops expired sessions; the caller holds s.mu.
func (s *Sessions) sweep(now time.Time) {
	for k, se := range s.m {
		if now.Sub(se.lastSeen) > s.idle || now.Sub(se.created) > s.max {
			delete(s.m, k)
		}
	}
}

// Delete ends a session (logout).
func (s *Sessions) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sha256.Sum256([]byte(id)))
}

// fromRequest returns the request's session ID and CSRF token.
func (s *Sessions) fromRequest(r *http.Request) (id, csrf string, ok bool) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return "", "", false
	}
	csrf, ok = s.Lookup(c.Value)
	return c.Value, csrf, ok
}

// Authorize checks a request that carries no API token: it needs a live
// session cookie and, unless its method is safe, the session's CSRF token
// in the X-CSRF-Token header. SameSite=Strict already keeps other sites'
// requests from carrying the cookie; the token is the second lock.
func (s *Sessions) Authorize(r *http.Request) error {
	_, csrf, ok := s.fromRequest(r)
	if !ok {
		return ErrNoSession
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if !validCSRF(r.Header.Get(CSRFHeader), csrf) {
		return ErrCSRF
	}
	return nil
}

func validCSRF(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// cookie is the session cookie for id; maxAge < 0 deletes it.
func (s *Sessions) cookie(r *http.Request, id string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: CookieName, Value: id, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	}
}
