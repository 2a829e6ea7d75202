package offline

import (
	"encoding/json"
	"fmt"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tandem-dev/tandem/internal/patch"
	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/jobdefaults"
)

const ttlField = "ttlSecondsAfterFinished"

// defaultJob sets the defaults the webhook would set on a Job or CronJob (kind), in place, after moving a
// misplaced ttlSecondsAfterFinished (moveMisplacedTTL) so that the defaulter sees the moved value.
func (in mutators) defaultJob(obj map[string]any, kind, prefix string) (bool, []string, error) {
	moveOps, warnings, err := moveMisplacedTTL(obj, kind)
	if err != nil {
		return false, nil, err
	}
	in.record(prefix, moveOps)
	var plan *jobdefaults.Plan
	switch kind {
	case "Job":
		var job batchv1.Job
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &job); err != nil {
			return false, nil, fmt.Errorf("decoding the Job: %w", err)
		}
		plan, err = in.jobs.DefaultJob(&job)
	default:
		var cj batchv1.CronJob
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &cj); err != nil {
			return false, nil, fmt.Errorf("decoding the CronJob: %w", err)
		}
		plan, err = in.jobs.DefaultCronJob(&cj)
	}
	if err != nil {
		return false, nil, err
	}
	ops := plan.Patch("")
	if _, err := patch.Apply(obj, ops); err != nil {
		return false, nil, fmt.Errorf("applying the defaults: %w", err)
	}
	in.record(prefix, ops)
	return len(moveOps)+len(ops) > 0, append(warnings, plan.Warnings...), nil
}

// moveMisplacedTTL repairs a Job or CronJob (kind) that writes ttlSecondsAfterFinished in its pod spec, where
// Kubernetes has no such field (strict field validation refuses the object; without it the field is dropped, so
// the webhook never sees it). The value moves to the Job spec that owns the pod spec, where it wins over the
// configured default; when that Job spec has its own value already, the misplaced one is only removed. An object
// that opts out with tandem.dev/defaults: "false" is left as it is, with a warning.
//
// It changes obj in place and returns the operations it applied, and a warning naming the move.
func moveMisplacedTTL(obj map[string]any, kind string) ([]jsonpatch.Operation, []string, error) {
	specPath := []string{"spec"}
	if kind == "CronJob" {
		specPath = []string{"spec", "jobTemplate", "spec"}
	}
	podPath := append(specPath[:len(specPath):len(specPath)], "template", "spec")
	value, ok := objectAt(obj, podPath...)[ttlField]
	if !ok {
		return nil, nil, nil
	}
	from, to := strings.Join(podPath, ".")+"."+ttlField, strings.Join(specPath, ".")+"."+ttlField

	out, err := optedOut(obj, kind)
	if err != nil {
		return nil, nil, err
	}
	if out {
		return nil, []string{fmt.Sprintf(`%s is "false", so tandem left %s where it is, but a pod spec has no such field: move it to %s`,
			annotations.Defaults, from, to)}, nil
	}

	ops := []jsonpatch.Operation{jsonpatch.NewOperation("remove", patch.Pointer(podPath...)+"/"+ttlField, nil)}
	var warning string
	if value == nil {
		warning = fmt.Sprintf("tandem removed %s: null: a pod spec has no such field", from)
	} else {
		seconds, ok := value.(int64)
		if !ok || seconds < 0 || seconds > 1<<31-1 {
			shown, _ := json.Marshal(value)
			return nil, nil, &jobdefaults.Refusal{Kind: kind, Problem: fmt.Sprintf("%s is %s, not a number of seconds, and in the wrong place: "+
				"a pod spec has no such field; write it as %s", from, shown, to)}
		}
		if own, ok := objectAt(obj, specPath...)[ttlField]; ok && own != nil {
			warning = fmt.Sprintf("tandem removed %s (%d): a pod spec has no such field, and %s is set already (%v)", from, seconds, to, own)
		} else {
			ops = append(ops, jsonpatch.NewOperation("add", patch.Pointer(specPath...)+"/"+ttlField, seconds))
			warning = fmt.Sprintf("tandem moved %s (%d) to %s: a pod spec has no such field; the Job spec that owns it has", from, seconds, to)
		}
	}
	if _, err := patch.Apply(obj, ops); err != nil {
		return nil, nil, fmt.Errorf("moving %s: %w", from, err)
	}
	return ops, []string{warning}, nil
}

// optedOut reads tandem.dev/defaults of a Job, or of a CronJob and then its job template.
func optedOut(obj map[string]any, kind string) (bool, error) {
	out, err := jobdefaults.IsOptedOut(annotationsOf(objectAt(obj, "metadata")), "", kind)
	if err != nil || out || kind != "CronJob" {
		return out, err
	}
	return jobdefaults.IsOptedOut(annotationsOf(objectAt(obj, "spec", "jobTemplate", "metadata")), " in spec.jobTemplate.metadata", kind)
}

// annotationsOf returns the string annotations of meta; a malformed value fails the typed decoding later, with a
// better message.
func annotationsOf(meta map[string]any) map[string]string {
	raw, _ := meta["annotations"].(map[string]any)
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}
