package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Session is a dashboard login as stored: keyed by the SHA-256 of its ID,
// so the database never holds a usable cookie.
type Session struct {
	CSRF string `json:"csrf"`
	// Token is the ID of the API token the session logged in with:
	// revoking that token ends the session. Sessions stored before this
	// field existed have 0 and are refused.
	Token    uint64    `json:"token,omitempty"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
}

// PutSession creates or updates the session with the given ID hash.
func (s *Store) PutSession(idHash []byte, se Session) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketSessions), idHash, se)
	})
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	return nil
}

// GetSession returns the session with the given ID hash, or ErrNotFound.
func (s *Store) GetSession(idHash []byte) (Session, error) {
	var se Session
	err := s.db.View(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bucketSessions), idHash, &se)
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return se, fmt.Errorf("get session: %w", err)
	}
	return se, nil
}

// DeleteSessions removes the sessions with the given ID hashes and, when
// expired is not nil, every session for which it returns true.
func (s *Store) DeleteSessions(expired func(Session) bool, idHashes ...[]byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		for _, k := range idHashes {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if expired == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var se Session
			if err := json.Unmarshal(v, &se); err != nil || expired(se) {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete sessions: %w", err)
	}
	return nil
}

// deleteSessionsOf deletes the sessions opened with the token tokenID.
func deleteSessionsOf(tx *bolt.Tx, tokenID uint64) error {
	b := tx.Bucket(bucketSessions)
	var keys [][]byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var se Session
		if json.Unmarshal(v, &se) == nil && se.Token == tokenID {
			keys = append(keys, append([]byte(nil), k...))
		}
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete session: %w", err)
		}
	}
	return nil
}
