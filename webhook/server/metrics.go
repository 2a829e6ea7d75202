package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tandem-dev/tandem/webhook/inject"
)

// podInjections counts what tandem did with each pod that reached it, so a platform team can alert on refusals.
var podInjections = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tandem_pod_injections_total",
	Help: "Pods admitted by tandem, by backup profile and result (injected, skipped, refused).",
}, []string{"profile", "result"})

func init() {
	metrics.Registry.MustRegister(podInjections)
}

func countInjection(profile string, outcome inject.Outcome) {
	podInjections.WithLabelValues(profile, string(outcome)).Inc()
}
