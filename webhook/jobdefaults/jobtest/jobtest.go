// Package jobtest models what the API server does to a Job or CronJob before a mutating webhook sees it, for
// tests that compare tandem's offline path with its webhook path.
package jobtest

import (
	"math"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// The API server's own defaults (k8s.io/kubernetes pkg/apis/batch/v1/defaults.go), stated here independently of
// the defaulter's copy, which TestInTreeDefaultsAgree compares.
const (
	BackoffLimit               int32 = 6
	SuccessfulJobsHistoryLimit int32 = 3
	FailedJobsHistoryLimit     int32 = 1
)

// AsServed applies the API server's own defaults (k8s.io/kubernetes pkg/apis/batch/v1 and core/v1), as the
// webhook receives an object: a Job's spec and pod template, a CronJob's spec and its job template's pod
// template, but not its job template's Job spec. It changes obj and returns it.
func AsServed[T *batchv1.Job | *batchv1.CronJob](obj T) T {
	switch o := any(obj).(type) {
	case *batchv1.Job:
		jobSpec(&o.Spec)
	case *batchv1.CronJob:
		s := &o.Spec
		if s.ConcurrencyPolicy == "" {
			s.ConcurrencyPolicy = batchv1.AllowConcurrent
		}
		if s.Suspend == nil {
			s.Suspend = ptr(false)
		}
		if s.SuccessfulJobsHistoryLimit == nil {
			s.SuccessfulJobsHistoryLimit = ptr(SuccessfulJobsHistoryLimit)
		}
		if s.FailedJobsHistoryLimit == nil {
			s.FailedJobsHistoryLimit = ptr(FailedJobsHistoryLimit)
		}
		if s.JobTemplate.Spec.Template.Spec.RestartPolicy == "" {
			s.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		}
	}
	return obj
}

func jobSpec(s *batchv1.JobSpec) {
	if s.Completions == nil && s.Parallelism == nil {
		s.Completions = ptr[int32](1)
	}
	if s.Parallelism == nil {
		s.Parallelism = ptr[int32](1)
	}
	if s.BackoffLimit == nil {
		s.BackoffLimit = ptr(BackoffLimit)
		if s.BackoffLimitPerIndex != nil {
			s.BackoffLimit = ptr[int32](math.MaxInt32)
		}
	}
	if s.Suspend == nil {
		s.Suspend = ptr(false)
	}
	if s.Template.Spec.RestartPolicy == "" {
		s.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
	}
}

func ptr[T any](v T) *T { return &v }
