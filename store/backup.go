package store

import (
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// WriteTo writes a consistent copy of the whole database file to w. It is
// taken in one read transaction, so writers carry on meanwhile and none of
// their changes is half in the copy. The copy opens with Open.
func (s *Store) WriteTo(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("copy store: %w", err)
	}
	return n, nil
}

// Check walks every page of the database and reports the inconsistencies
// bbolt finds (for a file restored from a backup).
func (s *Store) Check() error {
	var errs []error
	err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check store: %w", err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("check store: %w", err)
	}
	return nil
}
