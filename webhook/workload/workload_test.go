package workload

import (
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/webhook/annotations"
)

func TestMembers(t *testing.T) {
	replicas := func(n int64) map[string]any { return map[string]any{"spec": map[string]any{"replicas": n}} }
	first := map[string]string{annotations.BackupMembers: "first"}
	all := map[string]string{annotations.BackupMembers: "all"}
	for _, tc := range []struct {
		name             string
		obj              map[string]any
		kind             string
		ann              map[string]string
		injected         bool
		problem, warning string
	}{
		{name: "one replica", obj: replicas(1), kind: "StatefulSet", injected: true},
		{name: "replicas left to the default", obj: map[string]any{"spec": map[string]any{}}, kind: "Deployment", injected: true},
		{name: "three replicas", obj: replicas(3), kind: "StatefulSet", injected: true, warning: "its 3 replicas each get a backup sidecar"},
		{name: "three replicas, every member on purpose", obj: replicas(3), kind: "StatefulSet", ann: all, injected: true, warning: "its 3 replicas"},
		{name: "three replicas, member 0 only", obj: replicas(3), kind: "StatefulSet", ann: first, injected: true},
		{name: "a Deployment's replicas have no identity", obj: replicas(2), kind: "Deployment", injected: true, warning: "run them as a StatefulSet"},
		{name: "a DaemonSet", obj: map[string]any{}, kind: "DaemonSet", injected: true, warning: "a pod on every node"},
		{name: "not injected", obj: replicas(3), kind: "StatefulSet"},
		{name: "a Job of many pods is not a replicated database", obj: map[string]any{"spec": map[string]any{"parallelism": int64(4)}}, kind: "Job", injected: true},
		{name: "first on a Deployment", obj: replicas(2), kind: "Deployment", ann: first, injected: true, problem: "a Deployment's pods have no index"},
		{name: "first on a CronJob, even when not injected", obj: map[string]any{}, kind: "CronJob", ann: first, problem: "a CronJob's pods have no index"},
		{name: "first on a pod: a StatefulSet's pods carry it", obj: map[string]any{}, kind: "Pod", ann: first, injected: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problem, warning := Members(tc.obj, tc.kind, tc.ann, tc.injected)
			check := func(what, got, want string) {
				if (want == "") != (got == "") || !strings.Contains(got, want) {
					t.Errorf("%s: %q, want one containing %q", what, got, want)
				}
			}
			check("problem", problem, tc.problem)
			check("warning", warning, tc.warning)
		})
	}
}
