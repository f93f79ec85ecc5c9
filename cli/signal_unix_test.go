//go:build unix

package cli

import (
	"io"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestLogsFollowStopsOnInterrupt(t *testing.T) {
	streaming := make(chan struct{})
	newFake(t, map[string]http.HandlerFunc{"GET /api/apps/web/logs": func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
		w.(http.Flusher).Flush()
		close(streaming)
		<-r.Context().Done() // follow forever, until the client hangs up
	}})
	go func() {
		<-streaming
		time.Sleep(50 * time.Millisecond) // let the client copy the first line
		syscall.Kill(os.Getpid(), syscall.SIGINT)
	}()
	out, errOut, code := run("logs", "web", "-f")
	if code != 0 || out != "hello\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
