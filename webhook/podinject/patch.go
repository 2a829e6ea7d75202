package podinject

import (
	"encoding/json"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
		ops = appendItems(ops, prefix+field, n, []*corev1.Container{p.Container})
	}
	ops = appendItems(ops, prefix+"/spec/volumes", len(spec.Volumes), p.Volumes)
	return AddAnnotation(ops, prefix, meta, annotations.Injected, p.Profile)
}

// appendItems appends items to the list at path, which holds n items: a missing or empty list is set whole,
// since a JSON patch cannot append to a list that is not there. The operations point into items, which must not
// change until they are encoded.
func appendItems[T any](ops []jsonpatch.Operation, path string, n int, items []T) []jsonpatch.Operation {
	if len(items) == 0 {
		return ops
	}
	if n == 0 {
		return append(ops, jsonpatch.NewOperation("add", path, items))
	}
	for i := range items {
		ops = append(ops, jsonpatch.NewOperation("add", path+"/-", &items[i]))
	}
	return ops
}

// AddAnnotation appends the operation that sets annotation key to value on the object whose metadata is at
// prefix+"/metadata".
func AddAnnotation(ops []jsonpatch.Operation, prefix string, meta *metav1.ObjectMeta, key, value string) []jsonpatch.Operation {
	if len(meta.Annotations) == 0 {
		return append(ops, jsonpatch.NewOperation("add", prefix+"/metadata/annotations", map[string]string{key: value}))
	}
	return append(ops, jsonpatch.NewOperation("add", prefix+"/metadata/annotations/"+EscapePointer(key), value))
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// EscapePointer escapes one segment of a JSON pointer (RFC 6901).
func EscapePointer(s string) string { return pointerEscaper.Replace(s) }

// MarshalPatch encodes ops as the JSON patch the API server receives: the bytes json.Marshal(ops) makes, in one
// pass instead of two (jsonpatch.Operation's MarshalJSON encodes its value on its own, and json.Marshal then
// scans that output again to compact it).
func MarshalPatch(ops []jsonpatch.Operation) ([]byte, error) {
	if len(ops) == 0 {
		return json.Marshal(ops) // null or []
	}
	out := make([]operation, len(ops))
	for i, op := range ops {
		out[i] = operation{Op: op.Operation, Path: op.Path, Value: op.Value}
		if op.Value == nil && (op.Operation == "add" || op.Operation == "replace") {
			out[i].Value = jsonNull // as jsonpatch.Operation writes it
		}
	}
	return json.Marshal(out)
}

// operation is a jsonpatch.Operation without its MarshalJSON.
type operation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

var jsonNull = json.RawMessage("null")
