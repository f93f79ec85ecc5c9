package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/plat-paas/plat/store"
)

// Session defaults.
const (
	// CookieName is the session cookie over plain HTTP.
	CookieName = "plat_session"
	// SecureCookieName is the session cookie over HTTPS. Browsers accept a
	// __Host- cookie only when it is Secure, has Path=/ and no Domain, so
	// an app on a sibling host (x.plat.example) cannot set or overwrite
	// the admin's session with a Domain=plat.example cookie. Plain HTTP
	// cannot have it: browsers refuse __Host- cookies that are not Secure.
	SecureCookieName    = "__Host-plat_session"
	CSRFHeader          = "X-CSRF-Token"
	DefaultIdleTimeout  = 12 * time.Hour
	DefaultMaxLifetime  = 7 * 24 * time.Hour
	sessionIDBytes      = 32
	sessionSweepPercent = 1 // of lookups that also sweep expired sessions
	// sessionSaveEvery bounds how often a session's last use is written to
	// the store: every request would mean a disk sync per request.
	sessionSaveEvery = time.Minute
)

// Errors Authorize returns.
var (
	ErrNoSession = errors.New("no valid session")
	ErrCSRF      = errors.New("missing or wrong CSRF token")
)

// SessionStore keeps sessions across daemon restarts; *store.Store is one.
// Keys are SHA-256 hashes of session IDs, so it never holds a usable cookie.
type SessionStore interface {
	PutSession(idHash []byte, se store.Session) error
	GetSession(idHash []byte) (store.Session, error)
	DeleteSessions(expired func(store.Session) bool, idHashes ...[]byte) error
}

// session is a cached store.Session and when its LastSeen was last saved.
type session struct {
	store.Session
	saved time.Time
}

// Sessions are dashboard logins: in memory, and in a SessionStore when one
// is given, so a daemon restart does not log browsers out (their live log
// sockets reconnect on their own).
type Sessions struct {
	idle, max time.Duration
	persist   SessionStore // may be nil
	now       func() time.Time
	log       *slog.Logger
	// tokenLive reports whether the API token a session logged in with
	// is still valid (nil: not checked); set by New.
	tokenLive func(tokenID uint64) bool

	mu sync.Mutex
	m  map[[32]byte]*session
}

// NewSessions returns a session table backed by persist (nil: memory only);
// zero durations take the defaults.
func NewSessions(persist SessionStore, idle, maxLifetime time.Duration) *Sessions {
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	if maxLifetime <= 0 {
		maxLifetime = DefaultMaxLifetime
	}
	return &Sessions{idle: idle, max: maxLifetime, persist: persist, now: time.Now, log: slog.Default(), m: map[[32]byte]*session{}}
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Sessions) expired(se store.Session) bool {
	now := s.now()
	return now.Sub(se.LastSeen) > s.idle || now.Sub(se.Created) > s.max
}

// Create starts a session for the API token tokenID and returns its ID
// (the cookie value) and CSRF token.
func (s *Sessions) Create(tokenID uint64) (id, csrf string) {
	id, csrf = randomString(sessionIDBytes), randomString(sessionIDBytes)
	now := s.now()
	key := sha256.Sum256([]byte(id))
	se := &session{Session: store.Session{CSRF: csrf, Token: tokenID, Created: now, LastSeen: now}, saved: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = se
	s.save(key, se)
	return id, csrf
}

// save writes se to the store; the caller holds s.mu. A failure only costs
// the session's survival of a restart, so it is logged, not returned.
func (s *Sessions) save(key [32]byte, se *session) {
	if s.persist == nil {
		return
	}
	if err := s.persist.PutSession(key[:], se.Session); err != nil {
		s.log.Warn("save dashboard session", "err", err)
	}
	se.saved = se.LastSeen
}

// Lookup returns the CSRF token of a live session and marks it used.
func (s *Sessions) Lookup(id string) (csrf string, ok bool) {
	csrf, _, ok = s.lookup(id)
	return csrf, ok
}

// lookup is Lookup that also returns the session's token ID. A session
// whose token was revoked or has expired is over; so is one stored before
// sessions knew their token (it would outlive every revocation).
func (s *Sessions) lookup(id string) (csrf string, tokenID uint64, ok bool) {
	key := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.m[key]
	if !ok && s.persist != nil {
		if stored, err := s.persist.GetSession(key[:]); err == nil {
			se = &session{Session: stored, saved: stored.LastSeen}
			s.m[key], ok = se, true
		}
	}
	if !ok {
		return "", 0, false
	}
	if s.expired(se.Session) || se.Token == 0 || (s.tokenLive != nil && !s.tokenLive(se.Token)) {
		s.deleteLocked(key)
		return "", 0, false
	}
	se.LastSeen = s.now()
	if se.LastSeen.Sub(se.saved) > sessionSaveEvery {
		s.save(key, se)
	}
	if key[0] < 256*sessionSweepPercent/100 {
		s.sweep()
	}
	return se.CSRF, se.Token, true
}

// sweep drops expired sessions; the caller holds s.mu.
func (s *Sessions) sweep() {
	for k, se := range s.m {
		if s.expired(se.Session) {
			delete(s.m, k)
		}
	}
	if s.persist != nil {
		if err := s.persist.DeleteSessions(s.expired); err != nil {
			s.log.Warn("sweep dashboard sessions", "err", err)
		}
	}
}

func (s *Sessions) deleteLocked(key [32]byte) {
	delete(s.m, key)
	if s.persist != nil {
		if err := s.persist.DeleteSessions(nil, key[:]); err != nil {
			s.log.Warn("delete dashboard session", "err", err)
		}
	}
}

// EndToken ends every session opened with the API token tokenID (revoked)
// and returns how many were live in memory.
func (s *Sessions) EndToken(tokenID uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, se := range s.m {
		if se.Token == tokenID {
			delete(s.m, k)
			n++
		}
	}
	if s.persist != nil {
		if err := s.persist.DeleteSessions(func(se store.Session) bool { return se.Token == tokenID }); err != nil {
			s.log.Warn("end sessions of a revoked token", "err", err)
		}
	}
	return n
}

// Delete ends a session (logout).
func (s *Sessions) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteLocked(sha256.Sum256([]byte(id)))
}

// cookieName is the session cookie's name for r: __Host- over HTTPS.
// Over HTTPS the plain name is never read, so a cookie an app's host set
// for the parent domain cannot stand in for a session.
func cookieName(r *http.Request) string {
	if r.TLS != nil {
		return SecureCookieName
	}
	return CookieName
}

// fromRequest returns the request's session ID, CSRF token and the ID of
// the API token the session logged in with.
func (s *Sessions) fromRequest(r *http.Request) (id, csrf string, tokenID uint64, ok bool) {
	c, err := r.Cookie(cookieName(r))
	if err != nil || c.Value == "" {
		return "", "", 0, false
	}
	csrf, tokenID, ok = s.lookup(c.Value)
	return c.Value, csrf, tokenID, ok
}

// Authorize checks a request that carries no API token: it needs a live
// session cookie and, unless its method is safe, the session's CSRF token
// in the X-CSRF-Token header. SameSite=Strict already keeps other sites'
// requests from carrying the cookie; the token is the second lock.
func (s *Sessions) Authorize(r *http.Request) error {
	_, err := s.AuthorizeToken(r)
	return err
}

// AuthorizeToken is Authorize that also returns the ID of the API token
// the session logged in with.
func (s *Sessions) AuthorizeToken(r *http.Request) (tokenID uint64, err error) {
	_, csrf, tokenID, ok := s.fromRequest(r)
	if !ok {
		return 0, ErrNoSession
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return tokenID, nil
	}
	if !validCSRF(r.Header.Get(CSRFHeader), csrf) {
		return 0, ErrCSRF
	}
	return tokenID, nil
}

func validCSRF(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// cookie is the session cookie for id; maxAge < 0 deletes it.
func (s *Sessions) cookie(r *http.Request, id string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: cookieName(r), Value: id, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	}
}
