package podinject

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/config"
)

// qosClass is the pod's QoS class as the API server computes it at creation (status.qosClass): from pod-level
// resources when the pod has them, else from every container, init containers included. A request the pod
// leaves out where it sets a limit counts as the limit, as the API server's defaulting makes it.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	if r := spec.Resources; r != nil && (hasCompute(r.Requests) || hasCompute(r.Limits)) {
		return classOf([]corev1.ResourceRequirements{*r})
	}
	all := make([]corev1.ResourceRequirements, 0, len(spec.InitContainers)+len(spec.Containers))
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range list {
			all = append(all, list[i].Resources)
		}
	}
	return classOf(all)
}

// computeResources are the resources QoS classes are made of.
var computeResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}

func hasCompute(l corev1.ResourceList) bool {
	for _, name := range computeResources {
		if q, ok := l[name]; ok && q.Sign() > 0 {
			return true
		}
	}
	return false
}

// classOf is the QoS class of a pod whose containers (or whose pod-level resources) have these requirements.
func classOf(all []corev1.ResourceRequirements) corev1.PodQOSClass {
	some, guaranteed := false, true
	for _, r := range all {
		for _, name := range computeResources {
			limit, limited := r.Limits[name]
			limited = limited && limit.Sign() > 0
			request, requested := r.Requests[name]
			if !requested && limited {
				request, requested = limit, true
			}
			requested = requested && request.Sign() > 0
			some = some || requested || limited
			if !limited || !requested || request.Cmp(limit) != 0 {
				guaranteed = false
			}
		}
	}
	switch {
	case !some:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// sidecarResources are the sidecar's requests and limits in a pod with this spec, chosen so that the pod keeps
// its QoS class: the profile's resources in a Burstable pod, its guaranteed resources (requests equal to
// limits) in a Guaranteed one, none in a BestEffort pod or in one with pod-level resources (whose budget the
// sidecar then shares). A Guaranteed pod whose profile has no guaranteed resources is a problem.
func sidecarResources(profile *config.Profile, name string, spec *corev1.PodSpec) (corev1.ResourceRequirements, string) {
	if r := spec.Resources; r != nil && (hasCompute(r.Requests) || hasCompute(r.Limits)) {
		return corev1.ResourceRequirements{}, ""
	}
	switch qosClass(spec) {
	case corev1.PodQOSBestEffort:
		return corev1.ResourceRequirements{}, ""
	case corev1.PodQOSGuaranteed:
		list, ok := profile.Guaranteed()
		if !ok {
			return corev1.ResourceRequirements{}, fmt.Sprintf("the pod's QoS class is Guaranteed, and profile %s has no resources that keep it so "+
				"(guaranteedResources, or resources.limits with cpu and memory): add guaranteedResources to the profile, "+
				"or set %s: \"false\"", name, annotations.Backup)
		}
		return corev1.ResourceRequirements{Requests: copyList(list), Limits: copyList(list)}, ""
	}
	return *profile.Resources.DeepCopy(), ""
}

func copyList(l corev1.ResourceList) corev1.ResourceList {
	c := make(corev1.ResourceList, len(l))
	for k, v := range l {
		c[k] = v.DeepCopy()
	}
	return c
}
