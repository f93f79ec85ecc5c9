package store

import (
	"fmt"

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
	return s.putReleaseLog(bucketDeployLogs, "deploy log", app, version, tailBytes(log, MaxDeployLog))
}

// DeployLog returns a release's deploy output, or ErrNotFound if none was
// stored (releases made before plat kept it).
func (s *Store) DeployLog(app string, version int) ([]byte, error) {
	return s.releaseLog(bucketDeployLogs, "deploy log", app, version)
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
