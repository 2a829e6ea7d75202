package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/jobdefaults"
)

// Endpoints of the Job and CronJob defaulter.
const (
	JobPath     = "/mutate-batch-v1-job"
	CronJobPath = "/mutate-batch-v1-cronjob"
)

// JobMutator sets tandem's defaults on Jobs and CronJobs on CREATE.
type JobMutator struct {
	Config *config.Store
	Log    logr.Logger
}

// Mutate answers one Job or CronJob admission request. Only CREATE mutates, as for pods; a dry run gets the
// same answer.
func (m *JobMutator) Mutate(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create || req.SubResource != "" {
		return admission.Allowed("")
	}
	d := jobdefaults.New(m.Config.Get())
	var (
		plan *jobdefaults.Plan
		err  error
		name string
	)
	switch {
	case req.Kind.Group == "batch" && req.Kind.Kind == "Job":
		job, decodeErr := objectOf[batchv1.Job](req)
		if decodeErr != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the Job: %w", decodeErr))
		}
		name = objectKey(req.Namespace, job.Name, job.GenerateName)
		plan, err = d.DefaultJob(job)
	case req.Kind.Group == "batch" && req.Kind.Kind == "CronJob":
		cj, decodeErr := objectOf[batchv1.CronJob](req)
		if decodeErr != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the CronJob: %w", decodeErr))
		}
		name = objectKey(req.Namespace, cj.Name, cj.GenerateName)
		plan, err = d.DefaultCronJob(cj)
	default:
		return wrongKind(m.Log, "tandem's Job defaulter", req)
	}
	if err != nil {
		var refusal *jobdefaults.Refusal
		if !errors.As(err, &refusal) {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		countDefaults(req.Kind.Kind, "refused")
		m.Log.Info("refused "+req.Kind.Kind, "object", name, "reason", err.Error())
		return admission.Denied(err.Error())
	}
	countDefaults(req.Kind.Kind, string(plan.Outcome))
	ops := plan.Patch("")
	if len(ops) == 0 {
		return admission.Allowed("").WithWarnings(plan.Warnings...)
	}
	if log := m.Log.V(1); log.Enabled() {
		log.Info("set defaults", "kind", req.Kind.Kind, "object", name, "fields", plan.Fields)
	}
	return admission.Patched("", ops...).WithWarnings(plan.Warnings...)
}

// decodeReview decodes the review and its Job or CronJob, as the endpoint at path admits, in one pass; see
// typedMutator.
func (m *JobMutator) decodeReview(path string, body []byte) (*admissionv1.AdmissionReview, bool) {
	switch path {
	case JobPath:
		return decodeTyped[batchv1.Job](body, "batch", "Job")
	case CronJobPath:
		return decodeTyped[batchv1.CronJob](body, "batch", "CronJob")
	}
	return nil, false
}

// objectKey names an object in logs; objects made by controllers may have only a generateName at admission.
func objectKey(namespace, name, generateName string) string {
	if name == "" {
		name = generateName + "*"
	}
	return namespace + "/" + name
}
