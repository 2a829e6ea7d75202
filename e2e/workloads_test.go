package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/tandem-dev/tandem/webhook/annotations"
)

// warnings collects the admission warnings the API server sends, as kubectl prints them.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.Join(w.list, "\n")
	w.list = nil
	return s
}

// warningClient is a clientset whose requests' warnings w collects.
func warningClient(t *testing.T) (*kubernetes.Clientset, *warnings) {
	w := &warnings{}
	cfg := rest.CopyConfig(restCfg)
	cfg.WarningHandler = w
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, w
}

func database(ns string, template map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": "orders-db"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "orders-db", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: template},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "postgres", Image: "postgres:17"}}},
			},
		},
	}
}

// TestWorkloadTemplatesAreCheckedWhereTheUserAppliesThem goes through the chart's ValidatingWebhookConfiguration
// on the real API server: a template tandem would refuse is refused at apply, with the pod injector's message;
// annotations on the workload's own metadata and the template's warnings come back as warnings; an update that
// leaves tandem's annotations as they were is admitted even when the template now has a problem.
func TestWorkloadTemplatesAreCheckedWhereTheUserAppliesThem(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, nil)
	cs, warned := warningClient(t)
	deployments := cs.AppsV1().Deployments(ns)
	optIn := map[string]string{annotations.Backup: "true", annotations.BackupLocation: "s3://team-backups/orders", annotations.DatabaseSecret: "orders"}

	t.Run("a template tandem would refuse is refused", func(t *testing.T) {
		bad := map[string]string{annotations.Backup: "true", annotations.BackupLocation: "s3://team-backups/orders", annotations.BackupInterval: "daily"}
		_, err := deployments.Create(ctx, database(ns, bad), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), `admission webhook "workloads.tandem.dev" denied the request: tandem cannot inject the backup sidecar: annotation tandem.dev/backup-interval: "daily" is not a Go duration`) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("annotations on the Deployment's own metadata are a warning", func(t *testing.T) {
		d := database(ns, nil)
		d.Name, d.Annotations = "misplaced", map[string]string{annotations.Backup: "true"}
		if _, err := deployments.Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if w := warned.take(); !strings.Contains(w, "annotation tandem.dev/backup is on the Deployment's metadata, where tandem does not read it, so the pods get no backup sidecar: move it to spec.template.metadata.annotations") {
			t.Errorf("warnings: %q", w)
		}
	})

	t.Run("an update that keeps tandem's annotations is never refused", func(t *testing.T) {
		d, err := deployments.Create(ctx, database(ns, optIn), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if w := warned.take(); w != "" {
			t.Errorf("warnings for a good template: %q", w)
		}
		// The new image also declares the sidecar's metrics port: the pods will be refused, but the rollout is
		// the user's, and the warning says so.
		// On a cluster with controllers the Deployment's status changes under us: retry on a conflict, as kubectl
		// apply would, so that only tandem's answer can fail the test.
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			d, err = deployments.Get(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			d.Spec.Template.Spec.Containers[0].Image = "postgres:18"
			d.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9880}}
			_, err = deployments.Update(ctx, d, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("an update that leaves tandem's annotations as they were was refused: %v", err)
		}
		if w := warned.take(); !strings.Contains(w, "this Deployment's pods will be refused") || !strings.Contains(w, "already uses port 9880") {
			t.Errorf("warnings: %q", w)
		}
	})
}
