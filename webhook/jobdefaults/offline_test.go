package jobdefaults

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMoveMisplacedTTL(t *testing.T) {
	cases := []struct {
		name   string
		doc    string
		prefix string
		want   []string
		warn   string
		err    string
	}{
		{name: "Job: moved from the pod spec to the Job spec",
			doc:  `{"apiVersion":"batch/v1","kind":"Job","spec":{"template":{"spec":{"ttlSecondsAfterFinished":100,"containers":[]}}}}`,
			want: []string{"remove /spec/template/spec/ttlSecondsAfterFinished", "add /spec/ttlSecondsAfterFinished 100"},
			warn: "tandem moved spec.template.spec.ttlSecondsAfterFinished (100) to spec.ttlSecondsAfterFinished: a pod spec has no such field; the Job spec that owns it has"},
		{name: "CronJob: moved to the job template's Job spec, at a List item's prefix", prefix: "/items/3",
			doc:  `{"apiVersion":"batch/v1","kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"spec":{"ttlSecondsAfterFinished":0}}}}}}`,
			want: []string{"remove /items/3/spec/jobTemplate/spec/template/spec/ttlSecondsAfterFinished", "add /items/3/spec/jobTemplate/spec/ttlSecondsAfterFinished 0"},
			warn: "tandem moved spec.jobTemplate.spec.template.spec.ttlSecondsAfterFinished (0) to spec.jobTemplate.spec.ttlSecondsAfterFinished"},
		{name: "older batch version: moved the same way",
			doc:  `{"apiVersion":"batch/v1beta1","kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"spec":{"ttlSecondsAfterFinished":5}}}}}}`,
			want: []string{"remove /spec/jobTemplate/spec/template/spec/ttlSecondsAfterFinished", "add /spec/jobTemplate/spec/ttlSecondsAfterFinished 5"},
			warn: "(5)"},
		{name: "the Job spec's own value wins: the misplaced one is only removed",
			doc:  `{"apiVersion":"batch/v1","kind":"Job","spec":{"ttlSecondsAfterFinished":30,"template":{"spec":{"ttlSecondsAfterFinished":100}}}}`,
			want: []string{"remove /spec/template/spec/ttlSecondsAfterFinished"},
			warn: "tandem removed spec.template.spec.ttlSecondsAfterFinished (100): a pod spec has no such field, and spec.ttlSecondsAfterFinished is set already (30)"},
		{name: "a null is only removed",
			doc:  `{"apiVersion":"batch/v1","kind":"Job","spec":{"template":{"spec":{"ttlSecondsAfterFinished":null}}}}`,
			want: []string{"remove /spec/template/spec/ttlSecondsAfterFinished"},
			warn: "tandem removed spec.template.spec.ttlSecondsAfterFinished: null"},
		{name: "opt-out leaves it, with a warning",
			doc:  `{"apiVersion":"batch/v1","kind":"Job","metadata":{"annotations":{"tandem.dev/defaults":"false"}},"spec":{"template":{"spec":{"ttlSecondsAfterFinished":100}}}}`,
			warn: `tandem.dev/defaults is "false", so tandem left spec.template.spec.ttlSecondsAfterFinished where it is, but a pod spec has no such field: move it to spec.ttlSecondsAfterFinished`},
		{name: "job template opt-out leaves it",
			doc:  `{"apiVersion":"batch/v1","kind":"CronJob","spec":{"jobTemplate":{"metadata":{"annotations":{"tandem.dev/defaults":"false"}},"spec":{"template":{"spec":{"ttlSecondsAfterFinished":1}}}}}}`,
			warn: `is "false", so tandem left spec.jobTemplate.spec.template.spec.ttlSecondsAfterFinished where it is`},
		{name: "a bad opt-out value is refused",
			doc: `{"apiVersion":"batch/v1","kind":"Job","metadata":{"annotations":{"tandem.dev/defaults":"nope"}},"spec":{"template":{"spec":{"ttlSecondsAfterFinished":100}}}}`,
			err: `annotation tandem.dev/defaults: "nope" is neither`},
		{name: "a value that is not a number of seconds is refused",
			doc: `{"apiVersion":"batch/v1","kind":"Job","spec":{"template":{"spec":{"ttlSecondsAfterFinished":"100"}}}}`,
			err: `spec.template.spec.ttlSecondsAfterFinished is "100", not a number of seconds`},
		{name: "a negative value is refused",
			doc: `{"apiVersion":"batch/v1","kind":"Job","spec":{"template":{"spec":{"ttlSecondsAfterFinished":-1}}}}`,
			err: "is -1, not a number of seconds"},
		{name: "nothing misplaced: nothing to do",
			doc: `{"apiVersion":"batch/v1","kind":"Job","spec":{"ttlSecondsAfterFinished":100,"template":{"spec":{}}}}`},
		{name: "a Pod may carry anything: not ours",
			doc: `{"apiVersion":"v1","kind":"Pod","spec":{"ttlSecondsAfterFinished":100}}`},
		{name: "a Job of another group: not ours",
			doc: `{"apiVersion":"example.com/v1","kind":"Job","spec":{"template":{"spec":{"ttlSecondsAfterFinished":100}}}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, ops, warnings, err := MoveMisplacedTTL([]byte(tc.doc), tc.prefix)
			if tc.err != "" {
				var refusal *Refusal
				if !errors.As(err, &refusal) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v, want a *Refusal containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := opStrings(ops); !slices.Equal(got, tc.want) {
				t.Errorf("operations:\n got %q\nwant %q", got, tc.want)
			}
			if tc.warn == "" && len(warnings) > 0 || tc.warn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.warn)) {
				t.Errorf("warnings: got %q, want one containing %q", warnings, tc.warn)
			}
			if tc.prefix == "" && !bytes.Equal(applyOps(t, []byte(tc.doc), ops), doc) {
				t.Errorf("the document returned is not the operations applied:\n%s\n%s", doc, applyOps(t, []byte(tc.doc), ops))
			}
			if len(ops) == 0 && string(doc) != tc.doc {
				t.Errorf("nothing to do, but the document changed: %s", doc)
			}
		})
	}
}

// TestUnknownFieldsSurvive runs a Job that carries fields tandem's k8s.io/api does not know, at the Job spec, the pod
// spec and a container, through the webhook path: decode, plan on the typed object, patch the original JSON.
func TestUnknownFieldsSurvive(t *testing.T) {
	raw := []byte(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","futureMeta":"m"},
	 "spec":{"backoffLimit":6,"futureJobField":{"a":[1,2]},
	  "template":{"spec":{"restartPolicy":"Always","futurePodField":true,
	   "containers":[{"name":"main","image":"busybox","restartPolicy":"Never","futureContainerField":"c"}]}}}}`)
	for _, prefix := range []string{"", "/items/0"} {
		doc := raw
		if prefix != "" {
			doc = []byte(`{"apiVersion":"v1","kind":"List","items":[` + string(raw) + `]}`)
		}
		var j batchv1.Job
		if err := json.Unmarshal(raw, &j); err != nil {
			t.Fatal(err)
		}
		plan, err := New(config.Default()).DefaultJob(&j)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := json.Unmarshal(applyOps(t, doc, plan.Patch(prefix)), &out); err != nil {
			t.Fatal(err)
		}
		if prefix != "" {
			out = out["items"].([]any)[0].(map[string]any)
		}
		spec := out["spec"].(map[string]any)
		pod := spec["template"].(map[string]any)["spec"].(map[string]any)
		container := pod["containers"].([]any)[0].(map[string]any)
		for _, c := range []struct {
			where string
			got   any
			want  any
		}{
			{"metadata.futureMeta", out["metadata"].(map[string]any)["futureMeta"], "m"},
			{"spec.futureJobField", spec["futureJobField"], map[string]any{"a": []any{1.0, 2.0}}},
			{"spec.template.spec.futurePodField", pod["futurePodField"], true},
			{"spec.template.spec.containers[0].futureContainerField", container["futureContainerField"], "c"},
			{"spec.backoffLimit", spec["backoffLimit"], 3.0},
			{"spec.ttlSecondsAfterFinished", spec["ttlSecondsAfterFinished"], 100.0},
			{"spec.template.spec.restartPolicy", pod["restartPolicy"], "Never"},
			{"spec.template.spec.containers[0].restartPolicy", container["restartPolicy"], nil},
		} {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("prefix %q: %s is %v, want %v", prefix, c.where, c.got, c.want)
			}
		}
	}
}

// TestSeeds runs the original example Job and CronJob, verbatim in testdata, through the offline path (golden
// file X.yaml.defaulted, with the warnings `tandem inject` prints as its header) and through the webhook path (the
// typed object as the API server defaults it), and checks that both paths store the same object and that running
// either again changes nothing. Run with -update to rewrite the golden files.
func TestSeeds(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	d := New(config.Default())
	for _, input := range inputs {
		t.Run(filepath.Base(input), func(t *testing.T) {
			in, err := os.ReadFile(input)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := yaml.YAMLToJSON(in)
			if err != nil {
				t.Fatal(err)
			}

			// Offline, as `tandem inject` runs.
			ops, warnings, err := d.PatchDocument(raw, "")
			if err != nil {
				t.Fatal(err)
			}
			offline := applyOps(t, raw, ops)
			out, err := yaml.JSONToYAML(offline)
			if err != nil {
				t.Fatal(err)
			}
			var golden bytes.Buffer
			golden.WriteString("# Warnings:\n")
			for _, w := range warnings {
				golden.WriteString("# - " + w + "\n")
			}
			golden.Write(out)
			goldenPath := input + ".defaulted"
			if *update {
				if err := os.WriteFile(goldenPath, golden.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(golden.Bytes(), want) {
				t.Errorf("%s is stale (run go test -update and review the diff); got:\n%s", goldenPath, golden.Bytes())
			}
			again, warnings, err := d.PatchDocument(offline, "")
			if err != nil || len(again) > 0 || len(warnings) > 0 {
				t.Errorf("offline output not final: ops %q, warnings %q, error %v", opStrings(again), warnings, err)
			}

			// Through the webhook, and the two paths compared once the API server has defaulted both.
			var head typeMeta
			if err := json.Unmarshal(raw, &head); err != nil {
				t.Fatal(err)
			}
			switch head.kind() {
			case "Job":
				webhook, stored := seedThroughWebhook[*batchv1.Job](t, d, raw, offline)
				if !reflect.DeepEqual(webhook, stored) {
					t.Errorf("the webhook stores\n%+v\nbut tandem inject then the API server store\n%+v", webhook, stored)
				}
			case "CronJob":
				webhook, stored := seedThroughWebhook[*batchv1.CronJob](t, d, raw, offline)
				// The webhook cannot see the misplaced ttlSecondsAfterFinished (the typed object drops it), so it
				// sets the configured one, which happens to be the seed's 100, and says so in its annotation.
				const ttl = "spec.jobTemplate.spec.ttlSecondsAfterFinished"
				paths := strings.Split(webhook.Annotations[annotations.Defaulted], ",")
				if !slices.Contains(paths, ttl) {
					t.Errorf("webhook annotation %q does not name %s", paths, ttl)
				}
				webhook.Annotations[annotations.Defaulted] = strings.Join(slices.DeleteFunc(paths, func(p string) bool { return p == ttl }), ",")
				if !reflect.DeepEqual(webhook, stored) {
					t.Errorf("the webhook stores\n%+v\nbut tandem inject then the API server store\n%+v", webhook, stored)
				}
			default:
				t.Fatalf("%s is not a Job or a CronJob", input)
			}
		})
	}
}

// seedThroughWebhook returns what the webhook path stores for the user's document raw, and what the API server
// stores for the offline path's output.
func seedThroughWebhook[T *batchv1.Job | *batchv1.CronJob](t *testing.T, d *Defaulter, raw, offline []byte) (webhook, stored T) {
	t.Helper()
	decode := func(b []byte) T {
		obj := fresh[T]()
		if err := json.Unmarshal(b, obj); err != nil {
			t.Fatal(err)
		}
		return asServed(obj)
	}
	sent := decode(raw)
	plan, err := defaultAny(d, sent)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	patched := applyOps(t, doc, plan.Patch(""))
	webhook = decode(patched)
	replan, err := defaultAny(d, webhook)
	if err != nil || len(replan.Patch("")) > 0 {
		t.Errorf("webhook output not final: %v, %v", replan, err)
	}
	return webhook, decode(offline)
}

// TestPatchDocumentInList checks that the move and the defaults compose inside a List: both sets of operations,
// at the item's prefix, apply in one patch to the whole document.
func TestPatchDocumentInList(t *testing.T) {
	item := `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":{"spec":{"ttlSecondsAfterFinished":7,"containers":[{"name":"main","image":"busybox"}]}}}}`
	list := []byte(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap"},` + item + `]}`)
	d := New(config.Default())
	ops, warnings, err := d.PatchDocument([]byte(item), "/items/1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"remove /items/1/spec/template/spec/ttlSecondsAfterFinished",
		"add /items/1/spec/ttlSecondsAfterFinished 7",
		"add /items/1/spec/backoffLimit 3",
		`add /items/1/spec/template/spec/restartPolicy "Never"`,
		`add /items/1/metadata/annotations {"tandem.dev/defaulted":"spec.backoffLimit,spec.template.spec.restartPolicy"}`,
	}
	if got := opStrings(ops); !slices.Equal(got, want) {
		t.Errorf("operations:\n got %q\nwant %q", got, want)
	}
	if len(warnings) != 3 {
		t.Errorf("want the move, the restartPolicy repair and the fields set; got %q", warnings)
	}
	var out struct{ Items []batchv1.Job }
	if err := json.Unmarshal(applyOps(t, list, ops), &out); err != nil {
		t.Fatal(err)
	}
	if got := out.Items[1].Spec.TTLSecondsAfterFinished; got == nil || *got != 7 {
		t.Errorf("ttlSecondsAfterFinished %v, want the user's 7", got)
	}

	ops, warnings, err = d.PatchDocument([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","spec":{}}`), "")
	if ops != nil || warnings != nil || err != nil {
		t.Errorf("a Deployment is not ours: got %q, %q, %v", opStrings(ops), warnings, err)
	}
}
