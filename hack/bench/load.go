package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

// round is what one round of load measured.
type round struct {
	requests, errors int
	elapsed          time.Duration
	cpu              time.Duration
	clientCPU        time.Duration // bench's own, driving the load
	latencies        []time.Duration
	firstError       error
}

// drive keeps concurrency requests in flight against s, as kube-apiserver does with keep-alive HTTP/1.1
// connections: for warmup unmeasured, then for duration measured. The requests that start in the measured
// window count, and the window closes when the last of them is answered.
func drive(ctx context.Context, s *server, body []byte, roots *x509.CertPool, concurrency int, warmup, duration time.Duration) (round, error) {
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	start := time.Now().Add(warmup)
	end := start.Add(duration)
	var (
		mu    sync.Mutex
		total round
		wg    sync.WaitGroup
	)
	// The CPU time is read when the measured window opens, by a timer while the load runs, and when the last
	// request has been answered.
	var (
		cpuStart, clientStart time.Duration
		cpuStartErr           = errors.New("the measured window never opened")
	)
	timer := time.AfterFunc(warmup, func() {
		t, err := cpuTime(s.pid())
		c, clientErr := cpuTime(os.Getpid())
		mu.Lock()
		cpuStart, clientStart, cpuStartErr = t, c, errors.Join(err, clientErr)
		mu.Unlock()
	})
	defer timer.Stop()
	for range concurrency {
		wg.Go(func() {
			mine, done := sendUntil(ctx, client, s.url, body, start, end)
			mu.Lock()
			defer mu.Unlock()
			total.elapsed = max(total.elapsed, done.Sub(start))
			total.requests += mine.requests
			total.errors += mine.errors
			total.latencies = append(total.latencies, mine.latencies...)
			if total.firstError == nil {
				total.firstError = mine.firstError
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return round{}, ctx.Err()
	}
	cpuEnd, err := cpuTime(s.pid())
	clientEnd, clientErr := cpuTime(os.Getpid())
	mu.Lock()
	defer mu.Unlock()
	if err = errors.Join(cpuStartErr, err, clientErr); err != nil {
		return round{}, fmt.Errorf("reading the CPU time of %s (pid %d): %w; its log: %s", s.name, s.pid(), err, tail(s.log))
	}
	total.cpu, total.clientCPU = cpuEnd-cpuStart, clientEnd-clientStart
	return total, nil
}

// sendUntil is one client of the load: it posts body to url, one request after the other, until end, and
// returns the figures of the requests begun from start on and when the last of them was answered.
func sendUntil(ctx context.Context, client *http.Client, url string, body []byte, start, end time.Time) (mine round, done time.Time) {
	for ctx.Err() == nil {
		began := time.Now()
		if !began.Before(end) {
			break
		}
		err := post(ctx, client, url, body)
		took := time.Since(began)
		if !began.Before(start) {
			done = began.Add(took)
			mine.requests++
			mine.latencies = append(mine.latencies, took)
			if err != nil {
				mine.errors++
				if mine.firstError == nil {
					mine.firstError = err
				}
			}
		}
		if err != nil && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond) // a server that is down does not make this spin
		}
	}
	return mine, done
}

// post sends one review and reads the whole answer, which must be 200.
func post(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := newRequest(ctx, url, body)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("HTTP %s", resp.Status)
	case n == 0:
		return fmt.Errorf("empty answer")
	}
	return nil
}

// sample adds up one server's rounds at one concurrency.
type sample struct{ round }

func (s *sample) add(r round) {
	s.requests += r.requests
	s.errors += r.errors
	s.elapsed += r.elapsed
	s.cpu += r.cpu
	s.clientCPU += r.clientCPU
	s.latencies = append(s.latencies, r.latencies...)
	if s.firstError == nil {
		s.firstError = r.firstError
	}
}

// result is one server's figures at one concurrency.
type result struct {
	Server      string  `json:"server"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"firstError,omitempty"`
	Seconds     float64 `json:"seconds"`
	ReqPerSec   float64 `json:"requestsPerSecond"`
	P50ms       float64 `json:"p50Milliseconds"`
	P90ms       float64 `json:"p90Milliseconds"`
	P99ms       float64 `json:"p99Milliseconds"`
	MaxMs       float64 `json:"maxMilliseconds"`
	// CPUPer1000 is the server's CPU seconds, user and system, per 1000 admissions.
	CPUPer1000 float64 `json:"cpuSecondsPer1000"`
	// ClientCPUPer1000 is the same for bench, which sends the requests and reads the answers on the same CPUs.
	ClientCPUPer1000 float64 `json:"clientCPUSecondsPer1000"`
}

func (s *sample) result(server string, concurrency int) result {
	slices.Sort(s.latencies)
	r := result{Server: server, Concurrency: concurrency, Requests: s.requests, Errors: s.errors, Seconds: s.elapsed.Seconds()}
	if s.firstError != nil {
		r.FirstError = s.firstError.Error()
	}
	if s.requests == 0 {
		return r
	}
	r.ReqPerSec = float64(s.requests) / s.elapsed.Seconds()
	r.P50ms, r.P90ms, r.P99ms = ms(percentile(s.latencies, 50)), ms(percentile(s.latencies, 90)), ms(percentile(s.latencies, 99))
	r.MaxMs = ms(s.latencies[len(s.latencies)-1])
	r.CPUPer1000 = s.cpu.Seconds() / float64(s.requests) * 1000
	r.ClientCPUPer1000 = s.clientCPU.Seconds() / float64(s.requests) * 1000
	return r
}

// percentile returns the smallest latency that p percent of the sorted latencies do not exceed.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
