// Command hello is the backend of the router benchmark (bench/router.sh): a
// tiny HTTP server that answers every request with the same short body, so
// the benchmark measures the proxies in front of it, not the app.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
	"time"
)

// body is small on purpose: per-request overhead dominates, as for most API
// and health-check traffic.
const body = "Hello, World!\n"

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address (loopback)")
	flag.Parse()

	length := strconv.Itoa(len(body))
	srv := &http.Server{
		Addr:              *addr,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			h["Content-Length"] = []string{length}
			_, _ = w.Write([]byte(body))
		}),
	}
	log.Fatal(srv.ListenAndServe())
}
