package jobdefaults

import (
	"errors"
	"math"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/config"

	"github.com/tandem-dev/tandem/webhook/jobdefaults/jobtest"
)

func TestJobFields(t *testing.T) {
	cases := []testCase[*batchv1.Job]{
		// ttlSecondsAfterFinished: no in-tree default.
		{name: "ttlSecondsAfterFinished absent is set", cfg: ttl100, obj: job(),
			want: []string{"add /spec/ttlSecondsAfterFinished 100", defaultedOp("spec.ttlSecondsAfterFinished")},
			warn: []string{"tandem set spec.ttlSecondsAfterFinished=100;"}, outcome: Defaulted},
		{name: "ttlSecondsAfterFinished absent is set on a Job as the API server sends it", cfg: ttl100, obj: jobtest.AsServed(job()),
			want: []string{"add /spec/ttlSecondsAfterFinished 100", defaultedOp("spec.ttlSecondsAfterFinished")},
			warn: []string{"tandem set spec.ttlSecondsAfterFinished=100;"}},
		{name: "explicit ttlSecondsAfterFinished is kept", cfg: ttl100,
			obj: job(func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr[int32](30) }), outcome: Unchanged},
		{name: "ttlSecondsAfterFinished 0 is a value, kept", cfg: ttl100,
			obj: job(func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr[int32](0) })},
		{name: "opt-out leaves ttlSecondsAfterFinished absent", cfg: ttl100, obj: job(optOut("false")), outcome: OptedOut},
		{name: `"true" opts in like no annotation`, cfg: ttl100, obj: job(optOut("true")),
			want: []string{"add /spec/ttlSecondsAfterFinished 100", "add /metadata/annotations/tandem.dev~1defaulted \"spec.ttlSecondsAfterFinished\""},
			warn: []string{"spec.ttlSecondsAfterFinished=100"}},
		{name: "ttlSecondsAfterFinished off in the configuration is not set", cfg: &config.Config{}, obj: job()},

		// backoffLimit: in-tree default 6.
		{name: "backoffLimit absent is set", cfg: backoff3, obj: job(),
			want: []string{"add /spec/backoffLimit 3", defaultedOp("spec.backoffLimit")},
			warn: []string{"tandem set spec.backoffLimit=3;"}},
		{name: "backoffLimit 6, the in-tree default, is replaced", cfg: backoff3, obj: jobtest.AsServed(job()),
			want: []string{"replace /spec/backoffLimit 3", defaultedOp("spec.backoffLimit")},
			warn: []string{"tandem set spec.backoffLimit=3 (was 6, the API server's default);"}},
		{name: "explicit backoffLimit other than 6 is kept", cfg: backoff3,
			obj: jobtest.AsServed(job(func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr[int32](4) }))},
		{name: "explicit backoffLimit 0 is kept", cfg: backoff3,
			obj: job(func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr[int32](0) })},
		{name: "backoffLimit configured as 6 leaves the in-tree 6 alone", cfg: backoff6, obj: jobtest.AsServed(job())},
		{name: "backoffLimit configured as 6 leaves it absent, for the API server to set", cfg: backoff6, obj: job()},
		{name: "backoffLimitPerIndex leaves an absent backoffLimit alone", cfg: backoff3,
			obj: job(func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = ptr[int32](1) })},
		{name: "backoffLimitPerIndex leaves the in-tree MaxInt32 alone", cfg: backoff3,
			obj: jobtest.AsServed(job(func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = ptr[int32](1) }))},
		{name: "opt-out leaves backoffLimit 6", cfg: backoff3, obj: jobtest.AsServed(job(optOut("false"))), outcome: OptedOut},

		// activeDeadlineSeconds: no in-tree default.
		{name: "activeDeadlineSeconds absent is set", cfg: deadline, obj: jobtest.AsServed(job()),
			want: []string{"add /spec/activeDeadlineSeconds 600", defaultedOp("spec.activeDeadlineSeconds")},
			warn: []string{"tandem set spec.activeDeadlineSeconds=600;"}},
		{name: "explicit activeDeadlineSeconds is kept", cfg: deadline,
			obj: job(func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptr[int64](30) })},
		{name: "opt-out leaves activeDeadlineSeconds absent", cfg: deadline, obj: job(optOut("false"))},

		// Everything at once, and the annotation.
		{name: "built-in configuration on a bare Job as the API server sends it", cfg: config.Default(),
			obj: jobtest.AsServed(job(podRestart(""))),
			want: []string{
				"add /spec/ttlSecondsAfterFinished 100",
				"replace /spec/backoffLimit 3",
				"replace /spec/template/spec/restartPolicy \"Never\"",
				defaultedOp("spec.ttlSecondsAfterFinished,spec.backoffLimit,spec.template.spec.restartPolicy"),
			},
			warn: []string{
				"spec.template.spec.restartPolicy is Always (the API server's default when it is left out), which a Job rejects: tandem set it to Never, the configured jobs.restartPolicy",
				`tandem set spec.ttlSecondsAfterFinished=100, spec.backoffLimit=3 (was 6, the API server's default), spec.template.spec.restartPolicy=Never; to keep the object as written, annotate it tandem.dev/defaults: "false"`,
			}},
		{name: "tandem.dev/defaulted already there is merged, not replaced", cfg: config.Default(),
			obj: jobtest.AsServed(job(func(j *batchv1.Job) {
				j.Annotations = map[string]string{annotations.Defaulted: "spec.backoffLimit"}
				j.Spec.BackoffLimit = ptr[int32](3)
			})),
			want: []string{"add /spec/ttlSecondsAfterFinished 100", `add /metadata/annotations/tandem.dev~1defaulted "spec.backoffLimit,spec.ttlSecondsAfterFinished"`},
			warn: []string{"tandem set spec.ttlSecondsAfterFinished=100;"}},
		{name: "other annotations are kept: tandem.dev/defaulted is added beside them", cfg: ttl100,
			obj:  job(func(j *batchv1.Job) { j.Annotations = map[string]string{"team": "data"} }),
			want: []string{"add /spec/ttlSecondsAfterFinished 100", `add /metadata/annotations/tandem.dev~1defaulted "spec.ttlSecondsAfterFinished"`},
			warn: []string{"spec.ttlSecondsAfterFinished=100"}},
		{name: "a Job without containers is left to the API server's validation", cfg: config.Default(),
			obj: job(func(j *batchv1.Job) { j.Spec.Template.Spec.Containers = nil })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { run(t, tc) })
	}
}

func TestRestartPolicy(t *testing.T) {
	const repairNever = "replace /spec/template/spec/restartPolicy \"Never\""
	const fieldsWarning = "tandem set spec.template.spec.restartPolicy="
	cases := []testCase[*batchv1.Job]{
		{name: "Always is replaced by the configured Never", cfg: never, obj: job(podRestart(corev1.RestartPolicyAlways)),
			want: []string{repairNever, defaultedOp("spec.template.spec.restartPolicy")},
			warn: []string{"is Always (the API server's default when it is left out), which a Job rejects: tandem set it to Never, the configured jobs.restartPolicy", fieldsWarning + "Never"}},
		{name: "absent (offline) is set to the configured Never", cfg: never, obj: job(podRestart("")),
			want: []string{"add /spec/template/spec/restartPolicy \"Never\"", defaultedOp("spec.template.spec.restartPolicy")},
			warn: []string{"spec.template.spec.restartPolicy is not set, and the API server's default, Always, is rejected in a Job: tandem set it to Never", fieldsWarning + "Never"}},
		{name: "configured OnFailure replaces Always", cfg: onFailure, obj: jobtest.AsServed(job(podRestart(""))),
			want: []string{"replace /spec/template/spec/restartPolicy \"OnFailure\"", defaultedOp("spec.template.spec.restartPolicy")},
			warn: []string{"tandem set it to OnFailure", fieldsWarning + "OnFailure"}},
		{name: "OnFailure is kept", cfg: never, obj: job(podRestart(corev1.RestartPolicyOnFailure))},
		{name: "Never is kept", cfg: onFailure, obj: job(podRestart(corev1.RestartPolicyNever))},
		{name: "an unknown value is left to the API server, whose error lists the valid ones", cfg: never, obj: job(podRestart("Sometimes"))},
		{name: "container-level Never wins over the configured OnFailure and leaves the container", cfg: onFailure,
			obj:  jobtest.AsServed(job(podRestart(""), containerRestart(corev1.ContainerRestartPolicyNever))),
			want: []string{repairNever, "remove /spec/template/spec/containers/0/restartPolicy", defaultedOp("spec.template.spec.restartPolicy")},
			warn: []string{
				`tandem set it to Never, the restartPolicy written on container "c0"`,
				`tandem removed the restartPolicy of container "c0" (spec.template.spec.containers[0].restartPolicy)`,
				fieldsWarning + "Never"}},
		{name: "container-level OnFailure stays on the container when asked to keep it", cfg: never, keep: true,
			obj:  jobtest.AsServed(job(podRestart(""), containerRestart(corev1.ContainerRestartPolicyOnFailure))),
			want: []string{"replace /spec/template/spec/restartPolicy \"OnFailure\"", defaultedOp("spec.template.spec.restartPolicy")},
			warn: []string{`tandem set it to OnFailure, the restartPolicy written on container "c0"`, fieldsWarning + "OnFailure"}},
		{name: "containers that agree give their value, and each loses its own", cfg: onFailure,
			obj: job(podRestart(""), containerRestart(corev1.ContainerRestartPolicyNever, "", corev1.ContainerRestartPolicyNever)),
			want: []string{"add /spec/template/spec/restartPolicy \"Never\"", "remove /spec/template/spec/containers/0/restartPolicy",
				"remove /spec/template/spec/containers/2/restartPolicy", defaultedOp("spec.template.spec.restartPolicy")},
			warn: []string{`the restartPolicy written on containers "c0", "c2"`, `containers "c0", "c2" (spec.template.spec.containers[0,2].restartPolicy)`, fieldsWarning}},
		{name: "containers that disagree give the configured value", cfg: never,
			obj: job(podRestart(""), containerRestart(corev1.ContainerRestartPolicyOnFailure, corev1.ContainerRestartPolicyNever)),
			want: []string{"add /spec/template/spec/restartPolicy \"Never\"", "remove /spec/template/spec/containers/0/restartPolicy",
				"remove /spec/template/spec/containers/1/restartPolicy", defaultedOp("spec.template.spec.restartPolicy")},
			warn: []string{`containers "c0", "c1" carry different restartPolicy values`, "tandem set it to Never, the configured jobs.restartPolicy", "tandem removed", fieldsWarning}},
		{name: "container-level Always is not a pod value, and stays", cfg: never,
			obj:  jobtest.AsServed(job(podRestart(""), containerRestart(corev1.ContainerRestartPolicyAlways))),
			want: []string{repairNever, defaultedOp("spec.template.spec.restartPolicy")},
			warn: []string{"the configured jobs.restartPolicy", fieldsWarning}},
		{name: "a container with restartPolicyRules keeps the restartPolicy they require", cfg: never,
			obj: jobtest.AsServed(job(podRestart(""), containerRestart(corev1.ContainerRestartPolicyNever), func(j *batchv1.Job) {
				j.Spec.Template.Spec.Containers[0].RestartPolicyRules = []corev1.ContainerRestartRule{{Action: corev1.ContainerRestartRuleActionRestart,
					ExitCodes: &corev1.ContainerRestartRuleOnExitCodes{Operator: corev1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{42}}}}
			})),
			want: []string{repairNever, defaultedOp("spec.template.spec.restartPolicy")},
			warn: []string{`the restartPolicy written on container "c0"`, fieldsWarning}},
		{name: "a podFailurePolicy gets Never over the configured OnFailure", cfg: onFailure,
			obj:  jobtest.AsServed(job(podRestart(""), func(j *batchv1.Job) { j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{} })),
			want: []string{repairNever, defaultedOp("spec.template.spec.restartPolicy")},
			warn: []string{"tandem set it to Never, the only value a Job with a podFailurePolicy accepts", fieldsWarning}},
		{name: "restartPolicy off in the configuration leaves Always, container-level value or not", cfg: ttl100,
			obj:  jobtest.AsServed(job(podRestart(""), containerRestart(corev1.ContainerRestartPolicyNever))),
			want: []string{"add /spec/ttlSecondsAfterFinished 100", defaultedOp("spec.ttlSecondsAfterFinished")},
			warn: []string{"spec.ttlSecondsAfterFinished=100"}},
		{name: "opt-out leaves Always, with a warning that the API server rejects it", cfg: never,
			obj:     jobtest.AsServed(job(podRestart(""), optOut("false"), containerRestart(corev1.ContainerRestartPolicyNever))),
			warn:    []string{`tandem.dev/defaults is "false", so tandem left spec.template.spec.restartPolicy as it is, but it is Always (the API server's default when it is left out), which a Job rejects: set it to Never or OnFailure`},
			outcome: OptedOut},
		{name: "opt-out with a valid restartPolicy has nothing to say", cfg: never, obj: job(optOut("false"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { run(t, tc) })
	}
}

func TestCronJobFields(t *testing.T) {
	cronOptOut := func(v string) func(*batchv1.CronJob) {
		return func(cj *batchv1.CronJob) { cj.Annotations = map[string]string{annotations.Defaults: v} }
	}
	cases := []testCase[*batchv1.CronJob]{
		// successfulJobsHistoryLimit: in-tree default 3.
		{name: "successfulJobsHistoryLimit absent is set", cfg: successful, obj: cronJob(),
			want: []string{"add /spec/successfulJobsHistoryLimit 1", defaultedOp("spec.successfulJobsHistoryLimit")},
			warn: []string{"tandem set spec.successfulJobsHistoryLimit=1;"}},
		{name: "successfulJobsHistoryLimit 3, the in-tree default, is replaced", cfg: successful, obj: jobtest.AsServed(cronJob()),
			want: []string{"replace /spec/successfulJobsHistoryLimit 1", defaultedOp("spec.successfulJobsHistoryLimit")},
			warn: []string{"tandem set spec.successfulJobsHistoryLimit=1 (was 3, the API server's default);"}},
		{name: "explicit successfulJobsHistoryLimit is kept", cfg: successful,
			obj: jobtest.AsServed(cronJob(func(cj *batchv1.CronJob) { cj.Spec.SuccessfulJobsHistoryLimit = ptr[int32](5) }))},
		{name: "opt-out leaves successfulJobsHistoryLimit 3", cfg: successful, obj: jobtest.AsServed(cronJob(cronOptOut("false"))), outcome: OptedOut},

		// failedJobsHistoryLimit: in-tree default 1.
		{name: "failedJobsHistoryLimit absent is set", cfg: failed2, obj: cronJob(),
			want: []string{"add /spec/failedJobsHistoryLimit 2", defaultedOp("spec.failedJobsHistoryLimit")}, warn: []string{"spec.failedJobsHistoryLimit=2"}},
		{name: "failedJobsHistoryLimit 1, the in-tree default, is replaced", cfg: failed2, obj: jobtest.AsServed(cronJob()),
			want: []string{"replace /spec/failedJobsHistoryLimit 2", defaultedOp("spec.failedJobsHistoryLimit")},
			warn: []string{"spec.failedJobsHistoryLimit=2 (was 1, the API server's default)"}},
		{name: "explicit failedJobsHistoryLimit 0 is kept", cfg: failed2,
			obj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.FailedJobsHistoryLimit = ptr[int32](0) })},
		{name: "failedJobsHistoryLimit configured as the in-tree 1 leaves it alone", cfg: failed1, obj: jobtest.AsServed(cronJob())},
		{name: "failedJobsHistoryLimit configured as the in-tree 1 leaves it absent, for the API server to set", cfg: failed1, obj: cronJob()},
		{name: "concurrencyPolicy configured as the in-tree Allow leaves it absent", cfg: only(func(c *config.Config) {
			c.CronJobs.ConcurrencyPolicy = ptr(batchv1.AllowConcurrent)
		}), obj: cronJob()},
		{name: "opt-out leaves failedJobsHistoryLimit absent", cfg: failed2, obj: cronJob(cronOptOut("false"))},

		// concurrencyPolicy: in-tree default Allow.
		{name: "concurrencyPolicy absent is set", cfg: forbid, obj: cronJob(),
			want: []string{`add /spec/concurrencyPolicy "Forbid"`, defaultedOp("spec.concurrencyPolicy")}, warn: []string{"spec.concurrencyPolicy=Forbid"}},
		{name: "concurrencyPolicy Allow, the in-tree default, is replaced", cfg: forbid, obj: jobtest.AsServed(cronJob()),
			want: []string{`replace /spec/concurrencyPolicy "Forbid"`, defaultedOp("spec.concurrencyPolicy")},
			warn: []string{"spec.concurrencyPolicy=Forbid (was Allow, the API server's default)"}},
		{name: "explicit concurrencyPolicy Replace is kept", cfg: forbid,
			obj: jobtest.AsServed(cronJob(func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent }))},
		{name: "opt-out leaves concurrencyPolicy Allow", cfg: forbid, obj: jobtest.AsServed(cronJob(cronOptOut("false")))},

		// startingDeadlineSeconds: no in-tree default.
		{name: "startingDeadlineSeconds absent is set", cfg: starting, obj: jobtest.AsServed(cronJob()),
			want: []string{"add /spec/startingDeadlineSeconds 200", defaultedOp("spec.startingDeadlineSeconds")}, warn: []string{"spec.startingDeadlineSeconds=200"}},
		{name: "explicit startingDeadlineSeconds is kept", cfg: starting,
			obj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptr[int64](30) })},
		{name: "opt-out leaves startingDeadlineSeconds absent", cfg: starting, obj: cronJob(cronOptOut("false"))},

		// The job template gets the jobs defaults; the API server does not default its Job spec.
		{name: "job template gets the jobs defaults", cfg: templated, obj: jobtest.AsServed(cronJob(func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = ""
		})),
			want: []string{
				"add /spec/jobTemplate/spec/ttlSecondsAfterFinished 100",
				"add /spec/jobTemplate/spec/backoffLimit 3",
				`replace /spec/jobTemplate/spec/template/spec/restartPolicy "Never"`,
				defaultedOp("spec.jobTemplate.spec.ttlSecondsAfterFinished,spec.jobTemplate.spec.backoffLimit,spec.jobTemplate.spec.template.spec.restartPolicy"),
			},
			warn: []string{"spec.jobTemplate.spec.template.spec.restartPolicy is Always", "tandem set spec.jobTemplate.spec.ttlSecondsAfterFinished=100, spec.jobTemplate.spec.backoffLimit=3, spec.jobTemplate.spec.template.spec.restartPolicy=Never;"}},
		{name: "job template backoffLimit 6 is replaced like a Job's", cfg: backoff3,
			obj:  cronJob(func(cj *batchv1.CronJob) { cj.Spec.JobTemplate.Spec.BackoffLimit = ptr[int32](6) }),
			want: []string{"replace /spec/jobTemplate/spec/backoffLimit 3", defaultedOp("spec.jobTemplate.spec.backoffLimit")}, warn: []string{"(was 6"}},
		{name: "job template explicit values are kept", cfg: templated, obj: jobtest.AsServed(cronJob(func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.TTLSecondsAfterFinished = ptr[int32](0)
			cj.Spec.JobTemplate.Spec.BackoffLimit = ptr[int32](1)
			cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}))},
		{name: "job template container-level restartPolicy moves to its pod template", cfg: templated, obj: jobtest.AsServed(cronJob(func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.TTLSecondsAfterFinished = ptr[int32](10)
			cj.Spec.JobTemplate.Spec.BackoffLimit = ptr[int32](1)
			cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = ""
			cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].RestartPolicy = ptr(corev1.ContainerRestartPolicyOnFailure)
		})),
			want: []string{`replace /spec/jobTemplate/spec/template/spec/restartPolicy "OnFailure"`,
				"remove /spec/jobTemplate/spec/template/spec/containers/0/restartPolicy", defaultedOp("spec.jobTemplate.spec.template.spec.restartPolicy")},
			warn: []string{`the restartPolicy written on container "main"`, "(spec.jobTemplate.spec.template.spec.containers[0].restartPolicy)", "restartPolicy=OnFailure"}},
		{name: "job template opt-out leaves the template but defaults the CronJob", cfg: config.Default(), obj: jobtest.AsServed(cronJob(func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Annotations = map[string]string{annotations.Defaults: "false"}
			cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = ""
		})),
			want: []string{"replace /spec/successfulJobsHistoryLimit 1", defaultedOp("spec.successfulJobsHistoryLimit")},
			warn: []string{`tandem.dev/defaults in spec.jobTemplate.metadata is "false", so tandem left spec.jobTemplate.spec.template.spec.restartPolicy as it is`, "spec.successfulJobsHistoryLimit=1"}},
		{name: "CronJob opt-out leaves everything, even a job template that says true", cfg: config.Default(), obj: jobtest.AsServed(cronJob(cronOptOut("false"), func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Annotations = map[string]string{annotations.Defaults: "true"}
		})), outcome: OptedOut},
		{name: "built-in configuration on a bare CronJob as the API server sends it", cfg: config.Default(), obj: jobtest.AsServed(cronJob(func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = ""
		})),
			want: []string{
				"replace /spec/successfulJobsHistoryLimit 1",
				"add /spec/jobTemplate/spec/ttlSecondsAfterFinished 100",
				"add /spec/jobTemplate/spec/backoffLimit 3",
				`replace /spec/jobTemplate/spec/template/spec/restartPolicy "Never"`,
				defaultedOp("spec.successfulJobsHistoryLimit,spec.jobTemplate.spec.ttlSecondsAfterFinished,spec.jobTemplate.spec.backoffLimit,spec.jobTemplate.spec.template.spec.restartPolicy"),
			},
			warn: []string{"restartPolicy is Always", "tandem set spec.successfulJobsHistoryLimit=1 (was 3, the API server's default), spec.jobTemplate.spec.ttlSecondsAfterFinished=100,"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { run(t, tc) })
	}
}

func TestBadDefaultsAnnotation(t *testing.T) {
	d := New(config.Default())
	for _, tc := range []struct {
		name string
		plan func() (*Plan, error)
		want string
	}{
		{name: "Job with a value other than true or false", plan: func() (*Plan, error) { return d.DefaultJob(job(optOut("no"))) },
			want: `tandem cannot apply its defaults to this Job: annotation tandem.dev/defaults: "no" is neither "true" nor "false": set it to "false" to opt out of tandem's defaults, or remove it`},
		{name: "Job with an empty value", plan: func() (*Plan, error) { return d.DefaultJob(job(optOut(""))) },
			want: `annotation tandem.dev/defaults: "" is neither`},
		{name: "CronJob with a capitalised value", plan: func() (*Plan, error) {
			return d.DefaultCronJob(cronJob(func(cj *batchv1.CronJob) { cj.Annotations = map[string]string{annotations.Defaults: "False"} }))
		}, want: `this CronJob: annotation tandem.dev/defaults: "False" is neither`},
		{name: "CronJob job template with a bad value", plan: func() (*Plan, error) {
			return d.DefaultCronJob(cronJob(func(cj *batchv1.CronJob) {
				cj.Spec.JobTemplate.Annotations = map[string]string{annotations.Defaults: "off"}
			}))
		}, want: `annotation tandem.dev/defaults in spec.jobTemplate.metadata: "off" is neither`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := tc.plan()
			var refusal *Refusal
			if !errors.As(err, &refusal) {
				t.Fatalf("got plan %+v, error %v; want a *Refusal", plan, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestBackoffLimitPerIndexDefaultIsMaxInt32(t *testing.T) {
	// Guards the test double asServed against the API server's rule the backoffLimit case relies on.
	if got := *jobtest.AsServed(job(func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = ptr[int32](1) })).Spec.BackoffLimit; got != math.MaxInt32 {
		t.Fatalf("got %d", got)
	}
}
