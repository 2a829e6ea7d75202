package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tandem-dev/tandem/webhook/annotations"
)

// restricted is a container security context that passes Pod Security "restricted".
func restricted() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](999), AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// examplePod is the database Pod of DESIGN.md, its database container made compliant with "restricted".
func examplePod(ns string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "db-pod", Namespace: ns, Annotations: map[string]string{
			annotations.Backup:         "postgres",
			annotations.BackupLocation: "s3://my-bucket/my-backups",
			annotations.DatabaseSecret: "db-secrets",
		}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "db-container", Image: "my-database-image", SecurityContext: restricted(),
				Ports:        []corev1.ContainerPort{{ContainerPort: 5432}},
				VolumeMounts: []corev1.VolumeMount{{Name: "db-data", MountPath: "/var/lib/postgresql/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "db-data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

// container returns the pod's container of that name, an init container (a native sidecar) or a regular one.
func container(pod *corev1.Pod, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

func countContainers(pod *corev1.Pod, name string) int {
	n := 0
	for _, c := range append(pod.Spec.Containers, pod.Spec.InitContainers...) {
		if c.Name == name {
			n++
		}
	}
	return n
}

// checkInjected asserts what the stored example pod gained.
func checkInjected(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	c := container(pod, "tandem-backup")
	if c == nil {
		t.Fatalf("no backup sidecar; containers: %s", names(pod))
	}
	if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways || !slices.ContainsFunc(pod.Spec.InitContainers, func(i corev1.Container) bool { return i.Name == c.Name }) {
		t.Errorf("the backup sidecar is not a native sidecar, an init container with restartPolicy Always: %s", names(pod))
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if env["BACKUP_LOCATION"].Value != "s3://my-bucket/my-backups" || env["DATABASE_PASSWORD"].ValueFrom == nil ||
		env["DATABASE_PASSWORD"].ValueFrom.SecretKeyRef.Name != "db-secrets" || env["DATABASE_PASSWORD"].ValueFrom.SecretKeyRef.Key != "database-password" {
		t.Errorf("sidecar env: %+v", c.Env)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	if secret := vols["tandem-database-secret"].Secret; vols["backup-data"].EmptyDir == nil || secret == nil || secret.SecretName != "db-secrets" ||
		len(secret.Items) != 1 || secret.Items[0].Key != "database-password" {
		t.Errorf("volumes: %+v", pod.Spec.Volumes)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	if mounts["backup-data"].MountPath != "/backups" || mounts["tandem-database-secret"].MountPath != "/secrets" || !mounts["tandem-database-secret"].ReadOnly {
		t.Errorf("sidecar mounts: %+v", c.VolumeMounts)
	}
	if pod.Annotations[annotations.Injected] != "postgres" {
		t.Errorf("annotations: %v", pod.Annotations)
	}
}

func TestExamplePodIsStoredInjected(t *testing.T) {
	ctx := context.Background()
	pod := examplePod(namespace(t, nil))
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	stored := &corev1.Pod{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(pod), stored); err != nil {
		t.Fatal(err)
	}
	checkInjected(t, stored)
}

func TestGenerateNamePodIsInjected(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, nil)
	pod := examplePod("") // no namespace in the object: the API server takes it from the request's path
	pod.Name, pod.GenerateName = "", "orders-db-"
	pod, err := kubernetes.NewForConfigOrDie(restCfg).CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pod.Name, "orders-db-") {
		t.Fatalf("name %q", pod.Name)
	}
	checkInjected(t, pod)
}

func TestPodWithoutAnnotationsIsStoredUntouched(t *testing.T) {
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: namespace(t, nil)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	// A cluster's own admission (the ServiceAccount plugin's token volume) may add to it; tandem adds nothing.
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) != 0 || len(pod.Annotations) != 0 {
		t.Errorf("stored pod changed: %s, annotations %v", names(pod), pod.Annotations)
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == "backup-data" || strings.HasPrefix(v.Name, "tandem") {
			t.Errorf("stored pod gained tandem's volume %s", v.Name)
		}
	}
}

func TestInjectedPodPassesPodSecurityRestricted(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"})
	// The namespace really enforces: a pod that runs as root is refused.
	root := examplePod(ns)
	root.Name, root.Annotations = "root", nil
	root.Spec.Containers[0].SecurityContext = nil
	if err := k8s.Create(ctx, root); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "restricted") {
		t.Fatalf("a non-compliant pod was not refused by Pod Security: %v", err)
	}
	pod := examplePod(ns)
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatalf("the injected pod was refused: %v", err)
	}
	checkInjected(t, pod)
}

func TestServerDryRunGetsTheMutationAndLeavesNothing(t *testing.T) {
	ctx := context.Background()
	pod := examplePod(namespace(t, nil))
	if err := k8s.Create(ctx, pod, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	checkInjected(t, pod)
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}); !apierrors.IsNotFound(err) {
		t.Errorf("the dry run left a pod behind: %v", err)
	}
}

func TestNameConflictIsRefusedWithTandemsMessage(t *testing.T) {
	pod := examplePod(namespace(t, nil))
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "tandem-backup", Image: "my-own-backup:1"})
	err := k8s.Create(context.Background(), pod)
	if err == nil || !strings.Contains(err.Error(), `the pod already has a container named "tandem-backup"`) || !strings.Contains(err.Error(), "rename that container") {
		t.Errorf("err = %v", err)
	}
}

func TestBadAnnotationIsRefusedWithTheFix(t *testing.T) {
	pod := examplePod(namespace(t, nil))
	pod.Annotations[annotations.BackupInterval] = "daily"
	err := k8s.Create(context.Background(), pod)
	if err == nil || !strings.Contains(err.Error(), `annotation tandem.dev/backup-interval: "daily" is not a Go duration`) {
		t.Errorf("err = %v", err)
	}
}

func TestReinjectionKeepsOneSidecar(t *testing.T) {
	ctx := context.Background()
	pod := examplePod(namespace(t, nil))
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	// A copy of the stored pod, as a controller might recreate it, comes through tandem unchanged.
	again := pod.DeepCopy()
	again.ObjectMeta = metav1.ObjectMeta{Name: "db-pod-2", Namespace: pod.Namespace, Annotations: pod.Annotations}
	if err := k8s.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	if n := countContainers(again, "tandem-backup"); n != 1 {
		t.Errorf("%d backup sidecars", n)
	}
}
