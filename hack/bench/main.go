// Command bench is tandem's load test. It builds the tandem binary (or takes one with -tandem) and two
// servers to compare it with, starts each as its own process on 127.0.0.1 with a self-signed certificate, and
// drives them the way kube-apiserver drives a webhook: HTTPS, keep-alive HTTP/1.1, one AdmissionReview of a
// ~5 KB PostgreSQL Pod per request, at each concurrency in turn. The servers:
//
//   - floor (hack/bench/floor): net/http only decoding the review and the Pod, answering a fixed patch;
//   - no-op controller-runtime (hack/bench/noop): controller-runtime's webhook server with a logger set and an
//     admission.Webhook answering a fixed patch without decoding the Pod;
//   - tandem webhook, with its built-in configuration.
//
// It reports req/s, p50/p90/p99/max latency, CPU seconds per 1000 admissions (utime+stime from /proc/PID/stat)
// and peak RSS (VmHWM from /proc/PID/status) of each, each as a ratio to the floor's (RSS also to the no-op
// server's), and how long tandem took from process start to answer /readyz 200. It prints a table, writes the
// figures to a JSON file and draws a latency chart (PNG). With -check it exits 1 when a performance target (README) is
// missed.
//
// It needs Go (to build the servers), Linux (/proc) and the module's source: run it from the repository,
//
//	go run ./hack/bench [-duration 5s] [-out DIR/bench-results.json] [-check]
//
// Every process it starts is stopped when it ends, also on Ctrl-C.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	tandem      string
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	concurrency []int
	out         string
	chart       string
	check       bool
}

func main() {
	var opts options
	var levels string
	flag.StringVar(&opts.tandem, "tandem", "", "tandem binary to measure (default: built from ./cmd/tandem)")
	flag.DurationVar(&opts.duration, "duration", 5*time.Second, "measured load per server and concurrency, split over -rounds")
	flag.DurationVar(&opts.warmup, "warmup", 300*time.Millisecond, "unmeasured load before each round (connections and TLS handshakes)")
	flag.IntVar(&opts.rounds, "rounds", 5, "rounds per concurrency: the servers take turns, so a change in the machine's load hits each alike")
	flag.StringVar(&levels, "concurrency", "1,8,64", "comma-separated numbers of requests in flight")
	flag.StringVar(&opts.out, "out", "", "JSON file for the figures (default: bench-results.json in a new temporary directory)")
	flag.StringVar(&opts.chart, "chart", "", "PNG latency chart (default: latency.png beside -out)")
	flag.BoolVar(&opts.check, "check", false, "exit 1 when a performance target is missed")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go run ./hack/bench [flags]\n\nLoad-tests tandem webhook against a floor and a no-op controller-runtime server on 127.0.0.1.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	for _, s := range strings.Split(levels, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 || c > 1024 {
			fatal(fmt.Errorf("-concurrency: %q is not a number from 1 to 1024", s))
		}
		opts.concurrency = append(opts.concurrency, c)
	}
	if opts.duration <= 0 || opts.rounds < 1 || opts.warmup < 0 {
		fatal(errors.New("-duration must be positive, -rounds at least 1, -warmup not negative"))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	missed, err := run(ctx, opts)
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "bench: interrupted; every server it started is stopped")
		os.Exit(130)
	}
	if err != nil {
		fatal(err)
	}
	if missed > 0 && opts.check {
		fmt.Fprintf(os.Stderr, "bench: %d target(s) missed\n", missed)
		os.Exit(1)
	}
}

// run measures the servers and reports; it returns how many targets were missed.
func run(ctx context.Context, opts options) (int, error) {
	work, err := os.MkdirTemp("", "tandem-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)

	bins, err := build(ctx, work, opts.tandem)
	if err != nil {
		return 0, err
	}
	certDir := filepath.Join(work, "certs")
	roots, err := writeCert(certDir)
	if err != nil {
		return 0, err
	}

	// Stop every server however run returns; the servers also die with this process (Pdeathsig).
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, spec := range []serverSpec{floorSpec(bins.floor), noopSpec(bins.noop), tandemSpec(bins.tandem)} {
		s, err := start(ctx, spec, certDir, work, roots)
		if err != nil {
			return 0, err
		}
		servers = append(servers, s)
	}
	body := podReview()
	for _, s := range servers {
		if err := s.checkAnswer(ctx, body, roots); err != nil {
			return 0, err
		}
		s.idleRSS, _, _ = memory(s.pid())
	}

	fmt.Printf("Driving %d servers with a %d-byte AdmissionReview at concurrency %v: %v each (%d rounds, %v warm-up each).\n",
		len(servers), len(body), opts.concurrency, opts.duration, opts.rounds, opts.warmup)
	results, err := measure(ctx, servers, body, roots, opts)
	if err != nil {
		return 0, err
	}
	for _, s := range servers {
		_, s.peakRSS, err = memory(s.pid())
		if err != nil {
			return 0, fmt.Errorf("%s: %w", s.name, err)
		}
	}

	rep := newReport(opts, servers, results, len(body))
	rep.print(os.Stdout)
	if err := writeReport(rep, &opts); err != nil {
		return 0, err
	}
	fmt.Printf("\nFigures: %s\nChart:   %s\n", opts.out, opts.chart)
	return rep.missed(), nil
}

// measure drives every server at each concurrency in turn, in rounds that alternate the servers so that a
// passing disturbance of the machine spreads over all of them.
func measure(ctx context.Context, servers []*server, body []byte, roots *x509.CertPool, opts options) ([]result, error) {
	var results []result
	for _, c := range opts.concurrency {
		samples := make([]sample, len(servers))
		for r := range opts.rounds {
			for i, s := range servers {
				got, err := drive(ctx, s, body, roots, c, opts.warmup, opts.duration/time.Duration(opts.rounds))
				if err != nil {
					return nil, fmt.Errorf("%s at concurrency %d, round %d: %w", s.name, c, r+1, err)
				}
				samples[i].add(got)
			}
		}
		for i, s := range servers {
			results = append(results, samples[i].result(s.name, c))
		}
	}
	return results, nil
}

// writeReport writes the figures (JSON) and the chart (PNG) where opts says, by default into a new temporary
// directory, and sets opts' paths to where they went.
func writeReport(rep *report, opts *options) error {
	if opts.out == "" {
		dir, err := os.MkdirTemp("", "tandem-bench-results-")
		if err != nil {
			return err
		}
		opts.out = filepath.Join(dir, "bench-results.json")
	}
	if opts.chart == "" {
		opts.chart = filepath.Join(filepath.Dir(opts.out), "latency.png")
	}
	if err := rep.write(opts.out); err != nil {
		return err
	}
	return drawChart(opts.chart, rep)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(2)
}
