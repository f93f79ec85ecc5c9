package deploy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/plat-paas/plat/store"
)

func newTestDeployer(t *testing.T) *Deployer {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "plat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st, &fakeEngine{}, &fakeSwitcher{}, Config{}, slog.New(slog.DiscardHandler))
}

func TestLeaseCancelCauses(t *testing.T) {
	tests := []struct {
		name   string
		cancel func(d *Deployer, parent context.CancelFunc)
		want   string
	}{
		{"deploy:cancel", func(d *Deployer, _ context.CancelFunc) {
			if got := d.Cancel(context.Background(), "a", CancelledBy("bob")); !slices.Equal(got, []string{"v2 (push of abc)"}) {
				t.Errorf("Cancel returned %q", got)
			}
		}, "cancelled by bob"},
		{"client gone", func(_ *Deployer, parent context.CancelFunc) { parent() }, "cancelled: the client disconnected"},
		{"daemon stopping", func(d *Deployer, _ context.CancelFunc) { d.CancelAll(ErrShutdown) }, "cancelled: the plat daemon is stopping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDeployer(t)
			parent, cancelParent := context.WithCancel(context.Background())
			defer cancelParent()
			l := d.NewLease(parent, "a", true)
			l.describe("v2 (push of abc)")
			if err := l.Lock(context.Background(), io.Discard); err != nil {
				t.Fatal(err)
			}
			go func() {
				<-l.Context().Done()
				l.Release() // what the lease's owner does when its operation ends
			}()
			tt.cancel(d, cancelParent)
			select {
			case <-l.done:
			case <-time.After(5 * time.Second):
				t.Fatal("the lease did not end")
			}
			cause := context.Cause(l.Context())
			if !errors.Is(cause, ErrCancelled) || cause.Error() != tt.want {
				t.Errorf("cause %v, want %q", cause, tt.want)
			}
		})
	}
}

// TestLeaseRelease: the lease keeps the release lock until its owner
// releases it, and Release waits for a Push still running under it; the
// replica lock stays free throughout.
func TestLeaseRelease(t *testing.T) {
	d := newTestDeployer(t)
	l := d.NewLease(context.Background(), "a", true)
	stopUse, err := l.use()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Lock(context.Background(), io.Discard); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() { l.Release(); close(released) }()
	select {
	case <-released:
		t.Fatal("Release returned while a Push still ran under the lease")
	case <-l.Context().Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.locks.lockRelease(ctx, "a", io.Discard); err == nil {
		t.Fatal("the release lock was free while the lease held it")
	}
	unlockR, err := d.locks.lockReplicas(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	unlockR()
	stopUse()
	<-released
	unlock, err := d.locks.lockRelease(context.Background(), "a", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := l.use(); err == nil {
		t.Error("a released lease took a new user")
	}
	if d.leases.get(l.ID) != nil {
		t.Error("a released lease is still registered")
	}
}

// TestPushNeedsItsLease: a deploy request without the lease of a running
// git push of the same app is refused (this replaces "someone holds the
// lock").
func TestPushNeedsItsLease(t *testing.T) {
	d := newTestDeployer(t)
	other := d.NewLease(context.Background(), "b", true)
	defer other.Release()
	for _, id := range []string{"", "nope", other.ID} {
		if _, err := d.Push(context.Background(), PushRequest{App: "a", Lease: id}, io.Discard); !errors.Is(err, ErrNoLease) {
			t.Errorf("Push with lease %q: %v, want ErrNoLease", id, err)
		}
	}
}

func TestCancelAllCancelsNewLeases(t *testing.T) {
	d := newTestDeployer(t)
	d.CancelAll(ErrShutdown)
	l := d.NewLease(context.Background(), "a", true)
	defer l.Release()
	if err := l.Lock(context.Background(), io.Discard); !errors.Is(err, ErrShutdown) {
		t.Errorf("Lock after CancelAll: %v, want ErrShutdown", err)
	}
}

// TestSubLease: a preview's push runs under its app's git push lease: only
// that lease's ID and app are accepted, and the sub-lease holds the
// preview's release lock until the parent lease ends.
func TestSubLease(t *testing.T) {
	d := newTestDeployer(t)
	parent := d.NewLease(context.Background(), "a", true)
	other := d.NewLease(context.Background(), "b", true)
	defer other.Release()
	for _, tt := range []struct{ id, app string }{{"", "a"}, {"nope", "a"}, {other.ID, "a"}, {parent.ID, "b"}} {
		if _, err := d.SubLease(tt.id, tt.app, "a_x"); !errors.Is(err, ErrNoLease) {
			t.Errorf("SubLease(%q, %q): %v, want ErrNoLease", tt.id, tt.app, err)
		}
	}
	sub, err := d.SubLease(parent.ID, "a", "a_x")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Lock(context.Background(), io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.locks.lockRelease(ctx, "a_x", io.Discard); err == nil {
		t.Fatal("the preview's lock was free while its push held it")
	}
	parent.Release()
	select {
	case <-sub.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the sub-lease outlived its parent")
	}
	unlock, err := d.locks.lockRelease(context.Background(), "a_x", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}
