// Package patch holds the JSON-pointer and JSON-patch plumbing that tandem's pod injector, Job defaulter and
// offline command share: building additive operations, encoding them for the API server, and applying them to a
// decoded document for `tandem inject`. It knows nothing of Kubernetes but metadata annotations.
package patch

import (
	"encoding/json"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
)

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// Escape escapes one segment of a JSON pointer (RFC 6901).
func Escape(s string) string { return pointerEscaper.Replace(s) }

// Pointer returns the JSON pointer of a path of object keys: ["spec", "template"] is "/spec/template".
func Pointer(path ...string) string {
	var b strings.Builder
	for _, p := range path {
		b.WriteString("/")
		b.WriteString(Escape(p))
	}
	return b.String()
}

// AppendItems appends items to the list at path, which holds n items: a missing or empty list is set whole,
// since a JSON patch cannot append to a list that is not there. The operations point into items, which must not
// change until they are encoded.
func AppendItems[T any](ops []jsonpatch.Operation, path string, n int, items []T) []jsonpatch.Operation {
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
// prefix+"/metadata" and has the annotations given (nil or empty when it has none).
func AddAnnotation(ops []jsonpatch.Operation, prefix string, annotations map[string]string, key, value string) []jsonpatch.Operation {
	if len(annotations) == 0 {
		return append(ops, jsonpatch.NewOperation("add", prefix+"/metadata/annotations", map[string]string{key: value}))
	}
	return append(ops, jsonpatch.NewOperation("add", prefix+"/metadata/annotations/"+Escape(key), value))
}

// Marshal encodes ops as the JSON patch the API server receives: the bytes json.Marshal(ops) makes, in one pass
// instead of two (jsonpatch.Operation's MarshalJSON encodes its value on its own, and json.Marshal then scans
// that output again to compact it).
func Marshal(ops []jsonpatch.Operation) ([]byte, error) {
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

// Strings renders operations as "op path value", one string each, for test tables and messages a person reads.
func Strings(ops []jsonpatch.Operation) []string {
	out := make([]string, len(ops))
	for i, op := range ops {
		out[i] = op.Operation + " " + op.Path
		if op.Value != nil {
			v, _ := json.Marshal(op.Value)
			out[i] += " " + string(v)
		}
	}
	return out
}
