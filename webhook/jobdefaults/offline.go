package jobdefaults

import (
	"encoding/json"
	"fmt"
	"strings"

	evanphx "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/podinject"
)

const ttlField = "ttlSecondsAfterFinished"

// PatchDocument is `tandem inject`'s path for one document, as JSON, at prefix ("" for the document itself,
// "/items/3" inside a List). For a Job or a CronJob it moves a misplaced ttlSecondsAfterFinished
// (MoveMisplacedTTL), plans the defaults of the document as moved, and returns the operations of both, in that
// order, to apply to the original document, with their warnings. Any other kind gives nothing.
func (d *Defaulter) PatchDocument(raw []byte, prefix string) ([]jsonpatch.Operation, []string, error) {
	moved, ops, warnings, err := MoveMisplacedTTL(raw, prefix)
	if err != nil {
		return nil, nil, err
	}
	var head typeMeta
	if err := json.Unmarshal(moved, &head); err != nil {
		return nil, nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	var plan *Plan
	switch head.kind() {
	case "Job":
		var job batchv1.Job
		if err := json.Unmarshal(moved, &job); err != nil {
			return nil, nil, fmt.Errorf("decoding the Job: %w", err)
		}
		plan, err = d.DefaultJob(&job)
	case "CronJob":
		var cj batchv1.CronJob
		if err := json.Unmarshal(moved, &cj); err != nil {
			return nil, nil, fmt.Errorf("decoding the CronJob: %w", err)
		}
		plan, err = d.DefaultCronJob(&cj)
	default:
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return append(ops, plan.Patch(prefix)...), append(warnings, plan.Warnings...), nil
}

// MoveMisplacedTTL repairs a Job or CronJob document, as JSON, that writes ttlSecondsAfterFinished in its pod
// spec, where Kubernetes has no such field (strict field validation refuses the document; without it the field
// is dropped, so the webhook never sees it). The value moves to the Job spec that owns the pod spec, where it wins
// over the configured default; when that Job spec has its own value already, the misplaced one is only removed.
//
// It returns the document repaired, the operations that repair it (at prefix, to apply to the original
// document before the defaulter's), and a warning naming the move. The defaulter must be given the object
// decoded from the repaired document, so that it sees the moved value and does not set the default over it;
// PatchDocument does exactly that. A document that needs no repair, or opts out with tandem.dev/defaults:
// "false", comes back as it is, with no operations.
func MoveMisplacedTTL(raw []byte, prefix string) (doc []byte, ops []jsonpatch.Operation, warnings []string, err error) {
	var head typeMeta
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, nil, nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	kind := head.kind()
	var specPath []string
	switch kind {
	case "Job":
		specPath = []string{"spec"}
	case "CronJob":
		specPath = []string{"spec", "jobTemplate", "spec"}
	default:
		return raw, nil, nil, nil
	}
	podPath := append(specPath[:len(specPath):len(specPath)], "template", "spec")
	pod, err := objectAt(raw, podPath)
	if err != nil {
		return nil, nil, nil, err
	}
	value, ok := pod[ttlField]
	if !ok {
		return raw, nil, nil, nil
	}
	from, to := dotted(podPath)+"."+ttlField, dotted(specPath)+"."+ttlField

	out, err := optedOut(head.Metadata.Annotations, "", kind)
	if err == nil && !out && kind == "CronJob" {
		var tmpl struct {
			Annotations map[string]string `json:"annotations"`
		}
		if m, err := objectAt(raw, []string{"spec", "jobTemplate"}); err == nil && m["metadata"] != nil {
			_ = json.Unmarshal(m["metadata"], &tmpl) // a malformed metadata fails the typed decoding next
		}
		out, err = optedOut(tmpl.Annotations, " in spec.jobTemplate.metadata", kind)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if out {
		return raw, nil, []string{fmt.Sprintf(`%s is "false", so tandem left %s where it is, but a pod spec has no such field: move it to %s`,
			annotations.Defaults, from, to)}, nil
	}

	rel := []jsonpatch.Operation{jsonpatch.NewOperation("remove", pointer(podPath)+"/"+ttlField, nil)}
	var warning string
	if string(value) == "null" {
		warning = fmt.Sprintf("tandem removed %s: null: a pod spec has no such field", from)
	} else {
		var seconds int32
		if err := json.Unmarshal(value, &seconds); err != nil || seconds < 0 {
			return nil, nil, nil, &Refusal{Kind: kind, Problem: fmt.Sprintf("%s is %s, not a number of seconds, and in the wrong place: "+
				"a pod spec has no such field; write it as %s", from, value, to)}
		}
		spec, err := objectAt(raw, specPath)
		if err != nil {
			return nil, nil, nil, err
		}
		if own, ok := spec[ttlField]; ok && string(own) != "null" {
			warning = fmt.Sprintf("tandem removed %s (%d): a pod spec has no such field, and %s is set already (%s)", from, seconds, to, own)
		} else {
			rel = append(rel, jsonpatch.NewOperation("add", pointer(specPath)+"/"+ttlField, seconds))
			warning = fmt.Sprintf("tandem moved %s (%d) to %s: a pod spec has no such field; the Job spec that owns it has", from, seconds, to)
		}
	}

	patch, err := json.Marshal(rel)
	if err != nil {
		return nil, nil, nil, err
	}
	decoded, err := evanphx.DecodePatch(patch)
	if err != nil {
		return nil, nil, nil, err
	}
	if doc, err = decoded.Apply(raw); err != nil {
		return nil, nil, nil, fmt.Errorf("moving %s: %w", from, err)
	}
	for i := range rel {
		rel[i].Path = prefix + rel[i].Path
	}
	return doc, rel, []string{warning}, nil
}

// typeMeta is the part of a document that says what it is.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
}

// kind returns Job or CronJob for those kinds of the batch group, in any version, and "" otherwise.
func (t *typeMeta) kind() string {
	group, _, ok := strings.Cut(t.APIVersion, "/")
	if !ok || group != "batch" || (t.Kind != "Job" && t.Kind != "CronJob") {
		return ""
	}
	return t.Kind
}

// objectAt returns the fields of the JSON object at path in raw; nil when the path is absent or not an object.
func objectAt(raw []byte, path []string) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	for i := -1; i < len(path); i++ {
		if i >= 0 {
			raw = fields[path[i]]
			if raw == nil {
				return nil, nil
			}
		}
		fields = nil
		if err := json.Unmarshal(raw, &fields); err != nil {
			if i < 0 {
				return nil, fmt.Errorf("not a Kubernetes object: %w", err)
			}
			return nil, nil // a wrong type here fails the typed decoding with a better message
		}
	}
	return fields, nil
}

func dotted(path []string) string { return strings.Join(path, ".") }

func pointer(path []string) string {
	var b strings.Builder
	for _, p := range path {
		b.WriteString("/" + podinject.EscapePointer(p))
	}
	return b.String()
}
