package e2e

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tandem-dev/tandem/webhook/annotations"
)

// TestInjectionKeepsTheQoSClass: the API server computes a pod's QoS class (status.qosClass) when it stores it.
// Each pod is created twice, opted out and opted in, and both must be stored with the same class, and the
// opted-in one with the sidecar.
func TestInjectionKeepsTheQoSClass(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, nil)
	list := func(cpu, memory string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
	}
	for i, tt := range []struct {
		name string
		want corev1.PodQOSClass
		edit func(*corev1.PodSpec)
	}{
		{"best effort", corev1.PodQOSBestEffort, func(*corev1.PodSpec) {}},
		{"burstable", corev1.PodQOSBurstable, func(s *corev1.PodSpec) {
			s.Containers[0].Resources = corev1.ResourceRequirements{Requests: list("250m", "1Gi")}
		}},
		{"guaranteed", corev1.PodQOSGuaranteed, func(s *corev1.PodSpec) {
			s.Containers[0].Resources = corev1.ResourceRequirements{Requests: list("2", "4Gi"), Limits: list("2", "4Gi")}
		}},
		{"guaranteed by limits alone, with an init container", corev1.PodQOSGuaranteed, func(s *corev1.PodSpec) {
			s.Containers[0].Resources = corev1.ResourceRequirements{Limits: list("1", "2Gi")}
			s.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", SecurityContext: restricted(),
				Resources: corev1.ResourceRequirements{Limits: list("100m", "32Mi")}}}
		}},
		{"guaranteed by pod-level resources", corev1.PodQOSGuaranteed, func(s *corev1.PodSpec) {
			s.Resources = &corev1.ResourceRequirements{Requests: list("1", "2Gi"), Limits: list("1", "2Gi")}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			class := func(optIn string) (corev1.PodQOSClass, *corev1.Pod) {
				pod := examplePod(ns)
				pod.Name = fmt.Sprintf("qos-%d-%s", i, optIn)
				pod.Annotations[annotations.Backup] = optIn
				tt.edit(&pod.Spec)
				if err := k8s.Create(ctx, pod); err != nil {
					t.Fatalf("tandem.dev/backup %s: %v", optIn, err)
				}
				return pod.Status.QOSClass, pod
			}
			without, _ := class("false")
			with, pod := class("postgres")
			if without != tt.want {
				t.Fatalf("without the sidecar the API server stored class %s, not %s: the case is wrong", without, tt.want)
			}
			if with != without {
				t.Errorf("the sidecar made a %s pod %s: %+v", without, with, container(pod, "tandem-backup").Resources)
			}
			if container(pod, "tandem-backup") == nil {
				t.Errorf("no sidecar: %s", names(pod))
			}
		})
	}
}
