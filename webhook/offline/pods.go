package offline

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tandem-dev/tandem/internal/patch"
	"github.com/tandem-dev/tandem/webhook/workload"
)

// injectPod gives the pod at path in obj (obj itself when path is empty) what the webhook's pod injector would
// give a pod made from it, in place; kind is obj's, for the checks the workload webhook adds, and prefix where obj
// is in its document.
func (in mutators) injectPod(obj map[string]any, path []string, kind, prefix string) (bool, []string, error) {
	tmpl := objectAt(obj, path...)
	if tmpl == nil {
		if len(path) == 0 {
			return false, nil, nil
		}
		tmpl = map[string]any{} // no template at all: the typed decoding below sees an empty pod, as before
	}
	var pod corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &pod); err != nil {
		return false, nil, fmt.Errorf("decoding its pod: %w", err)
	}
	plan, err := workload.PlanTemplate(in.pods, obj, kind, &pod)
	if err != nil {
		return false, nil, err
	}
	ops := plan.Patch("", &pod.ObjectMeta, &pod.Spec)
	if len(ops) == 0 {
		return false, plan.Warnings, nil
	}
	if _, err := patch.Apply(tmpl, ops); err != nil {
		return false, nil, fmt.Errorf("applying the pod's patch: %w", err)
	}
	in.record(prefix+patch.Pointer(path...), ops)
	return true, plan.Warnings, nil
}
