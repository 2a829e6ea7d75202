// Package webhook_test runs every manifest in testdata/golden through both of tandem's paths, the offline
// `tandem inject` and the webhook's HTTP handlers, and compares them with the golden files beside the inputs.
//
// X.yaml is the input; X.yaml.golden is what `tandem inject` makes of it: its warnings and its refusal as
// comments, then its output. `go test ./webhook/ -update` (make update-golden) rewrites the golden files.
package webhook_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/jobdefaults/jobtest"
	"github.com/tandem-dev/tandem/webhook/offline"
	"github.com/tandem-dev/tandem/webhook/server"
	"github.com/tandem-dev/tandem/webhook/workload"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

const goldenDir = "testdata/golden"

func TestGolden(t *testing.T) {
	cfg := goldenConfig(t)
	inputs, _ := filepath.Glob(filepath.Join(goldenDir, "*.yaml"))
	json, _ := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	inputs = append(inputs, json...)
	goldens := map[string]bool{}
	for _, in := range inputs {
		if filepath.Base(in) == "config.yaml" {
			continue
		}
		goldens[in+".golden"] = true
		t.Run(strings.TrimSuffix(filepath.Base(in), ".yaml"), func(t *testing.T) {
			input, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, out, refusal := runOffline(t, filepath.Base(in), input, cfg)
			checkGolden(t, in+".golden", got)
			t.Run("idempotent", func(t *testing.T) {
				if refusal != "" {
					return
				}
				var again bytes.Buffer
				res, err := offline.Inject(filepath.Base(in), bytes.NewReader(out), &again, cfg)
				if err != nil || res.Changed != 0 || !bytes.Equal(again.Bytes(), out) {
					t.Errorf("injecting the output again changed it (err %v, %d documents changed)", err, res.Changed)
				}
			})
			t.Run("webhook", func(t *testing.T) {
				for i, doc := range documents(t, input) {
					sameThroughTheWebhook(t, i+1, doc, cfg)
				}
			})
		})
	}
	golden, _ := filepath.Glob(filepath.Join(goldenDir, "*.golden"))
	for _, g := range golden {
		if !goldens[g] {
			t.Errorf("stale golden file %s: its input is gone", g)
		}
	}
}

func goldenConfig(t *testing.T) *config.Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no golden file (run make update-golden): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run make update-golden and review the diff):\n%s", path, got)
	}
}

// runOffline runs tandem inject on input and returns the golden file's content: the warnings and the refusal as
// comments, then the output.
func runOffline(t *testing.T, name string, input []byte, cfg *config.Config) (golden, out []byte, refusal string) {
	t.Helper()
	var buf, stdout bytes.Buffer
	res, err := offline.Inject(name, bytes.NewReader(input), &stdout, cfg)
	for _, w := range res.Warnings {
		fmt.Fprintf(&buf, "# Warning: %s\n", w)
	}
	if err != nil {
		refusal = err.Error()
		for _, line := range strings.Split(refusal, "\n") {
			fmt.Fprintf(&buf, "# Error: %s\n", line)
		}
	}
	buf.Write(stdout.Bytes())
	return buf.Bytes(), stdout.Bytes(), refusal
}

// sameThroughTheWebhook sends the objects of one document to the webhook as the API server would (each Job and
// CronJob to the Job defaulter, then each pod, as its controller would make it from the stored template, to the
// pod injector) and checks that the two paths agree: the document is refused offline exactly when the webhook
// refuses one of its objects, with the webhook's messages in the offline refusal; otherwise the webhook stores
// what `tandem inject` wrote.
func sameThroughTheWebhook(t *testing.T, n int, doc []byte, cfg *config.Config) {
	_, out, refusal := runOffline(t, fmt.Sprintf("document-%d", n), doc, cfg)
	var offlineObjects []map[string]any
	if refusal == "" {
		offlineObjects = objects(t, out)
	}
	var refusals []string
	for i, obj := range objects(t, doc) {
		stored, msgs := throughTheWebhook(t, obj, cfg)
		refusals = append(refusals, msgs...)
		if len(msgs) > 0 || refusal != "" {
			continue
		}
		if i >= len(offlineObjects) {
			t.Fatalf("document %d: object %d is missing from the offline output", n, i)
		}
		sameObject(t, fmt.Sprintf("document %d, object %d", n, i), obj, stored, offlineObjects[i])
	}
	switch {
	case refusal != "" && len(refusals) == 0:
		t.Errorf("document %d: tandem inject refused it, the webhook admitted every object:\n%s", n, refusal)
	case refusal == "" && len(refusals) > 0:
		t.Errorf("document %d: the webhook refused %q, tandem inject admitted it", n, refusals)
	}
	for _, msg := range refusals {
		if !strings.Contains(refusal, msg) {
			t.Errorf("document %d: the webhook refused with %q, which tandem inject's refusal does not say:\n%s", n, msg, refusal)
		}
	}
}

// throughTheWebhook returns what the API server would store for obj through the webhook (the object, and for a
// pod or a workload the pod its controller creates), or the webhook's refusals.
func throughTheWebhook(t *testing.T, obj map[string]any, cfg *config.Config) (map[string]any, []string) {
	t.Helper()
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	path, ok := workload.TemplatePath(workload.GroupOf(apiVersion), kind)
	if !ok {
		return obj, nil
	}
	stored := obj
	if group, _, _ := strings.Cut(apiVersion, "/"); group == "batch" {
		resp, served := admitJob(t, obj, kind, cfg)
		if !resp.Allowed {
			return nil, []string{resp.Result.Message}
		}
		stored = applyPatch(t, served, resp.Patch)
	}
	if len(path) > 0 {
		// The workload check sees the object as stored (a Job with its defaults) and refuses it when its pods
		// would be refused, with the pod injector's message.
		group, version, _ := strings.Cut(apiVersion, "/")
		if version == "" {
			group, version = "", apiVersion
		}
		check := admit(t, workloadHandler(cfg), server.WorkloadPath, metav1.GroupVersionKind{Group: group, Version: version, Kind: kind}, stored)
		if !check.Allowed {
			return nil, []string{check.Result.Message}
		}
	}
	pod := podOf(t, stored, path)
	resp := admit(t, podHandler(cfg), server.PodPath, metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, pod)
	if !resp.Allowed {
		return nil, []string{resp.Result.Message}
	}
	return map[string]any{"object": stored, "pod": applyPatch(t, pod, resp.Patch)}, nil
}

// admitJob sends a Job or CronJob as the API server does: with its defaults set, and without a
// ttlSecondsAfterFinished in the pod spec, a field no API server knows (it drops it, or refuses the object with
// strict field validation). It returns the answer and the object sent.
func admitJob(t *testing.T, obj map[string]any, kind string, cfg *config.Config) (*admissionv1.AdmissionResponse, map[string]any) {
	t.Helper()
	sent := deepCopy(t, obj)
	if pod := podSpec(sent, kind); pod != nil {
		delete(pod, "ttlSecondsAfterFinished")
	}
	served := withDefaults(t, sent, kind)
	path := server.JobPath
	if kind == "CronJob" {
		path = server.CronJobPath
	}
	return admit(t, jobHandler(cfg), path, metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: kind}, served), served
}

// withDefaults adds the API server's defaults (jobtest.AsServed) to a Job or CronJob, keeping the fields tandem's
// Go types do not know, as a newer API server would send them.
func withDefaults(t *testing.T, obj map[string]any, kind string) map[string]any {
	t.Helper()
	var typed, served any = &batchv1.Job{}, &batchv1.Job{}
	if kind == "CronJob" {
		typed, served = &batchv1.CronJob{}, &batchv1.CronJob{}
	}
	convert(t, obj, typed)
	convert(t, obj, served)
	switch s := served.(type) {
	case *batchv1.Job:
		jobtest.AsServed(s)
	case *batchv1.CronJob:
		jobtest.AsServed(s)
	}
	before, _ := json.Marshal(typed)
	after, _ := json.Marshal(served)
	defaults, err := jsonpatch.CreateMergePatch(before, after)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(obj)
	merged, err := jsonpatch.MergePatch(raw, defaults)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(merged, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameObject compares what the webhook stored for an object with what `tandem inject` wrote, once the API server
// has defaulted the offline output too.
func sameObject(t *testing.T, where string, input, stored, written map[string]any) {
	t.Helper()
	apiVersion, _ := input["apiVersion"].(string)
	kind, _ := input["kind"].(string)
	path, ok := workload.TemplatePath(workload.GroupOf(apiVersion), kind)
	if !ok {
		if !reflect.DeepEqual(stored, written) {
			t.Errorf("%s: tandem inject changed a %s it does not mutate", where, kind)
		}
		return
	}
	if group, _, _ := strings.Cut(apiVersion, "/"); group == "batch" {
		sameJob(t, where, input, stored["object"].(map[string]any), withDefaults(t, written, kind), kind)
	}
	if got, want := stored["pod"].(map[string]any), podOf(t, written, path); !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s: the webhook's pod differs from tandem inject's:\nwebhook: %s\noffline: %s", where, g, w)
	}
}

// sameJob compares a Job or CronJob as typed objects, but for their pod templates. The webhook cannot see a ttlSecondsAfterFinished misplaced
// in the pod spec (the API server drops it), so it sets the configured one and names it in tandem.dev/defaulted,
// where tandem inject moved the user's: that one difference is expected.
func sameJob(t *testing.T, where string, input, stored, written map[string]any, kind string) {
	t.Helper()
	var got, want any = &batchv1.Job{}, &batchv1.Job{}
	ttl := "spec.ttlSecondsAfterFinished"
	if kind == "CronJob" {
		got, want, ttl = &batchv1.CronJob{}, &batchv1.CronJob{}, "spec.jobTemplate.spec.ttlSecondsAfterFinished"
	}
	convert(t, stored, got)
	convert(t, written, want)
	// The pod templates are compared as the pods made from them (sameObject): tandem inject injects the
	// template, the webhook the pods.
	for _, obj := range []any{got, want} {
		switch o := obj.(type) {
		case *batchv1.Job:
			o.Spec.Template = corev1.PodTemplateSpec{}
		case *batchv1.CronJob:
			o.Spec.JobTemplate.Spec.Template = corev1.PodTemplateSpec{}
		}
	}
	if _, misplaced := podSpec(input, kind)["ttlSecondsAfterFinished"]; misplaced {
		meta := got.(metav1.Object)
		ann := meta.GetAnnotations()
		paths := strings.Split(ann[annotations.Defaulted], ",")
		if !slices.Contains(paths, ttl) {
			t.Errorf("%s: the webhook's %s %q does not name %s", where, annotations.Defaulted, paths, ttl)
		}
		ann[annotations.Defaulted] = strings.Join(slices.DeleteFunc(paths, func(p string) bool { return p == ttl }), ",")
		meta.SetAnnotations(ann)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: the webhook stores\n%+v\nbut tandem inject then the API server store\n%+v", where, got, want)
	}
}

// documents splits a manifest stream into its documents.
func documents(t *testing.T, stream []byte) [][]byte {
	t.Helper()
	var docs [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, doc)
		}
	}
}

// objects returns the objects of a manifest stream, a List's items in its place.
func objects(t *testing.T, stream []byte) []map[string]any {
	t.Helper()
	var all []map[string]any
	for _, doc := range documents(t, stream) {
		var obj any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		m, ok := obj.(map[string]any)
		if !ok {
			continue
		}
		if items, ok := m["items"].([]any); ok && m["kind"] == "List" {
			for _, item := range items {
				if o, ok := item.(map[string]any); ok {
					all = append(all, o)
				}
			}
			continue
		}
		all = append(all, m)
	}
	return all
}

// podOf returns the pod of an object as its controller would create it: the Pod, or a Pod made from the
// template at path.
func podOf(t *testing.T, obj map[string]any, path []string) map[string]any {
	t.Helper()
	if len(path) == 0 {
		return obj
	}
	var tmpl any = obj
	for _, k := range path {
		tmpl, _ = tmpl.(map[string]any)[k]
	}
	m, _ := tmpl.(map[string]any)
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": m["metadata"], "spec": m["spec"]}
	return deepCopy(t, pod)
}

func podSpec(obj map[string]any, kind string) map[string]any {
	path := []string{"spec", "template", "spec"}
	if kind == "CronJob" {
		path = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	}
	var v any = obj
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	m, _ := v.(map[string]any)
	return m
}

func podHandler(cfg *config.Config) http.Handler {
	return &server.Handler{Mutator: &server.PodMutator{Config: config.NewStaticStore(cfg), Log: logr.Discard()}, Log: logr.Discard()}
}

func workloadHandler(cfg *config.Config) http.Handler {
	return &server.Handler{Mutator: &server.WorkloadValidator{Config: config.NewStaticStore(cfg), Log: logr.Discard()}, Log: logr.Discard()}
}

func jobHandler(cfg *config.Config) http.Handler {
	return &server.Handler{Mutator: &server.JobMutator{Config: config.NewStaticStore(cfg), Log: logr.Discard()}, Log: logr.Discard()}
}

func admit(t *testing.T, h http.Handler, path string, kind metav1.GroupVersionKind, obj map[string]any) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "golden", Kind: kind, Namespace: "default",
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}},
	})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("bad answer: %s", rec.Body)
	}
	return out.Response
}

// applyPatch applies the webhook's JSON patch with the library the API server uses.
func applyPatch(t *testing.T, obj map[string]any, patch []byte) map[string]any {
	t.Helper()
	raw, _ := json.Marshal(obj)
	if len(patch) > 0 {
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			t.Fatal(err)
		}
		if raw, err = p.Apply(raw); err != nil {
			t.Fatalf("the webhook's patch does not apply: %v", err)
		}
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func convert(t *testing.T, obj map[string]any, into any) {
	t.Helper()
	raw, _ := json.Marshal(obj)
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatal(err)
	}
}

func deepCopy(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	var out map[string]any
	convert(t, obj, &out)
	return out
}
