package server

import (
	"context"
	"fmt"
	"maps"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/podinject"
	"github.com/tandem-dev/tandem/webhook/workload"
)

// WorkloadPath is the endpoint of the workload check, a validating webhook.
const WorkloadPath = "/validate-workloads"

// WorkloadValidator checks the pod templates of workloads on CREATE and UPDATE: a template whose pods the pod
// injector would refuse is refused with the pod injector's message, at `kubectl apply`, instead of leaving the
// user with a workload whose pods never appear. Its warnings, and tandem annotations misplaced on the workload's
// own metadata, come back as warnings. An UPDATE that leaves tandem's annotations as they were is never refused
// (its problems come back as warnings): a rollout that changes only an image must never stop on tandem. The
// pod webhook still guards the pods themselves, so the chart registers this check with failurePolicy Ignore.
type WorkloadValidator struct {
	Config *config.Store
	Log    logr.Logger
}

// Mutate answers one admission request; it never patches.
func (v *WorkloadValidator) Mutate(_ context.Context, req admission.Request) admission.Response {
	if (req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) || req.SubResource != "" {
		return admission.Allowed("")
	}
	group, kind := req.Kind.Group, req.Kind.Kind
	if path, ok := workload.TemplatePath(group, kind); !ok || len(path) == 0 {
		return wrongKind(v.Log, "tandem's "+WorkloadPath+" endpoint", req)
	}
	obj, err := decodeMap(req.Object.Raw)
	if err != nil {
		// The API server validated the object before; a check that cannot read it is tandem's problem, not the
		// user's: admit it, say so.
		v.Log.Error(err, "cannot decode a workload; admitted unchecked", "kind", kind, "object", objectKey(req.Namespace, req.Name, ""))
		return admission.Allowed("").WithWarnings(fmt.Sprintf("tandem could not check this %s's pod template: %v", kind, err))
	}
	res, err := workload.Check(podinject.New(v.Config.Get()), obj, group, kind)
	if err != nil {
		v.Log.Error(err, "cannot check a workload; admitted unchecked", "kind", kind, "object", objectKey(req.Namespace, req.Name, ""))
		return admission.Allowed("").WithWarnings(fmt.Sprintf("tandem could not check this %s's pod template: %v", kind, err))
	}
	if res.Refusal == nil {
		result := "admitted"
		if len(res.Warnings) > 0 {
			result = "warned"
		}
		workloadChecks.WithLabelValues(kind, result).Inc()
		return admission.Allowed("").WithWarnings(res.Warnings...)
	}
	if req.Operation == admissionv1.Update && v.unchanged(req, obj, group, kind) {
		workloadChecks.WithLabelValues(kind, "warned").Inc()
		return admission.Allowed("").WithWarnings(append(res.Warnings,
			fmt.Sprintf("this %s's pods will be refused (%s); this update was admitted because it leaves tandem's annotations as they were", kind, res.Refusal.Error()))...)
	}
	workloadChecks.WithLabelValues(kind, "refused").Inc()
	v.Log.Info("refused a workload whose pods tandem would refuse", "kind", kind, "object", objectKey(req.Namespace, req.Name, ""), "reason", res.Refusal.Error())
	return admission.Denied(res.Refusal.Error()).WithWarnings(res.Warnings...)
}

// unchanged reports whether an UPDATE leaves every tandem annotation of the workload and its template as it was.
func (v *WorkloadValidator) unchanged(req admission.Request, obj map[string]any, group, kind string) bool {
	old, err := decodeMap(req.OldObject.Raw)
	if err != nil {
		return true // the old object cannot be compared: do not refuse
	}
	return maps.Equal(workload.TandemAnnotations(old, group, kind), workload.TandemAnnotations(obj, group, kind))
}

func decodeMap(raw []byte) (map[string]any, error) {
	var obj map[string]any
	if err := utiljson.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, fmt.Errorf("no object")
	}
	return obj, nil
}
