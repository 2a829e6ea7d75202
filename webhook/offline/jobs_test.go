package offline

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/tandem-dev/tandem/internal/patch"
	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/jobdefaults"
)

func TestMoveMisplacedTTL(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []string
		warn string
		err  string
	}{
		{name: "Job: moved from the pod spec to the Job spec",
			doc:  `{"apiVersion":"batch/v1","kind":"Job","spec":{"template":{"spec":{"ttlSecondsAfterFinished":100,"containers":[]}}}}`,
			want: []string{"remove /spec/template/spec/ttlSecondsAfterFinished", "add /spec/ttlSecondsAfterFinished 100"},
			warn: "tandem moved spec.template.spec.ttlSecondsAfterFinished (100) to spec.ttlSecondsAfterFinished: a pod spec has no such field; the Job spec that owns it has"},
		{name: "CronJob: moved to the job template's Job spec",
			doc:  `{"apiVersion":"batch/v1","kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"spec":{"ttlSecondsAfterFinished":0}}}}}}`,
			want: []string{"remove /spec/jobTemplate/spec/template/spec/ttlSecondsAfterFinished", "add /spec/jobTemplate/spec/ttlSecondsAfterFinished 0"},
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
			var obj map[string]any
			if err := utiljson.Unmarshal([]byte(tc.doc), &obj); err != nil {
				t.Fatal(err)
			}
			kind := batchKind(obj["apiVersion"].(string), obj["kind"].(string))
			if kind == "" { // not a Job or CronJob: tandem inject leaves the field where it is
				var out bytes.Buffer
				res, err := Inject("job.yaml", strings.NewReader(tc.doc), &out, config.Default())
				if err != nil || res.Changed != 0 || out.String() != tc.doc {
					t.Errorf("changed (%v, %d changed): %s", err, res.Changed, out.String())
				}
				return
			}
			ops, warnings, err := moveMisplacedTTL(obj, kind)
			if tc.err != "" {
				var refusal *jobdefaults.Refusal
				if !errors.As(err, &refusal) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v, want a *Refusal containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := patch.Strings(ops); !slices.Equal(got, tc.want) {
				t.Errorf("operations:\n got %q\nwant %q", got, tc.want)
			}
			if tc.warn == "" && len(warnings) > 0 || tc.warn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.warn)) {
				t.Errorf("warnings: got %q, want one containing %q", warnings, tc.warn)
			}
			var original any
			if err := utiljson.Unmarshal([]byte(tc.doc), &original); err != nil {
				t.Fatal(err)
			}
			applied, err := patch.Apply(original, ops)
			if err != nil || !reflect.DeepEqual(applied, any(obj)) {
				t.Errorf("the object is not the operations applied (%v):\n%v\n%v", err, obj, applied)
			}
		})
	}
}
