package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/store"
	"github.com/plat-paas/plat/web"
)

const (
	// lastUseSaveEvery bounds how often a token's last use is written to
	// the store: a write per request would be a disk sync per request.
	lastUseSaveEvery = time.Minute
	// maxTokenLifetime bounds --expires (ten years).
	maxTokenLifetime = 3650 * 24 * time.Hour
	// defaultTokenName is what `plat daemon token` calls a token when no
	// --name is given; taken, it becomes admin-2, admin-3...
	defaultTokenName = "admin"
	maxAutoNames     = 1000
)

// Causes of a token's requests ending early.
var (
	errTokenRevoked = errors.New("token revoked")
	errTokenExpired = errors.New("token expired")
	errBadToken     = errors.New("unknown token")
)

// tokenExpiredError: a token that was valid once. Its holder knew it, so
// the answer says which token and how to get a new one.
type tokenExpiredError struct {
	name string
	at   time.Time
}

func (e *tokenExpiredError) Error() string {
	return fmt.Sprintf("token %q expired at %s: create a new one with `plat tokens:create NAME` (logged in with a valid token) or `plat daemon token` on the server, then `plat login URL --token TOKEN`",
		e.name, e.at.UTC().Format(time.RFC3339))
}

// Unwrap lets the dashboard's login tell an expired token from a guess.
func (e *tokenExpiredError) Unwrap() error { return web.ErrTokenExpired }

// tokenManager checks API tokens against the store, remembers their last
// use (written at most once a minute per token) and tracks the requests
// each token has in flight, so that revoking it ends them at once.
type tokenManager struct {
	store *store.Store
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	used    map[uint64]*tokenUse
	conns   map[uint64]map[*liveConn]struct{}
	revoked map[uint64]bool // IDs are never reused, so this only grows by one per revocation
}

type tokenUse struct{ at, saved time.Time }

// liveConn is one admitted request of a token.
type liveConn struct {
	cancel context.CancelCauseFunc
}

func newTokenManager(st *store.Store, log *slog.Logger) *tokenManager {
	return &tokenManager{
		store: st, log: log, now: time.Now,
		used: map[uint64]*tokenUse{}, conns: map[uint64]map[*liveConn]struct{}{}, revoked: map[uint64]bool{},
	}
}

// verify returns the token whose secret is secret: errBadToken when there
// is none, a *tokenExpiredError when it has expired.
func (m *tokenManager) verify(secret string) (store.Token, error) {
	tok, ok := m.store.LookupToken(secret)
	if !ok {
		return store.Token{}, errBadToken
	}
	if tok.Expired(m.now()) {
		return store.Token{}, &tokenExpiredError{name: tok.Name, at: tok.ExpiresAt}
	}
	return tok, nil
}

// verifyLogin is verify for the dashboard's login form.
func (m *tokenManager) verifyLogin(secret string) (uint64, error) {
	tok, err := m.verify(secret)
	return tok.ID, err
}

// live returns the token with the given ID if it is neither revoked nor
// expired (a dashboard session's token).
func (m *tokenManager) live(id uint64) (store.Token, bool) {
	tok, err := m.store.GetToken(id)
	if err != nil || tok.Expired(m.now()) {
		return store.Token{}, false
	}
	return tok, true
}

type authKey struct{}

// authInfo is what an admitted request knows about its credentials.
type authInfo struct {
	token store.Token
	conn  *liveConn
}

func authFromContext(ctx context.Context) (authInfo, bool) {
	a, ok := ctx.Value(authKey{}).(authInfo)
	return a, ok
}

// track records a use of tok and returns the context its request runs
// under: cancelled when the token is revoked (cause errTokenRevoked) or
// expires (errTokenExpired). done must be called when the request ends.
// ok is false when the token was revoked after it was checked.
func (m *tokenManager) track(parent context.Context, tok store.Token) (ctx context.Context, done func(), ok bool) {
	ctx, cancel := context.WithCancelCause(parent)
	stop := func() { cancel(nil) }
	if !tok.ExpiresAt.IsZero() {
		var cancelDeadline context.CancelFunc
		ctx, cancelDeadline = context.WithDeadlineCause(ctx, tok.ExpiresAt, errTokenExpired)
		stop = func() { cancelDeadline(); cancel(nil) }
	}
	c := &liveConn{cancel: cancel}
	now := m.now()
	m.mu.Lock()
	if m.revoked[tok.ID] {
		m.mu.Unlock()
		stop()
		return nil, nil, false
	}
	set := m.conns[tok.ID]
	if set == nil {
		set = map[*liveConn]struct{}{}
		m.conns[tok.ID] = set
	}
	set[c] = struct{}{}
	u := m.used[tok.ID]
	if u == nil {
		u = &tokenUse{saved: tok.LastUsed}
		m.used[tok.ID] = u
	}
	u.at = now
	save := now.Sub(u.saved) >= lastUseSaveEvery
	if save {
		u.saved = now // before the write, so concurrent requests do not write too
	}
	m.mu.Unlock()
	if save {
		if err := m.store.TouchToken(tok.ID, now); err != nil {
			m.log.Warn("record token use", "token", tok.Name, "err", err)
		}
	}
	done = func() {
		m.mu.Lock()
		delete(m.conns[tok.ID], c)
		if len(m.conns[tok.ID]) == 0 {
			delete(m.conns, tok.ID)
		}
		m.mu.Unlock()
		stop()
	}
	return context.WithValue(ctx, authKey{}, authInfo{token: tok, conn: c}), done, true
}

// revoked marks the token with the given ID revoked and cancels its
// requests in flight except skip (the request revoking it); it returns
// how many it cancelled.
func (m *tokenManager) markRevoked(id uint64, skip *liveConn) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revoked[id] = true
	delete(m.used, id)
	n := 0
	for c := range m.conns[id] {
		if c != skip {
			c.cancel(errTokenRevoked)
			n++
		}
	}
	return n
}

// lastUsed is when tok was last used: the store's record is up to a
// minute behind.
func (m *tokenManager) lastUsed(tok store.Token) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := m.used[tok.ID]; u != nil && u.at.After(tok.LastUsed) {
		return u.at
	}
	return tok.LastUsed
}

// parseLifetime parses a token lifetime such as 90d, 12h, 30m, 45s or
// 1d12h: whole numbers with the units d, h, m and s.
func parseLifetime(s string) (time.Duration, error) {
	bad := fmt.Errorf("expiry %q is not a duration like 90d, 12h, 30m or 1d12h (units d, h, m, s)", s)
	if s == "" {
		return 0, bad
	}
	units := map[byte]time.Duration{'d': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute, 's': time.Second}
	var total time.Duration
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j == len(s) {
			return 0, bad
		}
		unit, ok := units[s[j]]
		if !ok {
			return 0, bad
		}
		n, err := strconv.ParseInt(s[i:j], 10, 64)
		if err != nil || n > int64(maxTokenLifetime/unit) {
			return 0, fmt.Errorf("expiry %q is longer than the limit of %d days", s, int(maxTokenLifetime/(24*time.Hour)))
		}
		total += time.Duration(n) * unit
		if total > maxTokenLifetime {
			return 0, fmt.Errorf("expiry %q is longer than the limit of %d days", s, int(maxTokenLifetime/(24*time.Hour)))
		}
		i = j + 1
	}
	if total < time.Second {
		return 0, fmt.Errorf("expiry %q must be at least 1s", s)
	}
	return total, nil
}

func (s *server) tokenRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/tokens", s.listTokens)
	mux.HandleFunc("POST /api/tokens", s.createToken)
	mux.HandleFunc("DELETE /api/tokens/{name}", s.revokeToken)
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request) {
	toks, err := s.store.ListTokens()
	if err != nil {
		s.internalError(w, err)
		return
	}
	me, _ := authFromContext(r.Context())
	now := time.Now()
	out := make([]api.Token, 0, len(toks))
	for _, t := range toks {
		out = append(out, api.Token{
			Name: t.Name, CreatedAt: t.CreatedAt, LastUsed: s.tokens.lastUsed(t), ExpiresAt: t.ExpiresAt,
			Expired: t.Expired(now), Current: t.ID == me.token.ID,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request) {
	var req api.CreateToken
	if !readJSON(w, r, &req) {
		return
	}
	nt, status, err := s.newToken(req.Name, req.ExpiresIn)
	if err != nil {
		if status == http.StatusInternalServerError {
			s.internalError(w, err)
			return
		}
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, nt)
}

// newToken creates a token named name that expires after lifetime (""
// for never), with the status to answer when it fails.
func (s *server) newToken(name, lifetime string) (api.NewToken, int, error) {
	if err := store.ValidateTokenName(name); err != nil {
		return api.NewToken{}, http.StatusBadRequest, err
	}
	var expires time.Time
	if lifetime != "" {
		d, err := parseLifetime(lifetime)
		if err != nil {
			return api.NewToken{}, http.StatusBadRequest, err
		}
		expires = time.Now().Add(d)
	}
	secret, tok, err := s.store.CreateTokenExpiring(name, expires)
	switch {
	case errors.Is(err, store.ErrExists):
		return api.NewToken{}, http.StatusConflict, fmt.Errorf("a token named %q exists: pick another name, or revoke it first with `plat tokens:revoke %s`", name, name)
	case err != nil:
		return api.NewToken{}, http.StatusInternalServerError, err
	}
	s.log.Info("API token created", "name", name, "expires", expires)
	return api.NewToken{Name: tok.Name, Token: secret, CreatedAt: tok.CreatedAt, ExpiresAt: tok.ExpiresAt}, http.StatusCreated, nil
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
	tok, err := s.store.RevokeToken(name, force, time.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no token named %q: list them with `plat tokens`", name))
		return
	case errors.Is(err, store.ErrLastToken):
		writeError(w, http.StatusConflict, fmt.Sprintf("%q is the last token that has not expired: revoking it locks every client out until someone runs `plat daemon token` on the server. Create another first (`plat tokens:create NAME`), or revoke it anyway with --force (?force=true)", name))
		return
	case err != nil:
		s.internalError(w, err)
		return
	}
	me, _ := authFromContext(r.Context())
	self := me.token.ID == tok.ID
	var skip *liveConn
	if self {
		skip = me.conn // this answer still goes out
	}
	closed := s.tokens.markRevoked(tok.ID, skip)
	sessions := s.web.EndToken(tok.ID)
	s.log.Info("API token revoked", "name", tok.Name, "sessions_ended", sessions, "requests_ended", closed)
	writeJSON(w, http.StatusOK, api.Revoked{Revoked: tok.Name, Current: self, SessionsEnded: sessions, RequestsEnded: closed})
}

// adminToken serves the local socket's POST /admin/token?name=N&expires=90d
// (`plat daemon token`): the new token's secret as plain text. Without a
// name it is "admin", or admin-2, admin-3... when taken.
func (s *server) adminToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, auto := q.Get("name"), false
	if name == "" {
		name, auto = defaultTokenName, true
	}
	var nt api.NewToken
	var status int
	var err error
	for i := 2; i < maxAutoNames; i++ {
		nt, status, err = s.newToken(name, q.Get("expires"))
		if !auto || status != http.StatusConflict {
			break
		}
		name = defaultTokenName + "-" + strconv.Itoa(i)
	}
	if err != nil {
		if status == http.StatusInternalServerError {
			s.log.Error("create API token", "err", err)
		}
		http.Error(w, err.Error(), status)
		return
	}
	io.WriteString(w, nt.Token+"\n")
}
