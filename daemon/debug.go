package daemon

import (
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"time"
)

// processStart is when the daemon process started, for the uptime in
// /api/debug/runtime.
var processStart = time.Now()

// fdDir lists the process's open file descriptors (Linux).
const fdDir = "/proc/self/fd"

// runtimeInfo is the answer of GET /api/debug/runtime: what an operator
// (or the soak benchmark) watches to see that nothing grows without bound.
type runtimeInfo struct {
	Goroutines int `json:"goroutines"`
	// Threads is the number of OS threads the Go runtime made.
	Threads int `json:"threads"`
	// HeapLiveBytes is the heap the last GC found reachable: the number that
	// grows when something leaks, unlike HeapObjectsBytes, which includes
	// garbage not yet collected.
	HeapLiveBytes    uint64 `json:"heap_live_bytes"`
	HeapObjectsBytes uint64 `json:"heap_objects_bytes"`
	HeapObjects      uint64 `json:"heap_objects"`
	// GoTotalBytes is all memory the Go runtime mapped (heap, stacks, its own).
	GoTotalBytes uint64 `json:"go_total_bytes"`
	GCCycles     uint64 `json:"gc_cycles"`
	// OpenFDs counts the process's open file descriptors; -1 where the
	// system does not say (not Linux).
	OpenFDs       int     `json:"open_fds"`
	Uptime        string  `json:"uptime"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	GoVersion     string  `json:"go_version"`
}

// runtimeMetrics are read in one metrics.Read call, in this order.
var runtimeMetrics = []string{
	"/sched/goroutines:goroutines",
	"/sched/threads/total:threads",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/objects:objects",
	"/memory/classes/total:bytes",
	"/gc/cycles/total:gc-cycles",
}

// debugRuntime answers GET /api/debug/runtime.
func (s *server) debugRuntime(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, readRuntime())
}

func readRuntime() runtimeInfo {
	samples := make([]metrics.Sample, len(runtimeMetrics))
	for i, name := range runtimeMetrics {
		samples[i].Name = name
	}
	metrics.Read(samples)
	u := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0 // a metric this Go version does not have
		}
		return samples[i].Value.Uint64()
	}
	up := time.Since(processStart)
	return runtimeInfo{
		Goroutines:       int(u(0)),
		Threads:          int(u(1)),
		HeapLiveBytes:    u(2),
		HeapObjectsBytes: u(3),
		HeapObjects:      u(4),
		GoTotalBytes:     u(5),
		GCCycles:         u(6),
		OpenFDs:          openFDs(),
		Uptime:           up.Round(time.Second).String(),
		UptimeSeconds:    up.Seconds(),
		GoVersion:        runtime.Version(),
	}
}

// openFDs counts /proc/self/fd, less the descriptor reading it uses.
func openFDs() int {
	f, err := os.Open(fdDir)
	if err != nil {
		return -1
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return -1
	}
	return len(names) - 1
}
