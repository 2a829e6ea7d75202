package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/tandem-dev/tandem/webhook/config"
)

// Options configure the webhook process.
type Options struct {
	// ConfigPath is tandem's configuration file; empty for the built-in configuration.
	ConfigPath string
	// CertDir holds tls.crt and tls.key, reloaded when they change.
	CertDir string
	// Host and Port are where the webhook serves HTTPS.
	Host string
	Port int
	// MetricsAddr serves Prometheus /metrics; "0" turns it off.
	MetricsAddr string
	// ProbeAddr serves /healthz and /readyz; "0" turns it off.
	ProbeAddr string
	// EnableHTTP2 serves HTTP/2 too. Off by default: HTTP/2 stream resets (CVE-2023-44487, CVE-2023-39325)
	// cost a server more than HTTP/1.1 does, and the API server does not need it.
	EnableHTTP2 bool
}

// Run serves tandem's webhook until ctx ends. A configuration it cannot use stops it before it listens.
func Run(ctx context.Context, opts Options, log logr.Logger) error {
	store, err := config.NewStore(opts.ConfigPath)
	if err != nil {
		return err
	}
	log.Info("configuration loaded", "path", opts.ConfigPath, "profiles", store.Get().ProfileNames())

	tlsOpts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }}
	if !opts.EnableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	hooks := webhook.NewServer(webhook.Options{Host: opts.Host, Port: opts.Port, CertDir: opts.CertDir, TLSOpts: tlsOpts})
	hooks.Register(PodPath, &Handler{Mutator: &PodMutator{Config: store, Log: log.WithName("pods")}, Log: log})
	jobs := &Handler{Mutator: &JobMutator{Config: store, Log: log.WithName("jobs")}, Log: log}
	hooks.Register(JobPath, jobs)
	hooks.Register(CronJobPath, jobs)
	hooks.Register(WorkloadPath, &Handler{Mutator: &WorkloadValidator{Config: store, Log: log.WithName("workloads")}, Log: log})

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return hooks.Start(ctx) })
	g.Go(func() error { return store.Watch(ctx, log.WithName("config")) })
	if opts.MetricsAddr != "0" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
		g.Go(func() error { return serveHTTP(ctx, "metrics", opts.MetricsAddr, mux, log) })
	}
	if opts.ProbeAddr != "0" {
		mux := http.NewServeMux()
		live := &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}
		ready := &healthz.Handler{Checks: map[string]healthz.Checker{"webhook": hooks.StartedChecker()}}
		mux.Handle("/healthz", http.StripPrefix("/healthz", live))
		mux.Handle("/healthz/", http.StripPrefix("/healthz", live))
		mux.Handle("/readyz", http.StripPrefix("/readyz", ready))
		mux.Handle("/readyz/", http.StripPrefix("/readyz", ready))
		g.Go(func() error { return serveHTTP(ctx, "health probes", opts.ProbeAddr, mux, log) })
	}
	return g.Wait()
}

// serveHTTP serves plain HTTP on addr until ctx ends.
func serveHTTP(ctx context.Context, what, addr string, h http.Handler, log logr.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("serving "+what, "address", l.Addr().String())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
