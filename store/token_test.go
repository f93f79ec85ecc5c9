package store

import (
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestValidateTokenName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"ci", true},
		{"laptop-2", true},
		{"Deploy_bot.v2", true},
		{"", false},
		{"-ci", false},
		{".hidden", false},
		{"has space", false},
		{"a/b", false},
		{"naïve", false},
		{"x\n", false},
		{strings.Repeat("a", MaxTokenNameLen), true},
		{strings.Repeat("a", MaxTokenNameLen+1), false},
	}
	for _, tt := range tests {
		if err := ValidateTokenName(tt.name); (err == nil) != tt.ok {
			t.Errorf("ValidateTokenName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestTokenLifecycle(t *testing.T) {
	s, _ := newStore(t)
	now := time.Now()

	admin, err := s.CreateToken("admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateToken("admin"); !errors.Is(err, ErrExists) {
		t.Fatalf("second token named admin: %v, want ErrExists", err)
	}
	if _, err := s.CreateToken("bad name"); err == nil {
		t.Fatal("token named \"bad name\" was created")
	}
	ciSecret, ci, err := s.CreateTokenExpiring("ci", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	oldSecret, _, err := s.CreateTokenExpiring("old", now.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}

	// Lookup finds expired tokens too (so the caller can say "expired");
	// VerifyToken refuses them.
	if tok, ok := s.LookupToken(oldSecret); !ok || tok.Name != "old" || !tok.Expired(now) {
		t.Errorf("LookupToken(old) = %+v, %v; want the expired token", tok, ok)
	}
	if _, ok := s.VerifyToken(oldSecret); ok {
		t.Error("VerifyToken accepted an expired token")
	}
	if tok, ok := s.LookupToken(ciSecret); !ok || tok.ID != ci.ID || tok.Expired(now) {
		t.Errorf("LookupToken(ci) = %+v, %v; want ci, not expired", tok, ok)
	}

	list, err := s.ListTokens()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tok := range list {
		names = append(names, tok.Name)
	}
	if got := strings.Join(names, ","); got != "admin,ci,old" {
		t.Errorf("ListTokens names = %s, want admin,ci,old", got)
	}

	// Last use: written when later, never resurrects a revoked token.
	used := now.Add(time.Minute).Truncate(time.Second)
	if err := s.TouchToken(ci.ID, used); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchToken(ci.ID, used.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetToken(ci.ID); !got.LastUsed.Equal(used) {
		t.Errorf("LastUsed = %v, want %v", got.LastUsed, used)
	}

	// Sessions of ci go with it; admin's stay.
	mustPutSession(t, s, "ci-session", ci.ID)
	adminTok, _ := s.LookupToken(admin)
	mustPutSession(t, s, "admin-session", adminTok.ID)
	if _, err := s.RevokeToken("nope", false, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke unknown: %v, want ErrNotFound", err)
	}
	if tok, err := s.RevokeToken("ci", false, now); err != nil || tok.ID != ci.ID {
		t.Fatalf("revoke ci: %+v, %v", tok, err)
	}
	if _, ok := s.LookupToken(ciSecret); ok {
		t.Error("revoked token still looks up")
	}
	if _, err := s.GetToken(ci.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetToken(revoked) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetSession([]byte("ci-session")); !errors.Is(err, ErrNotFound) {
		t.Errorf("session of the revoked token: %v, want ErrNotFound", err)
	}
	if _, err := s.GetSession([]byte("admin-session")); err != nil {
		t.Errorf("session of another token: %v, want kept", err)
	}
	if err := s.TouchToken(ci.ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetToken(ci.ID); !errors.Is(err, ErrNotFound) {
		t.Error("TouchToken brought a revoked token back")
	}

	// admin is the last token that has not expired ("old" has).
	if _, err := s.RevokeToken("admin", false, now); !errors.Is(err, ErrLastToken) {
		t.Fatalf("revoke the last valid token: %v, want ErrLastToken", err)
	}
	if _, err := s.RevokeToken("old", false, now); err != nil {
		t.Fatalf("revoke an expired token: %v", err)
	}
	if _, err := s.RevokeToken("admin", true, now); err != nil {
		t.Fatalf("forced revoke of the last token: %v", err)
	}
	if has, _ := s.HasTokens(); has {
		t.Error("tokens left after revoking all")
	}
}

func mustPutSession(t *testing.T, s *Store, key string, token uint64) {
	t.Helper()
	if err := s.PutSession([]byte(key), Session{CSRF: "x", Token: token, Created: time.Now(), LastSeen: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// TestTokensFromOldSchema: records written before names were unique and
// before expiry existed keep working after an upgrade: they never expire
// and duplicates get distinct names.
func TestTokensFromOldSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plat.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64), strings.Repeat("d", 64)}
	names := []string{"admin", "admin", "admin-2", "admin"}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketTokens)
		if err != nil {
			return err
		}
		for i, sec := range secrets {
			old := `{"name":"` + names[i] + `","sha256":"` + hexHash(sec) + `","created_at":"2025-01-02T03:04:05Z"}`
			if err := b.Put(itob(uint64(i+1)), []byte(old)); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []string{"admin", "admin-3", "admin-2", "admin-4"}
	for i, sec := range secrets {
		tok, ok := s.LookupToken(sec)
		if !ok || tok.Name != want[i] || !tok.ExpiresAt.IsZero() || tok.Expired(time.Now()) {
			t.Errorf("old token %d after upgrade: %+v, %v; want name %s, never expires", i, tok, ok, want[i])
		}
	}
	if _, err := s.RevokeToken("admin-3", false, time.Now()); err != nil {
		t.Errorf("revoke a renamed duplicate: %v", err)
	}
}

func hexHash(secret string) string { return hex.EncodeToString(hashToken(secret)) }
