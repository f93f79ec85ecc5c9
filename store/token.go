package store

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// tokenRecord is what is stored for an API token: never the token itself,
// only its SHA-256, so a leaked data file does not leak credentials.
type tokenRecord struct {
	Name      string    `json:"name"`
	Hash      string    `json:"sha256"` // hex
	CreatedAt time.Time `json:"created_at"`
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateToken creates a random API token labelled name and returns the
// plaintext, which cannot be recovered later. Names are labels only and
// need not be unique.
func (s *Store) CreateToken(name string) (string, error) {
	if name == "" {
		return "", errors.New("create token: empty name")
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("create token: random: %w", err)
	}
	token := hex.EncodeToString(buf)
	rec := tokenRecord{
		Name:      name,
		Hash:      hex.EncodeToString(hashToken(token)),
		CreatedAt: time.Now(),
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("next sequence: %w", err)
		}
		return putJSON(b, itob(seq), rec)
	})
	if err != nil {
		return "", fmt.Errorf("create token %q: %w", name, err)
	}
	return token, nil
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

// VerifyToken reports whether token is a valid API token and, if so, its
// name. Every stored hash is compared in constant time without stopping at
// a match, so timing reveals neither which token matched nor how much of
// it. Errors are treated as "not valid" and the token is never logged.
func (s *Store) VerifyToken(token string) (name string, ok bool) {
	if token == "" {
		return "", false
	}
	want := hashToken(token)
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(_, v []byte) error {
			var rec tokenRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return nil // a corrupt record matches nothing; keep checking
			}
			got, err := hex.DecodeString(rec.Hash)
			if err != nil {
				return nil
			}
			if subtle.ConstantTimeCompare(want, got) == 1 && !ok {
				name, ok = rec.Name, true
			}
			return nil
		})
	})
	return name, ok
}
