package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tandem-dev/tandem/webhook/podinject"
)

// podInjections counts what tandem did with each pod that reached it, so a platform team can alert on refusals.
var podInjections = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tandem_pod_injections_total",
	Help: "Pods admitted by tandem, by backup profile and result (injected, skipped, refused).",
}, []string{"profile", "result"})

// jobDefaults counts what tandem did with each Job and CronJob that reached it.
var jobDefaults = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tandem_job_defaults_total",
	Help: "Jobs and CronJobs admitted by tandem, by kind and result (defaulted, unchanged, opted-out, refused).",
}, []string{"kind", "result"})

// workloadChecks counts the pod templates tandem checked where the user applied them.
var workloadChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tandem_workload_checks_total",
	Help: "Workloads whose pod templates tandem checked at admission, by kind and result (admitted, warned: admitted with warnings, refused).",
}, []string{"kind", "result"})

func init() {
	metrics.Registry.MustRegister(podInjections, jobDefaults, workloadChecks)
}

func countDefaults(kind, result string) {
	jobDefaults.WithLabelValues(kind, result).Inc()
}

func countInjection(profile string, outcome podinject.Outcome) {
	podInjections.WithLabelValues(profile, string(outcome)).Inc()
}
