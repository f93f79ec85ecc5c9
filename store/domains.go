package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// ErrDomainTaken: another app already serves the host name.
var ErrDomainTaken = errors.New("domain belongs to another app")

// DomainTakenError says which app's domain a new one conflicts with; it
// matches ErrDomainTaken.
type DomainTakenError struct {
	Domain string // the domain asked for
	App    string // the app that has Existing
	// Existing is App's domain: Domain itself, or one above or below it.
	Existing string
}

func (e *DomainTakenError) Error() string {
	if e.Existing != e.Domain {
		return fmt.Sprintf("%s overlaps %s, a domain of app %s", e.Domain, e.Existing, e.App)
	}
	return fmt.Sprintf("%s is a domain of app %s", e.Domain, e.App)
}

// overlaps reports whether a and b are the same host or one is under the
// other: the one below can read the domain cookies of the one above, and
// the one above can set cookies for the one below.
func overlaps(a, b string) bool {
	return a == b || strings.HasSuffix(a, "."+b) || strings.HasSuffix(b, "."+a)
}

// Is makes errors.Is(err, ErrDomainTaken) true.
func (e *DomainTakenError) Is(target error) bool { return target == ErrDomainTaken }

// AddDomain adds host to app's domains. Adding a domain the app already has
// is a no-op; a domain of another app, or one above or below it, is refused
// with an error wrapping ErrDomainTaken (a *DomainTakenError naming the owner). The check and the write are one
// transaction, so two apps cannot claim the same host at once.
func (s *Store) AddDomain(app, host string) (App, error) {
	var out App
	err := s.db.Update(func(tx *bolt.Tx) error {
		a, err := getApp(tx, app)
		if err != nil {
			return err
		}
		if slices.Contains(a.Domains, host) {
			out = a
			return nil
		}
		err = tx.Bucket(bucketApps).ForEach(func(k, v []byte) error {
			var other App
			if _, err := getJSON(tx.Bucket(bucketApps), k, &other); err != nil {
				return err
			}
			if other.Name == app {
				return nil
			}
			for _, d := range other.Domains {
				if overlaps(host, d) {
					return &DomainTakenError{Domain: host, App: other.Name, Existing: d}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		a.Domains = append(a.Domains, host)
		out = a
		return putJSON(tx.Bucket(bucketApps), []byte(app), a)
	})
	if err != nil {
		return App{}, fmt.Errorf("add domain to app %q: %w", app, err)
	}
	return out, nil
}

// RemoveDomain removes host from app's domains. It returns an error
// wrapping ErrNotFound when the app does not have that domain.
func (s *Store) RemoveDomain(app, host string) (App, error) {
	var out App
	err := s.db.Update(func(tx *bolt.Tx) error {
		a, err := getApp(tx, app)
		if err != nil {
			return err
		}
		i := slices.Index(a.Domains, host)
		if i < 0 {
			return fmt.Errorf("%s is not a domain of app %s: %w", host, app, ErrNotFound)
		}
		a.Domains = slices.Delete(a.Domains, i, i+1)
		out = a
		return putJSON(tx.Bucket(bucketApps), []byte(app), a)
	})
	if err != nil {
		return App{}, fmt.Errorf("remove domain from app %q: %w", app, err)
	}
	return out, nil
}
