package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/server"
)

// statefulSet is a StatefulSet whose template carries these tandem annotations (a JSON object's members).
func statefulSet(templateAnnotations, image string) string {
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"orders-db"},
	  "spec":{"serviceName":"orders-db","selector":{"matchLabels":{"app":"db"}},
	    "template":{"metadata":{"labels":{"app":"db"},"annotations":{%s}},
	      "spec":{"containers":[{"name":"postgres","image":%q}]}}}}`, templateAnnotations, image)
}

func TestWorkloadCheck(t *testing.T) {
	h := &server.Handler{Mutator: &server.WorkloadValidator{Config: config.NewStaticStore(config.Default()), Log: logr.Discard()}, Log: logr.Discard()}
	good := `"tandem.dev/backup":"true","tandem.dev/backup-location":"s3://b/orders","tandem.dev/database-secret":"orders"`
	bad := `"tandem.dev/backup":"true","tandem.dev/backup-location":"s3://b/orders","tandem.dev/backup-interval":"daily"`
	send := func(op admissionv1.Operation, obj, old string) *admissionv1.AdmissionResponse {
		return post(t, h, review(op, obj, func(r *admissionv1.AdmissionRequest) {
			r.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
			r.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
			if old != "" {
				r.OldObject = runtime.RawExtension{Raw: []byte(old)}
			}
		}), "application/json").Response
	}
	for _, tt := range []struct {
		name      string
		op        admissionv1.Operation
		obj, old  string
		allowed   bool
		mentioned string // in the refusal, or in a warning
	}{
		{"a good template is admitted", admissionv1.Create, statefulSet(good, "postgres:17"), "", true, ""},
		{"a template tandem would refuse is refused at CREATE with the pod injector's message", admissionv1.Create, statefulSet(bad, "postgres:17"), "", false,
			`tandem cannot inject the backup sidecar: annotation tandem.dev/backup-interval: "daily" is not a Go duration`},
		{"an UPDATE that changes tandem's annotations is checked like a CREATE", admissionv1.Update, statefulSet(bad, "postgres:17"), statefulSet(good, "postgres:17"), false,
			"tandem.dev/backup-interval"},
		{"an UPDATE that leaves tandem's annotations as they were is admitted, with the problem as a warning", admissionv1.Update,
			statefulSet(bad, "postgres:18"), statefulSet(bad, "postgres:17"), true, "this StatefulSet's pods will be refused"},
		{"the pod injector's warnings come back", admissionv1.Create, statefulSet(`"tandem.dev/backup":"true","tandem.dev/backup-location":"s3://b/orders"`, "postgres:17"), "", true,
			"tandem.dev/database-secret is not set"},
		{"annotations on the workload's own metadata are a warning", admissionv1.Create,
			strings.Replace(statefulSet("", "postgres:17"), `"metadata":{"name":"orders-db"}`, `"metadata":{"name":"orders-db","annotations":{"tandem.dev/backup":"true"}}`, 1), "", true,
			"annotation tandem.dev/backup is on the StatefulSet's metadata, where tandem does not read it, so the pods get no backup sidecar: move it to spec.template.metadata.annotations"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := send(tt.op, tt.obj, tt.old)
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v: %+v", resp.Allowed, tt.allowed, resp.Result)
			}
			if resp.Patch != nil {
				t.Errorf("the workload check patched: %s", resp.Patch)
			}
			said := strings.Join(resp.Warnings, "\n")
			if resp.Result != nil {
				said += "\n" + resp.Result.Message
			}
			if !strings.Contains(said, tt.mentioned) {
				t.Errorf("the answer does not say %q:\n%s", tt.mentioned, said)
			}
			if tt.mentioned == "" && len(resp.Warnings) > 0 {
				t.Errorf("warnings for a good template: %q", resp.Warnings)
			}
		})
	}
}
