package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketSSHKeys: key name → SSHKey JSON. Keys are few (one per laptop or
// CI runner), so lookups by fingerprint scan the bucket.
var bucketSSHKeys = []byte("sshkeys")

// ErrKeyRegistered: the same public key is already registered under
// another name (a *KeyRegisteredError says which).
var ErrKeyRegistered = errors.New("key already registered")

// KeyRegisteredError names the key that already holds a public key.
type KeyRegisteredError struct{ Name string }

func (e *KeyRegisteredError) Error() string {
	return fmt.Sprintf("this public key is already registered as %q", e.Name)
}

// Is makes errors.Is(err, ErrKeyRegistered) true.
func (e *KeyRegisteredError) Is(target error) bool { return target == ErrKeyRegistered }

// SSHKey is a public key allowed to push over SSH. The store keeps it as
// the caller gives it; the daemon parses and checks keys before.
type SSHKey struct {
	Name        string    `json:"name"`
	Type        string    `json:"type"`        // e.g. ssh-ed25519
	Fingerprint string    `json:"fingerprint"` // SHA256:base64, as ssh-keygen -l prints it
	PublicKey   string    `json:"public_key"`  // authorized_keys form: "type base64", no comment
	Comment     string    `json:"comment,omitempty"`
	AddedAt     time.Time `json:"added_at"`
}

// ValidateKeyName says what is wrong with an SSH key's name, if anything:
// the same rules as token names.
func ValidateKeyName(name string) error {
	switch {
	case name == "":
		return errors.New("a key needs a name, e.g. laptop or ci")
	case len(name) > MaxTokenNameLen:
		return fmt.Errorf("a key name may be at most %d characters long", MaxTokenNameLen)
	case !tokenNameRE.MatchString(name):
		return fmt.Errorf("key name %q may only hold letters, digits, '.', '_' and '-', and must start with a letter or digit", name)
	}
	return nil
}

// AddSSHKey stores k. A taken name gives ErrExists; a public key already
// registered (same fingerprint) gives a *KeyRegisteredError. Both checks
// and the write are one transaction.
func (s *Store) AddSSHKey(k SSHKey) (SSHKey, error) {
	if err := ValidateKeyName(k.Name); err != nil {
		return SSHKey{}, fmt.Errorf("add ssh key: %w", err)
	}
	if k.Fingerprint == "" || k.PublicKey == "" {
		return SSHKey{}, fmt.Errorf("add ssh key %q: no public key", k.Name)
	}
	if k.AddedAt.IsZero() {
		k.AddedAt = time.Now()
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSSHKeys)
		if err != nil {
			return fmt.Errorf("create bucket: %w", err)
		}
		if b.Get([]byte(k.Name)) != nil {
			return ErrExists
		}
		if other, ok, err := findKey(b, k.Fingerprint); err != nil {
			return err
		} else if ok {
			return &KeyRegisteredError{Name: other.Name}
		}
		return putJSON(b, []byte(k.Name), k)
	})
	if err != nil {
		return SSHKey{}, fmt.Errorf("add ssh key %q: %w", k.Name, err)
	}
	return k, nil
}

// ListSSHKeys returns every registered key, by name.
func (s *Store) ListSSHKeys() ([]SSHKey, error) {
	out := []SSHKey{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSSHKeys)
		if b == nil {
			return nil
		}
		return b.ForEach(func(name, v []byte) error {
			var k SSHKey
			if err := json.Unmarshal(v, &k); err != nil {
				return fmt.Errorf("decode key %q: %w", name, err)
			}
			out = append(out, k)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list ssh keys: %w", err)
	}
	return out, nil
}

// SSHKeyByFingerprint returns the registered key with the given SHA256
// fingerprint; ok is false when there is none.
func (s *Store) SSHKeyByFingerprint(fp string) (k SSHKey, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSSHKeys)
		if b == nil {
			return nil
		}
		k, ok, err = findKey(b, fp)
		return err
	})
	if err != nil {
		return SSHKey{}, false, fmt.Errorf("find ssh key %s: %w", fp, err)
	}
	return k, ok, nil
}

// RemoveSSHKey deletes the key named name, or returns ErrNotFound.
func (s *Store) RemoveSSHKey(name string) (SSHKey, error) {
	var k SSHKey
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSSHKeys)
		if b == nil {
			return ErrNotFound
		}
		ok, err := getJSON(b, []byte(name), &k)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return SSHKey{}, fmt.Errorf("remove ssh key %q: %w", name, err)
	}
	return k, nil
}

func findKey(b *bolt.Bucket, fp string) (SSHKey, bool, error) {
	c := b.Cursor()
	for name, v := c.First(); name != nil; name, v = c.Next() {
		var k SSHKey
		if err := json.Unmarshal(v, &k); err != nil {
			return SSHKey{}, false, fmt.Errorf("decode key %q: %w", name, err)
		}
		if k.Fingerprint == fp {
			return k, true, nil
		}
	}
	return SSHKey{}, false, nil
}
