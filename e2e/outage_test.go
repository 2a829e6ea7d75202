package e2e

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tandem-dev/tandem/webhook/annotations"
)

// TestTandemDownBlocksOnlyOptedInPods stops tandem: pods without tandem's annotation never reach it (the webhook's
// matchConditions) and are still created, Jobs follow failurePolicy Ignore and are created undefaulted, annotated
// workloads follow the workload check's Ignore (a rollout never waits for tandem), and annotated pods follow the
// pod webhook's failurePolicy, Fail.
func TestTandemDownBlocksOnlyOptedInPods(t *testing.T) {
	if plane == nil {
		t.Skip("stops tandem, so it runs against the local control plane only")
	}
	plane.StopTandem()
	defer func() {
		if err := plane.StartTandem(); err != nil {
			t.Fatalf("restarting tandem: %v", err)
		}
	}()
	ctx := context.Background()
	ns := namespace(t, nil)

	web := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}
	if err := k8s.Create(ctx, web); err != nil {
		t.Errorf("a pod without tandem annotations was refused while tandem is down: %v", err)
	}
	j := job(ns)
	if err := k8s.Create(ctx, j); err != nil {
		t.Errorf("a Job was refused while tandem is down (failurePolicy Ignore): %v", err)
	} else if j.Spec.TTLSecondsAfterFinished != nil {
		t.Errorf("a Job was defaulted while tandem is down")
	}
	if err := k8s.Create(ctx, database(ns, map[string]string{annotations.Backup: "true", annotations.BackupLocation: "s3://b/orders"})); err != nil {
		t.Errorf("an annotated Deployment was refused while tandem is down (the workload check's failurePolicy Ignore): %v", err)
	}
	err := k8s.Create(ctx, examplePod(ns))
	if err == nil || !strings.Contains(err.Error(), `failed calling webhook "pods.tandem.dev"`) {
		t.Errorf("annotated pod while tandem is down: err = %v, want the API server's failurePolicy Fail refusal", err)
	}
}
