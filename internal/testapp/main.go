// Command testapp is the app plat's integration tests deploy: a static
// binary for FROM-scratch images whose behaviour is set by files baked into
// the image (/version, /mode) and by its environment.
//
// Modes: "" serves normally; "unhealthy" answers 500; "crash" exits at once;
// "slowstart" waits 30s before listening (to kill the daemon mid-check);
// "dial" serves normally plus /dial?addr=HOST:PORT, which tries a TCP
// connection from inside the container and answers "connected" or
// "failed: <error>" (the network isolation tests; only that mode has it).
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	version := readFile("/version")
	mode := readFile("/mode")
	host, _ := os.Hostname() // the container's short ID: tells replicas apart
	fmt.Printf("testapp %s starting in mode %q\n", version, mode)
	switch mode {
	case "crash":
		fmt.Println("boom: testapp crashed on purpose")
		os.Exit(3)
	case "slowstart":
		time.Sleep(30 * time.Second)
	}
	if mode == "dial" {
		http.HandleFunc("/dial", dial)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if mode == "unhealthy" {
			http.Error(w, "unhealthy on purpose", http.StatusInternalServerError)
			return
		}
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		if line := r.URL.Query().Get("print"); line != "" {
			fmt.Println(line)
		}
		fmt.Fprintf(w, "host=%s version=%s greeting=%s\n", host, version, os.Getenv("GREETING"))
	})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}

// dialTimeout bounds one /dial attempt: a dropped SYN never answers.
const dialTimeout = 2 * time.Second

func dial(w http.ResponseWriter, r *http.Request) {
	c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), dialTimeout)
	if err != nil {
		fmt.Fprintf(w, "failed: %v\n", err)
		return
	}
	c.Close()
	fmt.Fprintln(w, "connected")
}

func readFile(name string) string {
	b, _ := os.ReadFile(name)
	return strings.TrimSpace(string(b))
}
