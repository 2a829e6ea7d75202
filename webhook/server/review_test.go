package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/server"
)

const dbPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db-pod","annotations":{
  "tandem.dev/backup":"postgres","tandem.dev/backup-location":"s3://my-bucket/my-backups","tandem.dev/database-secret":"db-secrets"}},
  "spec":{"containers":[{"name":"db-container","image":"my-database-image","futureField":"keep"}],
          "volumes":[{"name":"db-data","emptyDir":{}}]}}`

func podHandler() http.Handler {
	return &server.Handler{Mutator: &server.PodMutator{Config: config.NewStaticStore(config.Default()), Log: logr.Discard()}, Log: logr.Discard()}
}

// review builds the AdmissionReview the API server would send for obj.
func review(op admissionv1.Operation, obj string, mod ...func(*admissionv1.AdmissionRequest)) []byte {
	req := &admissionv1.AdmissionRequest{
		UID:       "0f3c1f7e-1",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: "databases",
		Operation: op,
		Object:    runtime.RawExtension{Raw: []byte(obj)},
	}
	for _, m := range mod {
		m(req)
	}
	b, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
	return b
}

func post(t testing.TB, h http.Handler, body []byte, contentType string) *admissionv1.AdmissionReview {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, server.PodPath, bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("answer is not an AdmissionReview (%v): %s", err, rec.Body)
	}
	return &out
}

func patched(t *testing.T, obj string, resp *admissionv1.AdmissionResponse) map[string]any {
	t.Helper()
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type = %v", resp.PatchType)
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply([]byte(obj))
	if err != nil {
		t.Fatalf("patch %s does not apply: %v", resp.Patch, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCreateInjects(t *testing.T) {
	out := post(t, podHandler(), review(admissionv1.Create, dbPod), "application/json")
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response.UID != "0f3c1f7e-1" || !out.Response.Allowed {
		t.Fatalf("response = %+v", out)
	}
	pod := patched(t, dbPod, out.Response)
	spec := pod["spec"].(map[string]any)
	containers := spec["containers"].([]any)
	if inits, _ := spec["initContainers"].([]any); len(containers) != 1 || len(inits) != 1 || inits[0].(map[string]any)["name"] != "tandem-backup" {
		t.Errorf("containers = %v, initContainers = %v: want the database's and the native sidecar", containers, spec["initContainers"])
	}
	if containers[0].(map[string]any)["futureField"] != "keep" {
		t.Error("the patch removed a field tandem's types do not know")
	}
	if ann := pod["metadata"].(map[string]any)["annotations"].(map[string]any); ann["tandem.dev/injected"] != "postgres" {
		t.Errorf("annotations = %v", ann)
	}
	if vols := pod["spec"].(map[string]any)["volumes"].([]any); len(vols) != 4 {
		t.Errorf("volumes = %v, want db-data, backup-data, tandem-database-secret, tandem-tmp", vols)
	}
}

func TestOnlyCreateMutates(t *testing.T) {
	for _, op := range []admissionv1.Operation{admissionv1.Update, admissionv1.Delete, admissionv1.Connect} {
		out := post(t, podHandler(), review(op, dbPod), "application/json")
		if !out.Response.Allowed || out.Response.Patch != nil || out.Response.UID != "0f3c1f7e-1" {
			t.Errorf("%s: response = %+v, want allowed without a patch", op, out.Response)
		}
	}
	out := post(t, podHandler(), review(admissionv1.Create, dbPod, func(r *admissionv1.AdmissionRequest) { r.SubResource = "status" }), "application/json")
	if !out.Response.Allowed || out.Response.Patch != nil {
		t.Errorf("subresource: response = %+v", out.Response)
	}
}

func TestDryRunGetsTheSameAnswer(t *testing.T) {
	real := post(t, podHandler(), review(admissionv1.Create, dbPod), "application/json")
	dry := post(t, podHandler(), review(admissionv1.Create, dbPod, func(r *admissionv1.AdmissionRequest) { yes := true; r.DryRun = &yes }), "application/json")
	if !bytes.Equal(real.Response.Patch, dry.Response.Patch) || real.Response.Allowed != dry.Response.Allowed {
		t.Errorf("dry run patch %s, real %s", dry.Response.Patch, real.Response.Patch)
	}
}

func TestRefusalReachesTheUser(t *testing.T) {
	bad := strings.Replace(dbPod, "s3://my-bucket/my-backups", "my-bucket", 1)
	before := injections(t, "postgres", "refused")
	out := post(t, podHandler(), review(admissionv1.Create, bad), "application/json")
	r := out.Response
	if r.Allowed || r.Result == nil || r.Result.Code != http.StatusForbidden || !strings.Contains(r.Result.Message, "annotation tandem.dev/backup-location") {
		t.Errorf("response = %+v", r)
	}
	if got := injections(t, "postgres", "refused") - before; got != 1 {
		t.Errorf("refusals counted %v, want 1", got)
	}
}

func TestGenerateNamePodInjects(t *testing.T) {
	pod := strings.Replace(dbPod, `"name":"db-pod"`, `"generateName":"db-"`, 1)
	out := post(t, podHandler(), review(admissionv1.Create, pod), "application/json")
	if !out.Response.Allowed || len(out.Response.Patch) == 0 {
		t.Errorf("response = %+v", out.Response)
	}
}

func TestUnannotatedPodPassesUntouched(t *testing.T) {
	pod := `{"metadata":{"generateName":"web-"},"spec":{"containers":[{"name":"web","image":"nginx"}]}}`
	before := injections(t, "", "skipped")
	out := post(t, podHandler(), review(admissionv1.Create, pod), "application/json")
	if !out.Response.Allowed || out.Response.Patch != nil || len(out.Response.Warnings) != 0 {
		t.Errorf("response = %+v", out.Response)
	}
	if injections(t, "", "skipped")-before != 1 {
		t.Error("skip not counted")
	}
}

func TestWarningsReachTheUser(t *testing.T) {
	pod := strings.Replace(dbPod, `"tandem.dev/database-secret":"db-secrets"`, `"tandem.dev/databse":"x"`, 1)
	out := post(t, podHandler(), review(admissionv1.Create, pod), "application/json")
	w := strings.Join(out.Response.Warnings, "\n")
	if !out.Response.Allowed || !strings.Contains(w, "tandem.dev/databse") || !strings.Contains(w, "without a password") {
		t.Errorf("warnings = %q", out.Response.Warnings)
	}
}

func TestBadRequestsAreErrorsWithAMessage(t *testing.T) {
	tests := []struct {
		name, body, contentType, want string
	}{
		{"not JSON", "{{", "application/json", "decoding the AdmissionReview"},
		{"wrong content type", string(review(admissionv1.Create, dbPod)), "text/plain", "application/json"},
		{"no request", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, "application/json", "no request"},
		{"not a review", `{"apiVersion":"v1","kind":"Pod"}`, "application/json", "expected an admission.k8s.io/v1 AdmissionReview"},
		{"object not a pod", string(review(admissionv1.Create, `{"spec":{"containers":"nope"}}`)), "application/json", "decoding the pod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, podHandler(), []byte(tt.body), tt.contentType).Response
			if r.Allowed || r.Result == nil || r.Result.Code != http.StatusBadRequest || !strings.Contains(r.Result.Message, tt.want) {
				t.Errorf("response = %+v, want 400 saying %q", r, tt.want)
			}
		})
	}
}

func TestOtherKindOnThePodEndpointIsLeftAlone(t *testing.T) {
	out := post(t, podHandler(), review(admissionv1.Create, `{"spec":{}}`, func(r *admissionv1.AdmissionRequest) {
		r.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	}), "application/json")
	if !out.Response.Allowed || out.Response.Patch != nil || len(out.Response.Warnings) != 1 {
		t.Errorf("response = %+v", out.Response)
	}
}

func TestV1beta1ReviewIsAnsweredInKind(t *testing.T) {
	body := bytes.Replace(review(admissionv1.Create, dbPod), []byte("admission.k8s.io/v1"), []byte("admission.k8s.io/v1beta1"), 1)
	out := post(t, podHandler(), body, "application/json")
	if out.APIVersion != "admission.k8s.io/v1beta1" || !out.Response.Allowed {
		t.Errorf("answer %s %+v", out.APIVersion, out.Response)
	}
}

type panicking struct{}

func (panicking) Mutate(context.Context, admission.Request) admission.Response { panic("boom") }

func TestPanicIsAnErrorAnswer(t *testing.T) {
	h := &server.Handler{Mutator: panicking{}, Log: logr.Discard()}
	r := post(t, h, review(admissionv1.Create, dbPod), "application/json").Response
	if r.Allowed || r.Result.Code != http.StatusInternalServerError || !strings.Contains(r.Result.Message, "boom") || r.UID != "0f3c1f7e-1" {
		t.Errorf("response = %+v", r)
	}
}

// injections reads tandem_pod_injections_total{profile, result} from the registry /metrics serves.
func injections(t *testing.T, profile, result string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "tandem_pod_injections_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["profile"] == profile && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
