package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/server"
)

// The original example Job as the API server sends it to a webhook: its own defaults applied (backoffLimit 6 is
// the user's 3 here, restartPolicy Always on the pod), and the container-level restartPolicy the user wrote.
const exampleJob = `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"data-processing-job","namespace":"batch"},
  "spec":{"backoffLimit":3,"completions":1,"parallelism":1,"suspend":false,"futureJobField":"keep",
    "template":{"spec":{"restartPolicy":"Always","containers":[{"name":"data-processor","image":"data-processor:v1.4",
      "command":["python","process_data.py"],"restartPolicy":"Never"}]}}}}`

// A CronJob as the API server sends it: history limits and concurrencyPolicy defaulted, the job template not.
const cronJob = `{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"reports"},
  "spec":{"schedule":"0 * * * *","successfulJobsHistoryLimit":3,"failedJobsHistoryLimit":1,"concurrencyPolicy":"Allow","suspend":false,
    "jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Always","containers":[{"name":"r","image":"reports:1"}]}}}}}}`

func jobHandler() http.Handler {
	return &server.Handler{Mutator: &server.JobMutator{Config: config.NewStaticStore(config.Default()), Log: logr.Discard()}, Log: logr.Discard()}
}

func batchKind(kind string) func(*admissionv1.AdmissionRequest) {
	return func(r *admissionv1.AdmissionRequest) {
		r.Kind = metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: kind}
	}
}

func TestJobCreateIsDefaulted(t *testing.T) {
	out := post(t, jobHandler(), review(admissionv1.Create, exampleJob, batchKind("Job")), "application/json")
	job := patched(t, exampleJob, out.Response)
	spec := job["spec"].(map[string]any)
	pod := spec["template"].(map[string]any)["spec"].(map[string]any)
	if spec["ttlSecondsAfterFinished"] != 100.0 || spec["backoffLimit"] != 3.0 || pod["restartPolicy"] != "Never" || spec["futureJobField"] != "keep" {
		t.Errorf("spec = %v", spec)
	}
	if _, ok := pod["containers"].([]any)[0].(map[string]any)["restartPolicy"]; ok {
		t.Error("the container-level restartPolicy the pod took was left on the container")
	}
	ann := job["metadata"].(map[string]any)["annotations"].(map[string]any)
	if ann["tandem.dev/defaulted"] != "spec.ttlSecondsAfterFinished,spec.template.spec.restartPolicy" {
		t.Errorf("tandem.dev/defaulted = %v", ann["tandem.dev/defaulted"])
	}
	if w := strings.Join(out.Response.Warnings, "\n"); !strings.Contains(w, "spec.ttlSecondsAfterFinished=100") {
		t.Errorf("warnings = %q", out.Response.Warnings)
	}
}

func TestCronJobCreateIsDefaulted(t *testing.T) {
	out := post(t, jobHandler(), review(admissionv1.Create, cronJob, batchKind("CronJob")), "application/json")
	cj := patched(t, cronJob, out.Response)
	spec := cj["spec"].(map[string]any)
	tmpl := spec["jobTemplate"].(map[string]any)["spec"].(map[string]any)
	if spec["successfulJobsHistoryLimit"] != 1.0 || spec["failedJobsHistoryLimit"] != 1.0 || spec["concurrencyPolicy"] != "Allow" ||
		tmpl["ttlSecondsAfterFinished"] != 100.0 || tmpl["backoffLimit"] != 3.0 {
		t.Errorf("spec = %v", spec)
	}
}

func TestJobsOnlyCreateMutates(t *testing.T) {
	for _, op := range []admissionv1.Operation{admissionv1.Update, admissionv1.Delete} {
		out := post(t, jobHandler(), review(op, exampleJob, batchKind("Job")), "application/json")
		if !out.Response.Allowed || out.Response.Patch != nil {
			t.Errorf("%s: response = %+v", op, out.Response)
		}
	}
}

func TestJobOptOutAndBadOptOut(t *testing.T) {
	optedOut := strings.Replace(exampleJob, `"namespace":"batch"`, `"namespace":"batch","annotations":{"tandem.dev/defaults":"false"}`, 1)
	out := post(t, jobHandler(), review(admissionv1.Create, optedOut, batchKind("Job")), "application/json")
	if !out.Response.Allowed || out.Response.Patch != nil {
		t.Errorf("opted out: response = %+v", out.Response)
	}
	bad := strings.Replace(exampleJob, `"namespace":"batch"`, `"namespace":"batch","annotations":{"tandem.dev/defaults":"no"}`, 1)
	r := post(t, jobHandler(), review(admissionv1.Create, bad, batchKind("Job")), "application/json").Response
	if r.Allowed || r.Result.Code != http.StatusForbidden || !strings.Contains(r.Result.Message, "tandem.dev/defaults") {
		t.Errorf("bad opt-out: response = %+v", r)
	}
}
