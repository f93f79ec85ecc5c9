package store

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// bucketDeployLogs: app → (big-endian version → the release's deploy
// output: build steps, start, health check, switch, or why it failed).
var bucketDeployLogs = []byte("deploylogs")

// MaxDeployLog is the most deploy-output bytes kept per release (its tail):
// the build's own output is kept apart, as the build log.
const MaxDeployLog = 256 << 10

// SetDeployLog stores (replacing) the deploy output of a release, keeping
// at most MaxDeployLog bytes of its tail, so it can be shown after the
// daemon restarts or the page reloads.
func (s *Store) SetDeployLog(app string, version int, log []byte) error {
	data := tailBytes(log, MaxDeployLog)
	err := s.db.Update(func(tx *bolt.Tx) error {
		rb, err := appBucketRead(tx, bucketReleases, app)
		if err != nil {
			return err
		}
		if _, err := getRelease(rb, app, version); err != nil {
			return err
		}
		top, err := tx.CreateBucketIfNotExists(bucketDeployLogs)
		if err != nil {
			return fmt.Errorf("create bucket: %w", err)
		}
		b, err := top.CreateBucketIfNotExists([]byte(app))
		if err != nil {
			return fmt.Errorf("create app bucket: %w", err)
		}
		if err := b.Put(itob(uint64(version)), data); err != nil {
			return fmt.Errorf("put: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set deploy log %q v%d: %w", app, version, err)
	}
	return nil
}

// DeployLog returns a release's deploy output, or ErrNotFound if none was
// stored (releases made before plat kept it).
func (s *Store) DeployLog(app string, version int) ([]byte, error) {
	var log []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		key, err := versionKey(version)
		if err != nil {
			return err
		}
		var v []byte
		if top := tx.Bucket(bucketDeployLogs); top != nil {
			if b := top.Bucket([]byte(app)); b != nil {
				v = b.Get(key)
			}
		}
		if v == nil {
			return ErrNotFound
		}
		log = bytes.Clone(v) // bbolt memory is only valid inside the transaction
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deploy log %q v%d: %w", app, version, err)
	}
	return log, nil
}

// deleteDeployLogs removes app's deploy logs (the app is being deleted).
func deleteDeployLogs(tx *bolt.Tx, app string) error {
	top := tx.Bucket(bucketDeployLogs)
	if top == nil || top.Bucket([]byte(app)) == nil {
		return nil
	}
	if err := top.DeleteBucket([]byte(app)); err != nil {
		return fmt.Errorf("delete deploy logs: %w", err)
	}
	return nil
}

// tailBytes keeps the tail of log so that the result, with the truncation
// marker, is at most max bytes, starting at a whole UTF-8 character.
func tailBytes(log []byte, max int) []byte {
	if len(log) <= max {
		return bytes.Clone(log)
	}
	tail := log[len(log)-(max-len(truncatedPrefix)):]
	for i := 0; i < utf8.UTFMax && len(tail) > 0 && !utf8.RuneStart(tail[0]); i++ {
		tail = tail[1:]
	}
	return append([]byte(truncatedPrefix), tail...)
}
