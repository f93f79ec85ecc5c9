package daemon

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestReadRuntimeCounts checks that the numbers the soak benchmark watches
// follow the process: goroutines and open files started here show up, and
// are gone once ended and closed.
func TestReadRuntimeCounts(t *testing.T) {
	const n = 40
	runtime.GC() // the live heap is known from the first GC on
	before := readRuntime()
	if before.Goroutines <= 0 || before.OpenFDs <= 0 || before.HeapLiveBytes == 0 || before.Threads <= 0 || before.GoTotalBytes == 0 {
		t.Fatalf("implausible reading: %+v", before)
	}

	stop := make(chan struct{})
	done := make(chan struct{}, n)
	var files []*os.File
	for i := range n {
		go func() { <-stop; done <- struct{}{} }()
		f, err := os.Create(filepath.Join(t.TempDir(), "f"+string(rune('a'+i%26))))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	during := readRuntime()
	if got := during.Goroutines - before.Goroutines; got < n {
		t.Errorf("goroutines grew by %d, want at least %d", got, n)
	}
	if got := during.OpenFDs - before.OpenFDs; got != n {
		t.Errorf("open fds grew by %d, want %d", got, n)
	}

	close(stop)
	for range n {
		<-done
	}
	for _, f := range files {
		f.Close()
	}
	after := readRuntime()
	if after.OpenFDs != before.OpenFDs {
		t.Errorf("open fds: %d before, %d after closing", before.OpenFDs, after.OpenFDs)
	}
	if after.UptimeSeconds < before.UptimeSeconds || after.Uptime == "" || after.GoVersion == "" {
		t.Errorf("uptime/version: %+v", after)
	}
}
