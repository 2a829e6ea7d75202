package jobdefaults

import (
	"encoding/json"
	"fmt"
	"github.com/tandem-dev/tandem/internal/patch"
	"slices"
	"strings"
	"testing"

	evanphx "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/config"
)

func ptr[T any](v T) *T { return &v }

// only returns a configuration with every Job and CronJob default off except what set turns on, so that a case
// shows the operations of one rule.
func only(set func(*config.Config)) *config.Config {
	c := &config.Config{}
	set(c)
	return c
}

var (
	ttl100     = only(func(c *config.Config) { c.Jobs.TTLSecondsAfterFinished = ptr[int32](100) })
	backoff3   = only(func(c *config.Config) { c.Jobs.BackoffLimit = ptr[int32](3) })
	backoff6   = only(func(c *config.Config) { c.Jobs.BackoffLimit = ptr[int32](6) })
	deadline   = only(func(c *config.Config) { c.Jobs.ActiveDeadlineSeconds = ptr[int64](600) })
	never      = only(func(c *config.Config) { c.Jobs.RestartPolicy = ptr(corev1.RestartPolicyNever) })
	onFailure  = only(func(c *config.Config) { c.Jobs.RestartPolicy = ptr(corev1.RestartPolicyOnFailure) })
	successful = only(func(c *config.Config) { c.CronJobs.SuccessfulJobsHistoryLimit = ptr[int32](1) })
	failed2    = only(func(c *config.Config) { c.CronJobs.FailedJobsHistoryLimit = ptr[int32](2) })
	failed1    = only(func(c *config.Config) { c.CronJobs.FailedJobsHistoryLimit = ptr[int32](1) })
	forbid     = only(func(c *config.Config) { c.CronJobs.ConcurrencyPolicy = ptr(batchv1.ForbidConcurrent) })
	starting   = only(func(c *config.Config) { c.CronJobs.StartingDeadlineSeconds = ptr[int64](200) })
	templated  = only(func(c *config.Config) {
		c.Jobs.TTLSecondsAfterFinished = ptr[int32](100)
		c.Jobs.BackoffLimit = ptr[int32](3)
		c.Jobs.RestartPolicy = ptr(corev1.RestartPolicyNever)
	})
)

// job returns a valid Job as a user writes it, changed by mods.
func job(mods ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: "j"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
		}}},
	}
	for _, m := range mods {
		m(j)
	}
	return j
}

// cronJob returns a valid CronJob as a user writes it, changed by mods.
func cronJob(mods ...func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Name: "cj"},
		Spec:       batchv1.CronJobSpec{Schedule: "0 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: job().Spec}},
	}
	for _, m := range mods {
		m(cj)
	}
	return cj
}

func optOut(value string) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.Annotations = map[string]string{annotations.Defaults: value} }
}

func podRestart(rp corev1.RestartPolicy) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = rp }
}

func containerRestart(rps ...corev1.ContainerRestartPolicy) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Spec.Template.Spec.Containers = nil
		for i, rp := range rps {
			c := corev1.Container{Name: fmt.Sprintf("c%d", i), Image: "busybox"}
			if rp != "" {
				c.RestartPolicy = ptr(rp)
			}
			j.Spec.Template.Spec.Containers = append(j.Spec.Template.Spec.Containers, c)
		}
	}
}

// applyOps applies ops to doc with the JSON patch library the API server uses.
func applyOps(t testing.TB, doc []byte, ops []jsonpatch.Operation) []byte {
	t.Helper()
	if len(ops) == 0 {
		return doc
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := evanphx.DecodePatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply(doc)
	if err != nil {
		t.Fatalf("applying %s: %v", raw, err)
	}
	return out
}

const annotationsOp = "add /metadata/annotations "

func defaultedOp(paths string) string {
	return annotationsOp + `{"tandem.dev/defaulted":"` + paths + `"}`
}

type testCase[T any] struct {
	name string
	cfg  *config.Config
	keep bool // Defaulter.KeepContainerRestartPolicy
	obj  T
	want []string
	// warn are substrings the warnings must contain, in order, one per warning.
	warn    []string
	outcome Outcome
}

// run checks one case: the operations, the warnings, and that the defaulter changes nothing on its own output.
func run[T *batchv1.Job | *batchv1.CronJob](t *testing.T, tc testCase[T]) {
	t.Helper()
	d := New(tc.cfg)
	d.KeepContainerRestartPolicy = tc.keep
	plan, err := defaultAny(d, tc.obj)
	if err != nil {
		t.Fatal(err)
	}
	got := patch.Strings(plan.Patch(""))
	if !slices.Equal(got, tc.want) {
		t.Errorf("operations:\n got %q\nwant %q", got, tc.want)
	}
	if len(plan.Warnings) != len(tc.warn) {
		t.Errorf("warnings: got %q, want %d containing %q", plan.Warnings, len(tc.warn), tc.warn)
	} else {
		for i, w := range tc.warn {
			if !strings.Contains(plan.Warnings[i], w) {
				t.Errorf("warning %d: got %q, want it to contain %q", i, plan.Warnings[i], w)
			}
		}
	}
	if tc.outcome != "" && plan.Outcome != tc.outcome {
		t.Errorf("outcome: got %s, want %s", plan.Outcome, tc.outcome)
	}
	if (plan.Outcome == Defaulted) != (len(plan.Fields) > 0) {
		t.Errorf("outcome %s with fields %q", plan.Outcome, plan.Fields)
	}

	doc, err := json.Marshal(tc.obj)
	if err != nil {
		t.Fatal(err)
	}
	again := fresh[T]()
	if err := json.Unmarshal(applyOps(t, doc, plan.Patch("")), again); err != nil {
		t.Fatal(err)
	}
	replan, err := defaultAny(d, again)
	if err != nil {
		t.Fatal(err)
	}
	if ops := replan.Patch(""); len(ops) > 0 {
		t.Errorf("not idempotent: a second run on the patched object plans %q", patch.Strings(ops))
	}
}

// fresh returns a new empty object of type T.
func fresh[T *batchv1.Job | *batchv1.CronJob]() T {
	var zero T
	switch any(zero).(type) {
	case *batchv1.Job:
		return any(&batchv1.Job{}).(T)
	default:
		return any(&batchv1.CronJob{}).(T)
	}
}

func defaultAny[T *batchv1.Job | *batchv1.CronJob](d *Defaulter, obj T) (*Plan, error) {
	switch o := any(obj).(type) {
	case *batchv1.Job:
		return d.DefaultJob(o)
	case *batchv1.CronJob:
		return d.DefaultCronJob(o)
	}
	panic("unreachable")
}
