package jobdefaults

import (
	"gomodules.xyz/jsonpatch/v2"

	"github.com/tandem-dev/tandem/internal/patch"
	"github.com/tandem-dev/tandem/webhook/annotations"
)

// Patch returns the plan as JSON patch operations on the object at prefix ("" for the object itself, "/items/3"
// inside a List).
//
// Each operation names one field tandem sets (add when the field is absent, replace when it holds the API
// server's default), removes one container-level restartPolicy tandem moved, or sets tandem.dev/defaulted. No
// operation replaces an object or a list, so fields tandem's Go types do not know reach the API server untouched.
func (p *Plan) Patch(prefix string) []jsonpatch.Operation {
	if len(p.changes) == 0 {
		return nil
	}
	ops := make([]jsonpatch.Operation, 0, len(p.changes)+1)
	for _, c := range p.changes {
		ops = append(ops, jsonpatch.NewOperation(c.op, prefix+c.path, c.value))
	}
	if p.defaulted != "" {
		ops = patch.AddAnnotation(ops, prefix, p.meta.Annotations, annotations.Defaulted, p.defaulted)
	}
	return ops
}
