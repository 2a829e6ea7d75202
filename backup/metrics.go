package backup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the sidecar's Prometheus metrics and the state /healthz reads. A nil *Metrics records nothing.
type Metrics struct {
	registry    *prometheus.Registry
	lastSuccess prometheus.Gauge
	duration    prometheus.Gauge
	size        prometheus.Gauge
	failures    *prometheus.CounterVec
	active      prometheus.Gauge
	suspect     prometheus.Counter
	// lastVerified, verifyDuration and verifyFailures are the verifications' results.
	lastVerified   prometheus.Gauge
	verifyDuration prometheus.Gauge
	verifyFailures *prometheus.CounterVec

	mu       sync.Mutex
	started  time.Time
	success  time.Time
	interval time.Duration
	dumps    map[string]dumpInfo // backups dumped and not uploaded yet
	// blocked is why the sidecar cannot back up at all (its configuration, its directory), or nil.
	blocked error
	// idle is set when this pod is not the member of its workload that backs up.
	idle bool
	// unverified is why the last verification did not pass, or nil.
	unverified error
}

type dumpInfo struct {
	start time.Time
	size  int64
}

// NewMetrics makes the metrics of a sidecar that backs up every interval.
func NewMetrics(interval time.Duration) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_backup_last_success_timestamp_seconds",
			Help: "Unix time at which the last successful backup landed in the bucket."}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_backup_duration_seconds",
			Help: "Seconds the last successful backup took, from the start of the dump until it landed in the bucket."}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_backup_size_bytes",
			Help: "Size of the last successful backup, compressed."}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_backup_failures_total",
			Help: "Failures, by stage: start (the sidecar cannot back up as configured: the reason is in its log and /healthz), dump (no backup written), upload (an attempt that failed), prune (the local directory), retention (listing or deleting old backups at the location), metrics (the metrics address could not be bound)."}, []string{"stage"}),
		suspect: prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_backup_suspect_total",
			Help: "Dumps that were whole but much smaller than the backup before them (BACKUP_SUSPECT_BELOW_PERCENT): kept, never the latest."}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_backup_active",
			Help: "1 when this sidecar backs up; 0 when it stays idle because another member of its StatefulSet backs up (BACKUP_MEMBERS=first)."}),
		lastVerified: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_backup_last_verified_timestamp_seconds",
			Help: "Unix time at which a backup last passed verification: restored into a throwaway server, every table with the rows its manifest recorded, every check true."}),
		verifyDuration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_backup_verification_duration_seconds",
			Help: "Seconds the last verification took, from the start of the restore into the throwaway server until its checks ended."}),
		verifyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_backup_verification_failures_total",
			Help: "Verifications that did not pass, by reason: manifest (none, or unreadable), checksum (the object is not what its manifest recorded), server (the throwaway server did not start), restore (the restore failed), rows (a table missing, or other rows), check (a BACKUP_VERIFY_QUERIES check was not true)."}, []string{"reason"}),
		started:  time.Now(),
		interval: interval,
		dumps:    map[string]dumpInfo{},
	}
	for _, stage := range []string{"start", "dump", "upload", "prune", "retention", "metrics"} {
		m.failures.WithLabelValues(stage)
	}
	for _, reason := range verifyReasons {
		m.verifyFailures.WithLabelValues(reason)
	}
	m.active.Set(1)
	m.registry.MustRegister(m.lastSuccess, m.duration, m.size, m.failures, m.active, m.suspect, m.lastVerified, m.verifyDuration, m.verifyFailures)
	return m
}

func (m *Metrics) failed(stage string) {
	if m != nil {
		m.failures.WithLabelValues(stage).Inc()
	}
}

// block records that the sidecar cannot back up, and why; nil clears it.
func (m *Metrics) block(err error) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocked = err
	if err != nil {
		m.failures.WithLabelValues("start").Inc()
	}
}

// suspected counts a suspect dump.
func (m *Metrics) suspected() {
	if m != nil {
		m.suspect.Inc()
	}
}

// verified records a verification that passed, which clears the failure of the one before.
func (m *Metrics) verified(elapsed time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unverified = nil
	m.lastVerified.SetToCurrentTime()
	m.verifyDuration.Set(elapsed.Seconds())
}

// verifyFailed records a verification that did not pass, and why: /healthz reports it until one passes.
func (m *Metrics) verifyFailed(reason string, err error, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unverified = err
	m.verifyFailures.WithLabelValues(reason).Inc()
	m.verifyDuration.Set(elapsed.Seconds())
}

// setIdle records that this sidecar does not back up: it is healthy without ever succeeding.
func (m *Metrics) setIdle() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.idle = true
	m.active.Set(0)
}

func (m *Metrics) dumped(name string, start time.Time, _ time.Duration, size int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dumps[name] = dumpInfo{start: start, size: size}
}

// uploaded records a backup landing; a backup dumped by this process is a success.
func (m *Metrics) uploaded(name string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.dumps[name]
	if !ok {
		return // dumped before this process started
	}
	delete(m.dumps, name)
	now := time.Now()
	if now.After(m.success) {
		m.success = now
		m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
		m.duration.Set(now.Sub(d.start).Seconds())
		m.size.Set(float64(d.size))
	}
}

// healthy reports an error when the sidecar cannot back up at all, when the last verification did not pass, or
// when the last success, or the start when there was none, is older than two intervals.
func (m *Metrics) healthy(now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.blocked != nil {
		return fmt.Errorf("cannot back up: %w", m.blocked)
	}
	if m.idle {
		return nil
	}
	if m.unverified != nil {
		return fmt.Errorf("the newest backup verified did not pass verification: %w", m.unverified)
	}
	since, what := m.started, "no successful backup since the start"
	if !m.success.IsZero() {
		since, what = m.success, "the last successful backup"
	}
	if age := now.Sub(since); age > 2*m.interval {
		return fmt.Errorf("%s was %s ago, more than two intervals (%s)", what, age.Round(time.Second), 2*m.interval)
	}
	return nil
}

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := m.healthy(time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// ServeUntil serves Handler on addr until ctx ends. An address that cannot be bound (a port in use, as when two
// host-network replicas share a node) is logged, counted as a metrics failure and tried again with backoff; it
// never stops the backups.
func (m *Metrics) ServeUntil(ctx context.Context, addr string, log logr.Logger) {
	retry := jitteredBackoff(time.Second, time.Minute)
	for ctx.Err() == nil {
		served, err := m.Serve(ctx, addr)
		if err == nil {
			err = <-served
			if err == nil {
				return // ctx ended
			}
		}
		m.failed("metrics")
		delay := retry.Step()
		log.Error(err, "cannot serve /metrics and /healthz; backups go on, trying again", "address", addr, "retryIn", delay.String())
		if !sleep(ctx, delay) {
			return
		}
	}
}

// Serve serves Handler on addr until ctx ends. The listener is opened before Serve returns, so a port in use is
// its error.
func (m *Metrics) Serve(ctx context.Context, addr string) (<-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return done, nil
}
