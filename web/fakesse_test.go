package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// sseEvent is one named event of a fake watch stream.
type sseEvent struct {
	name string
	data any
}

// serveSSE streams snap()'s events like the daemon's watch endpoints do:
// each event when its data changed, checked every interval, until the
// client goes or stop is closed.
func serveSSE(w http.ResponseWriter, r *http.Request, interval time.Duration, stop <-chan struct{}, snap func() []sseEvent) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 500\n\n")
	last := map[string][]byte{}
	for {
		for _, ev := range snap() {
			b, _ := json.Marshal(ev.data)
			if bytes.Equal(last[ev.name], b) {
				continue
			}
			last[ev.name] = b
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, b)
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-stop:
			return
		case <-time.After(interval):
		}
	}
}
