package jobdefaults

import (
	"encoding/json"
	"reflect"
	"testing"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/tandem-dev/tandem/webhook/config"
)

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
