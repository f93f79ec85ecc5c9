package store

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MaxTokenNameLen bounds a token's name.
const MaxTokenNameLen = 64

// ErrLastToken: revoking the token would leave no token that is not expired.
var ErrLastToken = errors.New("last valid token")

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ValidateTokenName says what is wrong with a token name, if anything.
func ValidateTokenName(name string) error {
	switch {
	case name == "":
		return errors.New("a token needs a name, e.g. ci or laptop")
	case len(name) > MaxTokenNameLen:
		return fmt.Errorf("a token name may be at most %d characters long", MaxTokenNameLen)
	case !tokenNameRE.MatchString(name):
		return fmt.Errorf("token name %q may only hold letters, digits, '.', '_' and '-', and must start with a letter or digit", name)
	}
	return nil
}

// tokenRecord is what is stored for an API token: never the token itself,
// only its SHA-256, so a leaked data file does not leak credentials.
// Records written before expiry existed have no expires_at or last_used:
// they never expire and were never used.
type tokenRecord struct {
	Name      string    `json:"name"`
	Hash      string    `json:"sha256"` // hex
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	LastUsed  time.Time `json:"last_used,omitzero"`
}

// Token is an API token as callers see it: never its secret or hash.
type Token struct {
	// ID is stable for the token's life and never reused; sessions and
	// connections refer to the token that opened them by it.
	ID        uint64
	Name      string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	LastUsed  time.Time // zero: never; written at most once a minute
}

// Expired reports whether the token has expired at now.
func (t Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

func (r tokenRecord) token(key []byte) Token {
	return Token{ID: binary.BigEndian.Uint64(key), Name: r.Name, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, LastUsed: r.LastUsed}
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateToken creates a random API token named name that never expires
// and returns the plaintext, which cannot be recovered later.
func (s *Store) CreateToken(name string) (string, error) {
	secret, _, err := s.CreateTokenExpiring(name, time.Time{})
	return secret, err
}

// CreateTokenExpiring creates a random API token named name, valid until
// expires (zero: forever), and returns its plaintext once. Names are
// unique: a taken one gives ErrExists.
func (s *Store) CreateTokenExpiring(name string, expires time.Time) (string, Token, error) {
	if err := ValidateTokenName(name); err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", Token{}, fmt.Errorf("create token: random: %w", err)
	}
	secret := hex.EncodeToString(buf)
	rec := tokenRecord{
		Name:      name,
		Hash:      hex.EncodeToString(hashToken(secret)),
		CreatedAt: time.Now(),
		ExpiresAt: expires,
	}
	var tok Token
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if k, _ := findToken(b, name); k != nil {
			return ErrExists
		}
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("next sequence: %w", err)
		}
		tok = rec.token(itob(seq))
		return putJSON(b, itob(seq), rec)
	})
	if err != nil {
		return "", Token{}, fmt.Errorf("create token %q: %w", name, err)
	}
	return secret, tok, nil
}

// findToken returns the key and record of the token named name (nil when none).
func findToken(b *bolt.Bucket, name string) ([]byte, tokenRecord) {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var rec tokenRecord
		if json.Unmarshal(v, &rec) == nil && rec.Name == name {
			return k, rec
		}
	}
	return nil, tokenRecord{}
}

// HasTokens reports whether any API token exists (the daemon creates a
// first one when there is none).
func (s *Store) HasTokens() (bool, error) {
	var has bool
	err := s.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketTokens).Cursor().First()
		has = k != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("has tokens: %w", err)
	}
	return has, nil
}

// ListTokens returns every token, oldest first.
func (s *Store) ListTokens() ([]Token, error) {
	var out []Token
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var rec tokenRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode token %x: %w", k, err)
			}
			out = append(out, rec.token(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// GetToken returns the token with the given ID, or ErrNotFound (revoked).
func (s *Store) GetToken(id uint64) (Token, error) {
	var tok Token
	err := s.db.View(func(tx *bolt.Tx) error {
		var rec tokenRecord
		ok, err := getJSON(tx.Bucket(bucketTokens), itob(id), &rec)
		if err == nil && !ok {
			err = ErrNotFound
		}
		tok = rec.token(itob(id))
		return err
	})
	if err != nil {
		return Token{}, fmt.Errorf("get token %d: %w", id, err)
	}
	return tok, nil
}

// LookupToken returns the token whose secret is token, expired or not.
// Every stored hash is compared in constant time without stopping at a
// match, so timing reveals neither which token matched nor how much of
// it. Errors are treated as "no such token" and the token is never logged.
func (s *Store) LookupToken(token string) (tok Token, ok bool) {
	if token == "" {
		return Token{}, false
	}
	want := hashToken(token)
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var rec tokenRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return nil // a corrupt record matches nothing; keep checking
			}
			got, err := hex.DecodeString(rec.Hash)
			if err != nil {
				return nil
			}
			if subtle.ConstantTimeCompare(want, got) == 1 && !ok {
				tok, ok = rec.token(k), true
			}
			return nil
		})
	})
	return tok, ok
}

// VerifyToken reports whether token is a valid API token that has not
// expired and, if so, its name.
func (s *Store) VerifyToken(token string) (name string, ok bool) {
	tok, ok := s.LookupToken(token)
	if !ok || tok.Expired(time.Now()) {
		return "", false
	}
	return tok.Name, true
}

// TouchToken records that the token with the given ID was used at t. A
// revoked token stays revoked: an unknown ID is not an error and writes
// nothing.
func (s *Store) TouchToken(id uint64, t time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		var rec tokenRecord
		ok, err := getJSON(b, itob(id), &rec)
		if err != nil || !ok || !t.After(rec.LastUsed) {
			return err
		}
		rec.LastUsed = t
		return putJSON(b, itob(id), rec)
	})
	if err != nil {
		return fmt.Errorf("touch token %d: %w", id, err)
	}
	return nil
}

// RevokeToken deletes the token named name and every dashboard session it
// opened, in one transaction. Unless force is set it refuses (ErrLastToken)
// to revoke the last token that has not expired at now: that would lock
// every client out until someone runs `plat daemon token` on the server.
func (s *Store) RevokeToken(name string, force bool, now time.Time) (Token, error) {
	var tok Token
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		key, rec := findToken(b, name)
		if key == nil {
			return ErrNotFound
		}
		tok = rec.token(key)
		if !force && !tok.Expired(now) && !otherLiveToken(b, key, now) {
			return ErrLastToken
		}
		if err := b.Delete(key); err != nil {
			return err
		}
		return deleteSessionsOf(tx, tok.ID)
	})
	if err != nil {
		return Token{}, fmt.Errorf("revoke token %q: %w", name, err)
	}
	return tok, nil
}

// otherLiveToken reports whether a token other than the one at key has
// not expired at now.
func otherLiveToken(b *bolt.Bucket, key []byte, now time.Time) bool {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var rec tokenRecord
		if string(k) != string(key) && json.Unmarshal(v, &rec) == nil && !rec.token(k).Expired(now) {
			return true
		}
	}
	return false
}

// migrateTokens gives every token a unique name: before names were
// unique, `plat daemon token` run twice made two "admin" tokens. Later
// duplicates become "admin-2", "admin-3"... so each can be revoked by name.
func migrateTokens(tx *bolt.Tx) error {
	b := tx.Bucket(bucketTokens)
	seen := map[string]bool{}
	type rename struct {
		key []byte
		rec tokenRecord
	}
	var renames []rename
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var rec tokenRecord
		if json.Unmarshal(v, &rec) != nil {
			continue
		}
		if seen[rec.Name] {
			renames = append(renames, rename{append([]byte(nil), k...), rec})
			continue
		}
		seen[rec.Name] = true
	}
	// Writes happen after the scan: bbolt forbids mutating a bucket
	// under a live cursor.
	for _, r := range renames {
		base := r.rec.Name
		for n := 2; seen[r.rec.Name]; n++ {
			r.rec.Name = base + "-" + strconv.Itoa(n)
		}
		seen[r.rec.Name] = true
		if err := putJSON(b, r.key, r.rec); err != nil {
			return fmt.Errorf("rename duplicate token %q: %w", base, err)
		}
	}
	return nil
}
