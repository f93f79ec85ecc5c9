// Package load is plat's HTTP load generator: concurrent clients hitting one
// app through the router until told to stop, counting every failure. The
// zero-downtime tests and the bench commands share it.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultConcurrency is the number of clients when Options leaves it zero.
const DefaultConcurrency = 32

// maxSamples bounds the failure messages a Result keeps.
const maxSamples = 10

// Options describe one load run.
type Options struct {
	Target      string // router address, host:port
	Host        string // Host header naming the app
	Path        string // default "/"
	Concurrency int
	// KeepAlive reuses connections; false opens a new one per request.
	KeepAlive bool
	Timeout   time.Duration // per request; default 30s
	// Pause is how long each client waits between its requests: a bounded
	// rate (at most Concurrency/Pause requests/s) for long runs on a shared
	// machine. Zero sends as fast as the target answers.
	Pause time.Duration
	// InFlight, when set, counts the requests sent and not yet answered,
	// live: what a crash at this instant could fail.
	InFlight *atomic.Int64
	// Header is sent with every request (e.g. an API token).
	Header http.Header
}

// Result counts what the clients saw.
type Result struct {
	Requests int
	OK       int // 2xx
	Non2xx   int
	Errors   int // transport errors (refused, reset, timeout)
	// Errors by kind, and the 5xx among Non2xx.
	Refused, Reset, EOF, Timeout, Status5xx int
	Duration                                time.Duration
	P50, P99                                time.Duration
	Max                                     time.Duration
	Failures                                []string // first few failures, for the report
	latencies                               []time.Duration
}

// Failed is Non2xx plus Errors.
func (r Result) Failed() int { return r.Non2xx + r.Errors }

// RPS is requests per second over the run.
func (r Result) RPS() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

func (r Result) String() string {
	return fmt.Sprintf("%d requests in %s (%.0f req/s): %d ok, %d non-2xx, %d errors; p50 %s p99 %s max %s",
		r.Requests, r.Duration.Round(time.Millisecond), r.RPS(), r.OK, r.Non2xx, r.Errors,
		r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond))
}

// Run hits the target with opts.Concurrency clients until ctx ends.
func Run(ctx context.Context, opts Options) Result {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Path == "" {
		opts.Path = "/"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		DisableKeepAlives:   !opts.KeepAlive,
		MaxIdleConnsPerHost: opts.Concurrency,
		MaxConnsPerHost:     opts.Concurrency,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: opts.Timeout}
	url := "http://" + opts.Target + opts.Path

	results := make([]Result, opts.Concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = worker(ctx, client, url, opts, opts.InFlight)
		}()
	}
	wg.Wait()
	total := Merge(results...)
	total.Duration = time.Since(start)
	return total
}

// worker sends requests one after another until ctx ends. A request cut
// short by ctx itself is not counted.
func worker(ctx context.Context, client *http.Client, url string, opts Options, inFlight *atomic.Int64) Result {
	host, pause := opts.Host, opts.Pause
	if inFlight == nil {
		inFlight = new(atomic.Int64)
	}
	var r Result
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, url, nil)
		if err != nil {
			r.fail(err.Error())
			return r
		}
		req.Host = host
		for k, v := range opts.Header {
			req.Header[k] = v
		}
		began := time.Now()
		inFlight.Add(1)
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		inFlight.Add(-1)
		took := time.Since(began)
		r.Requests++
		r.latencies = append(r.latencies, took)
		switch {
		case err != nil:
			r.Errors++
			r.classify(err)
			r.fail(err.Error())
		case resp.StatusCode < 200 || resp.StatusCode > 299:
			r.Non2xx++
			if resp.StatusCode >= 500 {
				r.Status5xx++
			}
			r.fail(fmt.Sprintf("HTTP %d", resp.StatusCode))
		default:
			r.OK++
		}
		if pause > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}
	return r
}

// classify counts a transport error by kind.
func (r *Result) classify(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		r.Refused++
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		r.Reset++
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "EOF"):
		r.EOF++
	case errors.As(err, &ne) && ne.Timeout():
		r.Timeout++
	}
}

// Kinds says how the failures split: refused, reset, EOF, timeout, 5xx.
func (r Result) Kinds() string {
	return fmt.Sprintf("refused %d, reset %d, EOF %d, timeout %d, 5xx %d, other non-2xx %d, other errors %d",
		r.Refused, r.Reset, r.EOF, r.Timeout, r.Status5xx, r.Non2xx-r.Status5xx, r.Errors-r.Refused-r.Reset-r.EOF-r.Timeout)
}

func (r *Result) fail(msg string) {
	if len(r.Failures) < maxSamples {
		r.Failures = append(r.Failures, time.Now().Format("15:04:05.000")+" "+msg)
	}
}

// Merge adds up results of load runs that ran side by side; the latency
// percentiles are those of all their requests together.
func Merge(rs ...Result) Result {
	var t Result
	for _, r := range rs {
		t.Requests += r.Requests
		t.OK += r.OK
		t.Non2xx += r.Non2xx
		t.Errors += r.Errors
		t.Refused += r.Refused
		t.Reset += r.Reset
		t.EOF += r.EOF
		t.Timeout += r.Timeout
		t.Status5xx += r.Status5xx
		t.latencies = append(t.latencies, r.latencies...)
		for _, f := range r.Failures {
			if len(t.Failures) < maxSamples {
				t.Failures = append(t.Failures, f)
			}
		}
	}
	slices.Sort(t.latencies)
	t.P50, t.P99, t.Max = percentile(t.latencies, 0.50), percentile(t.latencies, 0.99), percentile(t.latencies, 1)
	return t
}

// percentile of sorted durations; zero for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)-1) + 0.5)
	return sorted[i]
}

// ErrFailed is returned by Check when any request failed.
var ErrFailed = errors.New("requests failed")

// Check returns an error describing the failures, or nil when none failed.
func (r Result) Check() error {
	if r.Failed() == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d of %d (%d non-2xx, %d transport errors); first: %v", ErrFailed, r.Failed(), r.Requests, r.Non2xx, r.Errors, r.Failures)
}
