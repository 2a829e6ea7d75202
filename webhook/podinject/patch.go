package podinject

import (
	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tandem-dev/tandem/internal/patch"
	"github.com/tandem-dev/tandem/webhook/annotations"
)

// Patch returns the plan as JSON patch operations on a pod whose metadata is at prefix+"/metadata" and whose
// spec is at prefix+"/spec" ("" for a Pod, "/spec/template" for a Deployment). meta and spec are the pod's as
// decoded, which tells which lists exist already.
//
// The operations only add: they append to lists and set one annotation, so fields tandem's Go types do not
// know, in the pod and in everything the operations do not name, reach the API server untouched.
func (p *Plan) Patch(prefix string, meta *metav1.ObjectMeta, spec *corev1.PodSpec) []jsonpatch.Operation {
	if p.Outcome != Injected {
		return nil
	}
	ops := make([]jsonpatch.Operation, 0, 2+len(p.Volumes))
	if p.Container != nil {
		field, n := "/spec/containers", len(spec.Containers)
		if p.Native {
			field, n = "/spec/initContainers", len(spec.InitContainers)
		}
		ops = patch.AppendItems(ops, prefix+field, n, []*corev1.Container{p.Container})
	}
	ops = patch.AppendItems(ops, prefix+"/spec/volumes", len(spec.Volumes), p.Volumes)
	return patch.AddAnnotation(ops, prefix, meta.Annotations, annotations.Injected, p.Profile)
}
