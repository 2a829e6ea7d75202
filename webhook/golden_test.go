// Package webhook_test runs every manifest in testdata/inject through both of tandem's paths, the offline
// `tandem inject` and the webhook's HTTP handler, and compares them with the golden files beside the inputs.
package webhook_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/offline"
	"github.com/tandem-dev/tandem/webhook/server"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

const goldenDir = "testdata/inject"

func TestInjection(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(goldenDir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	inputs, _ := filepath.Glob(filepath.Join(goldenDir, "*.yaml"))
	goldens := map[string]bool{}
	for _, in := range inputs {
		if filepath.Base(in) == "config.yaml" {
			continue
		}
		goldens[in+".injected"] = true
		t.Run(strings.TrimSuffix(filepath.Base(in), ".yaml"), func(t *testing.T) {
			input, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, out, refusal := runOffline(t, input, cfg)
			golden := in + ".injected"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("no golden file (run go test ./webhook/ -update): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run go test ./webhook/ -update and review the diff):\n%s", golden, got)
			}
			t.Run("idempotent", func(t *testing.T) {
				if refusal != "" {
					return
				}
				var again bytes.Buffer
				res, err := offline.Inject(bytes.NewReader(out), &again, cfg)
				if err != nil || res.Changed != 0 || !bytes.Equal(again.Bytes(), out) {
					t.Errorf("injecting the output again changed it (err %v, %d documents changed)", err, res.Changed)
				}
			})
			t.Run("webhook", func(t *testing.T) { sameThroughTheWebhook(t, input, out, refusal, cfg) })
		})
	}
	golden, _ := filepath.Glob(filepath.Join(goldenDir, "*.injected"))
	for _, g := range golden {
		if !goldens[g] {
			t.Errorf("stale golden file %s: its input is gone", g)
		}
	}
}

// runOffline runs tandem inject on input and returns the golden file's content: the warnings and the refusal as
// comments, then the output.
func runOffline(t *testing.T, input []byte, cfg *config.Config) (golden, out []byte, refusal string) {
	t.Helper()
	var buf, stdout bytes.Buffer
	res, err := offline.Inject(bytes.NewReader(input), &stdout, cfg)
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

// sameThroughTheWebhook sends each pod of the input to the webhook as the API server would, and checks that the
// webhook's patch gives the pod the offline output holds, or refuses it with the offline refusal.
func sameThroughTheWebhook(t *testing.T, input, output []byte, refusal string, cfg *config.Config) {
	h := &server.Handler{Mutator: &server.PodMutator{Config: config.NewStaticStore(cfg), Log: logr.Discard()}, Log: logr.Discard()}
	ins, outs := pods(t, input), pods(t, output)
	if refusal == "" && len(ins) != len(outs) {
		t.Fatalf("%d pods in, %d out", len(ins), len(outs))
	}
	for i, pod := range ins {
		resp := admit(t, h, pod)
		if !resp.Allowed {
			if refusal == "" || !strings.Contains(refusal, resp.Result.Message) {
				t.Errorf("pod %d: webhook refused %q; offline said %q", i, resp.Result.Message, refusal)
			}
			continue
		}
		if refusal != "" && len(resp.Patch) > 0 {
			continue // another document was the refused one
		}
		got := pod
		if len(resp.Patch) > 0 {
			p, err := jsonpatch.DecodePatch(resp.Patch)
			if err != nil {
				t.Fatal(err)
			}
			if got, err = p.Apply(pod); err != nil {
				t.Fatalf("pod %d: webhook patch does not apply: %v", i, err)
			}
		}
		if refusal == "" && !jsonEqual(t, got, outs[i]) {
			t.Errorf("pod %d: the webhook's result differs from tandem inject's:\nwebhook: %s\noffline: %s", i, got, outs[i])
		}
	}
}

// pods returns every pod in a manifest stream, as the API server would receive it: a Pod, or a Pod made from a
// workload's template.
func pods(t *testing.T, stream []byte) [][]byte {
	t.Helper()
	var all [][]byte
	r := utilyaml.NewYAMLReader(bufioReader(stream))
	for {
		doc, err := r.Read()
		if err != nil {
			break
		}
		raw, err := yaml.YAMLToJSON(doc)
		if err != nil || !bytes.HasPrefix(raw, []byte("{")) {
			continue
		}
		all = append(all, podsIn(t, raw)...)
	}
	return all
}

func podsIn(t *testing.T, raw []byte) [][]byte {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	if obj["kind"] == "List" {
		var all [][]byte
		for _, item := range obj["items"].([]any) {
			b, _ := json.Marshal(item)
			all = append(all, podsIn(t, b)...)
		}
		return all
	}
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	path, ok := offline.TemplatePath(apiVersion, kind)
	if !ok {
		return nil
	}
	var tmpl any = obj
	for _, k := range path {
		tmpl = tmpl.(map[string]any)[k]
	}
	m := tmpl.(map[string]any)
	pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": m["metadata"], "spec": m["spec"]})
	return [][]byte{pod}
}

func admit(t *testing.T, h http.Handler, pod []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "golden", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Namespace: "default", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: pod}},
	})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, server.PodPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("bad answer: %s", rec.Body)
	}
	return out.Response
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		t.Fatalf("not JSON: %s / %s", a, b)
	}
	return reflect.DeepEqual(x, y)
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
