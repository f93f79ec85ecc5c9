// Command testapp is the app plat's integration tests deploy: a static
// binary for FROM-scratch images whose behaviour is set by files baked into
// the image (/version, /mode) and by its environment.
//
// Modes: "" serves normally; "unhealthy" answers 500; "errors" answers 500
// on every path but "/" (the health check passes, real traffic fails: a bad
// canary); "crash" exits at once;
// "slowstart" waits 30s before listening (to kill the daemon mid-check);
// "startdelay D" waits D before listening (a replica to catch mid-check);
// "dial" serves normally plus /dial?addr=HOST:PORT, which tries a TCP
// connection from inside the container and answers "connected" or
// "failed: <error>" (the network isolation tests; only that mode has it).
//
// Arguments (a Procfile line or `plat run` in an image without a shell):
// "args A B..." prints each argument in brackets and exits 0; "exit N
// [TEXT]" prints TEXT (and GREETING) and exits with N; "sleep D" sleeps D
// and exits 0; "serve WORD" serves as usual and adds " web=WORD" to its
// answers (a Procfile web: line).
//
// Query parameters of any request: sleep=DURATION waits before answering;
// print=LINE writes LINE to stdout; readbody=1 reads the request body
// whole before answering; hugeheader=N answers with a response
// header of N bytes, streamed (a hostile app, for the router's limits);
// echo=NAME adds " NAME=[VALUE]" to the answer, VALUE the request header's
// values joined by "|" (what the router added or removed).
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	webWord := ""
	if len(os.Args) > 1 {
		webWord = task(os.Args[1:])
	}
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
	if d, ok := strings.CutPrefix(mode, "startdelay "); ok {
		delay, _ := time.ParseDuration(d)
		time.Sleep(delay)
	}
	if mode == "dial" {
		http.HandleFunc("/dial", dial)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if mode == "unhealthy" || (mode == "errors" && r.URL.Path != "/") {
			http.Error(w, "unhealthy on purpose", http.StatusInternalServerError)
			return
		}
		if n, err := strconv.ParseInt(r.URL.Query().Get("hugeheader"), 10, 64); err == nil {
			hugeHeader(w, n)
			return
		}
		if r.URL.Query().Get("readbody") != "" {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		if line := r.URL.Query().Get("print"); line != "" {
			fmt.Println(line)
		}
		extra := ""
		if webWord != "" {
			extra = " web=" + webWord
		}
		for _, name := range r.URL.Query()["echo"] {
			extra += fmt.Sprintf(" %s=[%s]", name, strings.Join(r.Header.Values(name), "|"))
		}
		fmt.Fprintf(w, "host=%s version=%s greeting=%s%s\n", host, version, os.Getenv("GREETING"), extra)
	})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}

// task runs the one-off tasks of the arguments; it returns only for serve.
func task(args []string) string {
	switch args[0] {
	case "args":
		for _, a := range args[1:] {
			fmt.Printf("[%s]", a)
		}
		fmt.Println()
		os.Exit(0)
	case "exit":
		n, _ := strconv.Atoi(args[1])
		fmt.Println(strings.Join(args[2:], " "), "greeting="+os.Getenv("GREETING"))
		fmt.Fprintln(os.Stderr, "testapp: exiting with", n)
		os.Exit(n)
	case "sleep":
		d, _ := time.ParseDuration(args[1])
		fmt.Println("sleeping", d)
		time.Sleep(d)
		os.Exit(0)
	case "serve":
		if len(args) > 1 {
			return args[1]
		}
		return ""
	}
	fmt.Fprintln(os.Stderr, "testapp: unknown task", args[0])
	os.Exit(2)
	return ""
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

// hugeHeader takes over the connection and writes a response whose header
// is n bytes long, in 64 KiB writes, until the peer hangs up.
func hugeHeader(w http.ResponseWriter, n int64) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		fmt.Println("hugeheader:", err)
		return
	}
	defer conn.Close()
	chunk := []byte(strings.Repeat("a", 64<<10))
	_, err = fmt.Fprint(conn, "HTTP/1.1 200 OK\r\nX-Huge: ")
	sent := int64(0)
	for ; err == nil && sent < n; sent += int64(len(chunk)) {
		_, err = conn.Write(chunk)
	}
	if err == nil {
		_, err = fmt.Fprint(conn, "\r\nContent-Length: 0\r\n\r\n")
	}
	fmt.Printf("hugeheader: sent %d of %d bytes: %v\n", sent, n, err)
}
