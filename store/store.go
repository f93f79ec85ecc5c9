// Package store persists plat's state (apps, releases, build logs, events
// and API tokens) in a single bbolt file. It is the only package that knows
// the bucket layout; callers see plain Go values and sentinel errors.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bucket layout:
//
//	apps      name → App JSON
//	releases  app → (big-endian version → Release JSON); the nested bucket's
//	          sequence is the version counter, so versions are never reused
//	buildlogs app → (big-endian version → raw log bytes)
//	events    app → (big-endian sequence → Event JSON)
//	tokens    big-endian sequence → token record JSON (hash only)
//	sessions  SHA-256 of a dashboard session ID → Session JSON
var (
	bucketApps      = []byte("apps")
	bucketReleases  = []byte("releases")
	bucketBuildLogs = []byte("buildlogs")
	bucketEvents    = []byte("events")
	bucketTokens    = []byte("tokens")
	bucketSessions  = []byte("sessions")
)

const (
	// openTimeout bounds the wait for bbolt's file lock, so a second daemon
	// on the same data dir fails fast instead of hanging forever.
	openTimeout = time.Second

	// MaxBuildLog is the most build-log bytes kept per release.
	MaxBuildLog = 1 << 20

	// MaxEvents is the most events kept per app; older ones are dropped.
	MaxEvents = 500

	truncatedPrefix = "[... earlier output truncated ...]\n"
)

// Store is a bbolt-backed store. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
}

// Event is one entry in an app's deploy timeline.
type Event struct {
	App     string    `json:"app"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Release int       `json:"release,omitempty"`
	Message string    `json:"message"`
}

// Open opens (creating if needed) the database file at path.
func Open(path string) (*Store, error) {
	return open(path, openTimeout)
}

// OpenWait is Open waiting up to timeout for another process (the daemon
// worker an upgrade replaces) to release the file lock.
func OpenWait(path string, timeout time.Duration) (*Store, error) {
	// bbolt polls a held lock every 50 ms; a blocking flock returns the
	// moment the holder releases it, which an upgrade's gap is made of.
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
		locked := make(chan error, 1)
		go func() { locked <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
		select {
		case err := <-locked:
			if err == nil {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			}
			f.Close()
		case <-time.After(timeout):
			return nil, fmt.Errorf("open %s: data dir is in use by another plat daemon: %w", path, bolterrors.ErrTimeout)
		}
	}
	return open(path, timeout)
}

func open(path string, timeout time.Duration) (*Store, error) {
	// The file holds token hashes and app config, so keep it private.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: data dir is in use by another plat daemon: %w", path, err)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketApps, bucketReleases, bucketBuildLogs, bucketEvents, bucketTokens, bucketSessions} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return migrateTokens(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database, releasing the file lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// --- helpers ---

func itob(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func versionKey(version int) ([]byte, error) {
	if version <= 0 {
		return nil, fmt.Errorf("release v%d: %w", version, ErrNotFound)
	}
	return itob(uint64(version)), nil
}

// getJSON decodes the value at key into v, reporting whether it existed.
func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	if err := b.Put(key, data); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	return nil
}

// getApp loads an app inside tx, returning ErrNotFound if it is missing.
func getApp(tx *bolt.Tx, name string) (App, error) {
	var a App
	ok, err := getJSON(tx.Bucket(bucketApps), []byte(name), &a)
	if err != nil {
		return App{}, err
	}
	if !ok {
		return App{}, fmt.Errorf("app %q: %w", name, ErrNotFound)
	}
	return a, nil
}

// appBucket returns the app's nested bucket under top, creating it if
// needed. The app must exist, so no data is kept for unknown apps.
func appBucket(tx *bolt.Tx, top []byte, app string) (*bolt.Bucket, error) {
	if _, err := getApp(tx, app); err != nil {
		return nil, err
	}
	b, err := tx.Bucket(top).CreateBucketIfNotExists([]byte(app))
	if err != nil {
		return nil, fmt.Errorf("%s bucket for %q: %w", top, app, err)
	}
	return b, nil
}

// appBucketRead is appBucket for read-only transactions: it returns nil
// (and no error) when the app exists but has no nested bucket yet.
func appBucketRead(tx *bolt.Tx, top []byte, app string) (*bolt.Bucket, error) {
	if _, err := getApp(tx, app); err != nil {
		return nil, err
	}
	return tx.Bucket(top).Bucket([]byte(app)), nil
}

// --- apps ---

// CreateApp stores a new app. It returns ErrExists if the name is taken.
func (s *Store) CreateApp(a App) error {
	if a.Name == "" {
		return errors.New("create app: empty name")
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now()
	}
	// A new app has no releases yet, whatever the caller passed.
	a.Active = 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		apps := tx.Bucket(bucketApps)
		if apps.Get([]byte(a.Name)) != nil {
			return ErrExists
		}
		if err := putJSON(apps, []byte(a.Name), a); err != nil {
			return err
		}
		// Create the releases bucket now so its sequence (the version
		// counter) exists from the start.
		if _, err := tx.Bucket(bucketReleases).CreateBucketIfNotExists([]byte(a.Name)); err != nil {
			return fmt.Errorf("releases bucket: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create app %q: %w", a.Name, err)
	}
	return nil
}

// GetApp returns the named app or ErrNotFound.
func (s *Store) GetApp(name string) (App, error) {
	var a App
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		a, err = getApp(tx, name)
		return err
	})
	if err != nil {
		return App{}, fmt.Errorf("get app: %w", err)
	}
	return a, nil
}

// ListApps returns all apps sorted by name (bbolt keeps keys sorted).
func (s *Store) ListApps() ([]App, error) {
	apps := []App{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketApps).ForEach(func(k, v []byte) error {
			var a App
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode app %q: %w", k, err)
			}
			apps = append(apps, a)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return apps, nil
}

// UpdateApp applies fn to the stored app in one transaction. An error from
// fn aborts the update and is returned wrapped. fn may not change Name or
// Active: renaming would orphan releases, and Active is owned by
// ActivateRelease to keep the one-active-release invariant.
func (s *Store) UpdateApp(name string, fn func(*App) error) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		a, err := getApp(tx, name)
		if err != nil {
			return err
		}
		orig := a
		if err := fn(&a); err != nil {
			return err
		}
		if a.Name != orig.Name {
			return errors.New("app name cannot be changed")
		}
		if a.Active != orig.Active {
			return errors.New("active release can only be changed by ActivateRelease")
		}
		return putJSON(tx.Bucket(bucketApps), []byte(name), a)
	})
	if err != nil {
		return fmt.Errorf("update app %q: %w", name, err)
	}
	return nil
}

// DeleteApp removes the app with all its releases, build logs and events.
// A later app with the same name starts again at version 1.
func (s *Store) DeleteApp(name string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getApp(tx, name); err != nil {
			return err
		}
		if err := tx.Bucket(bucketApps).Delete([]byte(name)); err != nil {
			return fmt.Errorf("delete app record: %w", err)
		}
		for _, top := range [][]byte{bucketReleases, bucketBuildLogs, bucketEvents} {
			err := tx.Bucket(top).DeleteBucket([]byte(name))
			if err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return fmt.Errorf("delete %s: %w", top, err)
			}
		}
		return deleteDeployLogs(tx, name)
	})
	if err != nil {
		return fmt.Errorf("delete app %q: %w", name, err)
	}
	return nil
}

// --- releases ---

func getRelease(b *bolt.Bucket, app string, version int) (Release, error) {
	key, err := versionKey(version)
	if err != nil {
		return Release{}, fmt.Errorf("app %q: %w", app, err)
	}
	var r Release
	ok := false
	if b != nil {
		ok, err = getJSON(b, key, &r)
		if err != nil {
			return Release{}, err
		}
	}
	if !ok {
		return Release{}, fmt.Errorf("app %q release v%d: %w", app, version, ErrNotFound)
	}
	return r, nil
}

func putRelease(b *bolt.Bucket, r Release) error {
	return putJSON(b, itob(uint64(r.Version)), r)
}

// CreateRelease stores r as the app's next version and returns it with
// Version (and CreatedAt, if zero) filled in. Status defaults to deploying;
// a release cannot be created active, only activated.
func (s *Store) CreateRelease(r Release) (Release, error) {
	if r.Status == "" {
		r.Status = StatusDeploying
	}
	if r.Status == StatusActive {
		return Release{}, fmt.Errorf("create release for %q: use ActivateRelease: %w", r.App, ErrInvalidState)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := appBucket(tx, bucketReleases, r.App)
		if err != nil {
			return err
		}
		// The bucket sequence only grows, so failed or deleted releases
		// never give their version away.
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("next version: %w", err)
		}
		r.Version = int(seq)
		return putRelease(b, r)
	})
	if err != nil {
		return Release{}, fmt.Errorf("create release for %q: %w", r.App, err)
	}
	return r, nil
}

// GetRelease returns one release or ErrNotFound.
func (s *Store) GetRelease(app string, version int) (Release, error) {
	var r Release
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := appBucketRead(tx, bucketReleases, app)
		if err != nil {
			return err
		}
		r, err = getRelease(b, app, version)
		return err
	})
	if err != nil {
		return Release{}, fmt.Errorf("get release: %w", err)
	}
	return r, nil
}

// ListReleases returns the app's releases, oldest first.
func (s *Store) ListReleases(app string) ([]Release, error) {
	rels := []Release{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := appBucketRead(tx, bucketReleases, app)
		if err != nil || b == nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var r Release
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode release %x: %w", k, err)
			}
			rels = append(rels, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list releases of %q: %w", app, err)
	}
	return rels, nil
}

// UpdateRelease applies fn to a stored release in one transaction. fn may
// not change App or Version, nor move Status to or from active: that is
// ActivateRelease's job, so the one-active invariant holds.
func (s *Store) UpdateRelease(app string, version int, fn func(*Release) error) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := appBucketRead(tx, bucketReleases, app)
		if err != nil {
			return err
		}
		r, err := getRelease(b, app, version)
		if err != nil {
			return err
		}
		orig := r
		if err := fn(&r); err != nil {
			return err
		}
		if r.App != orig.App || r.Version != orig.Version {
			return errors.New("release app and version cannot be changed")
		}
		if r.Status != orig.Status && (r.Status == StatusActive || orig.Status == StatusActive) {
			return fmt.Errorf("status %s → %s: use ActivateRelease: %w", orig.Status, r.Status, ErrInvalidState)
		}
		return putRelease(b, r)
	})
	if err != nil {
		return fmt.Errorf("update release %q v%d: %w", app, version, err)
	}
	return nil
}

// ActivateRelease makes version the app's active release in one
// transaction: every other active release of the app (normally just the
// previous one) becomes superseded and App.Active is set. A failed release
// cannot be activated (ErrInvalidState).
func (s *Store) ActivateRelease(app string, version int) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		a, err := getApp(tx, app)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketReleases).Bucket([]byte(app))
		r, err := getRelease(b, app, version)
		if err != nil {
			return err
		}
		if r.Status == StatusFailed {
			return fmt.Errorf("release v%d has failed: %w", version, ErrInvalidState)
		}
		// Scan all releases rather than trusting App.Active alone, so the
		// invariant holds even if the two ever disagreed.
		var others []Release
		err = b.ForEach(func(k, v []byte) error {
			var o Release
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("decode release %x: %w", k, err)
			}
			if o.Status == StatusActive && o.Version != version {
				others = append(others, o)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Writes happen after the scan: bbolt forbids mutating a bucket
		// while ForEach is iterating it.
		for _, o := range others {
			o.Status = StatusSuperseded
			if err := putRelease(b, o); err != nil {
				return err
			}
		}
		r.Status = StatusActive
		if r.FinishedAt.IsZero() {
			r.FinishedAt = time.Now()
		}
		if err := putRelease(b, r); err != nil {
			return err
		}
		a.Active = version
		return putJSON(tx.Bucket(bucketApps), []byte(app), a)
	})
	if err != nil {
		return fmt.Errorf("activate release %q v%d: %w", app, version, err)
	}
	return nil
}

// FailRelease marks a release failed with reason. A release that went
// live (active or superseded) cannot fail: ErrInvalidState.
func (s *Store) FailRelease(app string, version int, reason string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := appBucketRead(tx, bucketReleases, app)
		if err != nil {
			return err
		}
		r, err := getRelease(b, app, version)
		if err != nil {
			return err
		}
		if r.Status == StatusActive || r.Status == StatusSuperseded {
			return fmt.Errorf("release is %s: %w", r.Status, ErrInvalidState)
		}
		r.Status = StatusFailed
		r.Reason = reason
		r.FinishedAt = time.Now()
		return putRelease(b, r)
	})
	if err != nil {
		return fmt.Errorf("fail release %q v%d: %w", app, version, err)
	}
	return nil
}

// DeployingReleases returns every release, across all apps, still marked
// deploying, ordered by app then version. At start-up these are leftovers
// of a daemon that died mid-deploy.
func (s *Store) DeployingReleases() ([]Release, error) {
	rels := []Release{}
	err := s.db.View(func(tx *bolt.Tx) error {
		top := tx.Bucket(bucketReleases)
		return top.ForEachBucket(func(app []byte) error {
			return top.Bucket(app).ForEach(func(k, v []byte) error {
				var r Release
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("decode release %q %x: %w", app, k, err)
				}
				if r.Status == StatusDeploying {
					rels = append(rels, r)
				}
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("deploying releases: %w", err)
	}
	return rels, nil
}

// --- build logs ---

// truncateLog keeps the tail of log so that the result, including the
// truncation marker, is at most MaxBuildLog bytes.
func truncateLog(log []byte) []byte { return tailBytes(log, MaxBuildLog) }

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
	out := make([]byte, 0, len(truncatedPrefix)+len(tail))
	out = append(out, truncatedPrefix...)
	return append(out, tail...)
}

// SetBuildLog stores (replacing) the build log of a release, keeping at
// most MaxBuildLog bytes of its tail. Logs live apart from release records
// so listing releases doesn't load megabytes of output. They are stored as
// raw bytes, not JSON, to avoid base64 bloat.
func (s *Store) SetBuildLog(app string, version int, log []byte) error {
	return s.putReleaseLog(bucketBuildLogs, "build log", app, version, truncateLog(log))
}

// BuildLog returns a release's build log, or ErrNotFound if none was stored.
func (s *Store) BuildLog(app string, version int) ([]byte, error) {
	return s.releaseLog(bucketBuildLogs, "build log", app, version)
}

// putReleaseLog stores data as the log (kind, in bucket top) of an existing
// release of app.
func (s *Store) putReleaseLog(top []byte, kind, app string, version int, data []byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		rb, err := appBucketRead(tx, bucketReleases, app)
		if err != nil {
			return err
		}
		if _, err := getRelease(rb, app, version); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(top); err != nil {
			return fmt.Errorf("create bucket: %w", err)
		}
		b, err := appBucket(tx, top, app)
		if err != nil {
			return err
		}
		if err := b.Put(itob(uint64(version)), data); err != nil {
			return fmt.Errorf("put: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set %s %q v%d: %w", kind, app, version, err)
	}
	return nil
}

// releaseLog returns the log (kind, in bucket top) of a release of app, or
// ErrNotFound if none was stored.
func (s *Store) releaseLog(top []byte, kind, app string, version int) ([]byte, error) {
	var log []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		key, err := versionKey(version)
		if err != nil {
			return err
		}
		var v []byte
		if t := tx.Bucket(top); t != nil {
			if b := t.Bucket([]byte(app)); b != nil {
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
		return nil, fmt.Errorf("%s %q v%d: %w", kind, app, version, err)
	}
	return log, nil
}

// --- events ---

// AddEvent appends e to its app's timeline (setting Time if zero) and drops
// the oldest events beyond MaxEvents. The app must exist.
func (s *Store) AddEvent(e Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := appBucket(tx, bucketEvents, e.App)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("next sequence: %w", err)
		}
		if err := putJSON(b, itob(seq), e); err != nil {
			return err
		}
		// Keys are consecutive sequence numbers and only the oldest are
		// ever deleted, so the count is last - first + 1.
		c := b.Cursor()
		for k, _ := c.First(); k != nil && seq-binary.BigEndian.Uint64(k)+1 > MaxEvents; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return fmt.Errorf("drop old event: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add event for %q: %w", e.App, err)
	}
	return nil
}

// ListEvents returns the app's most recent events, newest last, at most
// limit of them (limit <= 0: all).
func (s *Store) ListEvents(app string, limit int) ([]Event, error) {
	events := []Event{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := appBucketRead(tx, bucketEvents, app)
		if err != nil || b == nil {
			return err
		}
		// Walk back from the newest, then reverse.
		c := b.Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(events) < limit); k, v = c.Prev() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode event %x: %w", k, err)
			}
			events = append(events, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list events of %q: %w", app, err)
	}
	for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
		events[i], events[j] = events[j], events[i]
	}
	return events, nil
}
