package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plat-paas/plat/deploy"
)

// requireEngine fails (CI) or skips the test without a Docker Engine.
func requireEngine(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Docker Engine (-short)")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("needs a running Docker Engine; under CI=true it may not skip: %s", out)
		}
		t.Skipf("needs a running Docker Engine: %s", out)
	}
}

func testConfig(t *testing.T) Config {
	return Config{
		DataDir: t.TempDir(), APIAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Domain: "localhost",
		Deploy: deploy.Config{Instance: fmt.Sprintf("plat-runtest-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6), ScaleInterval: 5 * time.Millisecond},
	}
}

// leftovers lists the goroutines still running one of Run's loops.
func leftovers() []string {
	buf := make([]byte, 4<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	var found []string
	for _, fn := range []string{"deploy.(*Deployer).Watch", "deploy.(*Deployer).Autoscale", "deploy.(*dispatcher).run", "net/http.(*Server).Serve("} {
		if strings.Contains(stacks, fn) {
			found = append(found, fn)
		}
	}
	return found
}

// syncBuffer is a log sink the test can read while the daemon writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunWaitsForWhatItStarts: when Run returns, the engine watcher, the
// autoscaler and the servers it started have exited (before, Run closed
// the store under them and returned).
func TestRunWaitsForWhatItStarts(t *testing.T) {
	requireEngine(t)
	for i := range 5 {
		var logs syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, testConfig(t), slog.New(slog.NewTextHandler(&logs, nil))) }()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), "plat daemon ready"); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the daemon did not start:\n%s", logs.String())
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if left := leftovers(); len(left) > 0 {
			t.Fatalf("run %d: still running after Run returned: %v", i, left)
		}
	}
}

// TestListenerErrorStopsTheDaemon: one server failing stops the others and
// the background loops, and Run's serve returns its error.
func TestListenerErrorStopsTheDaemon(t *testing.T) {
	requireEngine(t)
	d, err := newDaemon(context.Background(), testConfig(t), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	if err := d.listen(); err != nil {
		t.Fatal(err)
	}
	d.listeners[1].Close() // the router's: its Serve fails at once
	done := make(chan error, 1)
	go func() { done <- d.serve(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "use of closed network connection") {
			t.Errorf("serve returned %v, want the listener's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a failed listener did not stop the daemon")
	}
	if left := leftovers(); len(left) > 0 {
		t.Errorf("still running after serve returned: %v", left)
	}
}
