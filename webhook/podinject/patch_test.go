package podinject_test

import (
	"encoding/json"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"

	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/podinject"
)

// applyPlan plans the pod given as JSON and applies the patch to that same JSON, as the API server does.
func applyPlan(t *testing.T, in *podinject.Injector, raw string) (map[string]any, *podinject.Plan) {
	t.Helper()
	var pod corev1.Pod
	if err := json.Unmarshal([]byte(raw), &pod); err != nil {
		t.Fatal(err)
	}
	plan, err := in.Plan(&pod.ObjectMeta, &pod.Spec)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := json.Marshal(plan.Patch("", &pod.ObjectMeta, &pod.Spec))
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply([]byte(raw))
	if err != nil {
		t.Fatalf("patch %s does not apply: %v", ops, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m, plan
}

func TestPatchKeepsFieldsTheTypesDoNotKnow(t *testing.T) {
	raw := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"tandem.dev/backup":"postgres","tandem.dev/backup-location":"s3://b/p"}},
	  "futureTopLevel":{"a":1},
	  "spec":{"futurePodField":"keep-me","containers":[{"name":"db","image":"postgres","futureContainerField":[1,2]}],
	          "volumes":[{"name":"data","emptyDir":{},"futureVolumeField":true}]}}`
	got, _ := applyPlan(t, podinject.New(testConfig(t)), raw)
	spec := got["spec"].(map[string]any)
	if got["futureTopLevel"] == nil || spec["futurePodField"] != "keep-me" ||
		spec["containers"].([]any)[0].(map[string]any)["futureContainerField"] == nil ||
		spec["volumes"].([]any)[0].(map[string]any)["futureVolumeField"] != true {
		t.Errorf("a field unknown to k8s.io/api was removed: %v", got)
	}
	if n := len(spec["initContainers"].([]any)); n != 1 {
		t.Errorf("initContainers = %d, want the sidecar", n)
	}
}

func TestPatchCreatesMissingLists(t *testing.T) {
	raw := `{"metadata":{"annotations":{"tandem.dev/backup":"postgres","tandem.dev/backup-location":"s3://b/p","tandem.dev/database-secret":"s"}},
	  "spec":{"containers":[{"name":"db","image":"postgres"}]}}`
	got, plan := applyPlan(t, podinject.New(testConfig(t)), raw)
	spec := got["spec"].(map[string]any)
	inits, _ := spec["initContainers"].([]any)
	if !plan.Native || len(inits) != 1 || inits[0].(map[string]any)["restartPolicy"] != "Always" {
		t.Errorf("initContainers = %v", spec["initContainers"])
	}
	if vols, _ := spec["volumes"].([]any); len(vols) != 3 {
		t.Errorf("volumes = %v, want backup-data, the secret and the profile's tandem-tmp", spec["volumes"])
	}
	ann := got["metadata"].(map[string]any)["annotations"].(map[string]any)
	if ann[annotations.Injected] != "postgres" || ann[annotations.Backup] != "postgres" {
		t.Errorf("annotations = %v", ann)
	}
}
