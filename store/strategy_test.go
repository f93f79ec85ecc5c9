package store

import (
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// An app's strategy is kept with its record; records written before
// strategies existed read as the zero value (blue-green), and other fields of
// the app survive the round trip.
func TestAppStrategy(t *testing.T) {
	s, _ := newStore(t)
	// An app record as an older plat wrote it, without "strategy".
	legacy := `{"name":"old","created_at":"2026-01-02T03:04:05Z","health":{},"active":0,"hsts_max_age":3600000000000}`
	err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.Bucket(bucketReleases).CreateBucketIfNotExists([]byte("old")); err != nil {
			return err
		}
		return tx.Bucket(bucketApps).Put([]byte("old"), []byte(legacy))
	})
	if err != nil {
		t.Fatal(err)
	}
	old, err := s.GetApp("old")
	if err != nil {
		t.Fatal(err)
	}
	if old.Strategy.Name != "" || !isZeroStrategy(old.Strategy) || old.HSTSMaxAge != time.Hour {
		t.Fatalf("legacy app = %+v, want the zero strategy and its HSTS kept", old)
	}

	canary := Strategy{Name: StrategyCanary, Steps: []int{10, 50, 100}, StepTime: time.Minute, MaxErrorRate: 0, MaxP99: 800 * time.Millisecond, MinRequests: 50}
	if err := s.UpdateApp("old", func(a *App) error { a.Strategy = canary; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetApp("old")
	if err != nil {
		t.Fatal(err)
	}
	if got.Strategy.Name != StrategyCanary || !slices.Equal(got.Strategy.Steps, canary.Steps) || got.Strategy.StepTime != time.Minute ||
		got.Strategy.MaxP99 != canary.MaxP99 || got.Strategy.MinRequests != 50 || got.HSTSMaxAge != time.Hour {
		t.Fatalf("after UpdateApp: %+v", got)
	}
}

func isZeroStrategy(s Strategy) bool {
	return s.Name == "" && s.Steps == nil && s.StepTime == 0 && s.MaxErrorRate == 0 && s.MaxP99 == 0 && s.MinRequests == 0 && s.Batch == 0 && s.Hold == 0
}
