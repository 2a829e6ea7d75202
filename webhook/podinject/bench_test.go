package podinject_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tandem-dev/tandem/internal/patch"
	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/podinject"
	"github.com/tandem-dev/tandem/webhook/podinject/injecttest"
)

func decodePod(tb testing.TB, raw []byte) *corev1.Pod {
	tb.Helper()
	var pod corev1.Pod
	if err := json.Unmarshal(raw, &pod); err != nil {
		tb.Fatal(err)
	}
	return &pod
}

// BenchmarkInjectPod measures what the injector adds to one admission of the ~5 KB PostgreSQL Pod: the plan,
// and its patch as the JSON the API server receives. Decoding the Pod is the handler's, measured with the rest of
// the request by the server package's BenchmarkPodHandler.
func BenchmarkInjectPod(b *testing.B) {
	pod := decodePod(b, injecttest.PostgresPod())
	in := podinject.New(config.Default())
	b.ReportAllocs()
	for b.Loop() {
		plan, err := in.Plan(&pod.ObjectMeta, &pod.Spec)
		if err != nil || plan.Outcome != podinject.Injected {
			b.Fatalf("outcome %v, error %v", plan, err)
		}
		if _, err := patch.Marshal(plan.Patch("", &pod.ObjectMeta, &pod.Spec)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInjectPodWithoutAnnotations is BenchmarkInjectPod for the same Pod without tandem's annotations: the
// injector's part of answering a pod that did not opt in.
func BenchmarkInjectPodWithoutAnnotations(b *testing.B) {
	pod := decodePod(b, injecttest.UnannotatedPod())
	in := podinject.New(config.Default())
	b.ReportAllocs()
	for b.Loop() {
		plan, err := in.Plan(&pod.ObjectMeta, &pod.Spec)
		if err != nil || plan.Outcome != podinject.Skipped {
			b.Fatalf("outcome %v, error %v", plan, err)
		}
		if ops := plan.Patch("", &pod.ObjectMeta, &pod.Spec); ops != nil {
			b.Fatalf("patch %v", ops)
		}
	}
}

// TestMarshalIsJSONMarshal checks that patch.Marshal, which the webhook answers with, writes the bytes
// json.Marshal writes for the same operations: the benchmark's pod, and the operations with a nil value.
func TestMarshalIsJSONMarshal(t *testing.T) {
	pod := decodePod(t, injecttest.PostgresPod())
	plan, err := podinject.New(config.Default()).Plan(&pod.ObjectMeta, &pod.Spec)
	if err != nil {
		t.Fatal(err)
	}
	for name, ops := range map[string][]jsonpatch.Operation{
		"pod":       plan.Patch("", &pod.ObjectMeta, &pod.Spec),
		"new lists": plan.Patch("", &metav1.ObjectMeta{}, &corev1.PodSpec{}),
		"nil values": {jsonpatch.NewOperation("add", "/a", nil), jsonpatch.NewOperation("replace", "/b", nil),
			jsonpatch.NewOperation("remove", "/c~1d", nil), jsonpatch.NewOperation("add", "/e", (*int32)(nil))},
		"none":    nil,
		"escaped": {jsonpatch.NewOperation("add", "/metadata/annotations/a<b>&c", "<script>&\u2028")},
	} {
		want, err := json.Marshal(ops)
		if err != nil {
			t.Fatal(err)
		}
		got, err := patch.Marshal(ops)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: patch.Marshal = %s, %v\njson.Marshal = %s", name, got, err, want)
		}
	}
}
