package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tandem-dev/tandem/webhook/annotations"
)

func job(ns string, mod ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "job-", Namespace: ns},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "work", Image: "busybox", Command: []string{"true"}}},
		}}},
	}
	for _, m := range mod {
		m(j)
	}
	return j
}

// exampleJob is the original example Job: restartPolicy on its container, none on the pod.
func exampleJob(ns string) *batchv1.Job {
	return job(ns, func(j *batchv1.Job) {
		j.Name, j.GenerateName = "data-processing-job", ""
		j.Spec.BackoffLimit = ptr.To[int32](3)
		j.Spec.Template.Spec.RestartPolicy = ""
		j.Spec.Template.Spec.Containers = []corev1.Container{{Name: "data-processor", Image: "data-processor:v1.4",
			Command: []string{"python", "process_data.py"}, RestartPolicy: ptr.To(corev1.ContainerRestartPolicy("Never"))}}
	})
}

func cronJob(ns string, mod ...func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "cron-", Namespace: ns},
		Spec:       batchv1.CronJobSpec{Schedule: "0 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: job(ns).Spec}},
	}
	for _, m := range mod {
		m(cj)
	}
	return cj
}

func int32Of(p *int32) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestJobDefaultsOnObjectsTheAPIServerDefaulted creates Jobs and CronJobs through the API server, which applies its
// own defaults before tandem sees them, and checks what is stored against the README's rules.
func TestJobDefaultsOnObjectsTheAPIServerDefaulted(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, nil)
	ttl, backoff := int32Of(tandemCfg.Jobs.TTLSecondsAfterFinished), int32Of(tandemCfg.Jobs.BackoffLimit)

	jobs := []struct {
		name                 string
		job                  *batchv1.Job
		ttl, backoff, policy any
		defaulted            string // in tandem.dev/defaulted; "" for no annotation
	}{
		{"absent fields get the configured values", job(ns), ttl, backoff, corev1.RestartPolicyNever, "spec.ttlSecondsAfterFinished,spec.backoffLimit"},
		{"values the user wrote are kept", job(ns, func(j *batchv1.Job) {
			j.Spec.TTLSecondsAfterFinished, j.Spec.BackoffLimit = ptr.To[int32](600), ptr.To[int32](5)
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}), int32(600), int32(5), corev1.RestartPolicyOnFailure, ""},
		{"opted out keeps the API server's defaults", job(ns, func(j *batchv1.Job) {
			j.Annotations = map[string]string{annotations.Defaults: "false"}
		}), nil, int32(6), corev1.RestartPolicyNever, ""},
		{"the original example Job is accepted", exampleJob(ns), ttl, int32(3), corev1.RestartPolicyNever, "spec.template.spec.restartPolicy"},
		{"no restartPolicy at all gets the configured one", job(ns, func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "" }),
			ttl, backoff, corev1.RestartPolicyNever, "spec.template.spec.restartPolicy"},
	}
	for _, tt := range jobs {
		t.Run(tt.name, func(t *testing.T) {
			if err := k8s.Create(ctx, tt.job); err != nil {
				t.Fatal(err)
			}
			s := tt.job.Spec
			if got := int32Of(s.TTLSecondsAfterFinished); got != tt.ttl {
				t.Errorf("ttlSecondsAfterFinished = %v, want %v", got, tt.ttl)
			}
			if got := int32Of(s.BackoffLimit); got != tt.backoff {
				t.Errorf("backoffLimit = %v, want %v", got, tt.backoff)
			}
			if s.Template.Spec.RestartPolicy != tt.policy {
				t.Errorf("restartPolicy = %q, want %q", s.Template.Spec.RestartPolicy, tt.policy)
			}
			for _, c := range s.Template.Spec.Containers {
				if c.RestartPolicy != nil {
					t.Errorf("container %s keeps restartPolicy %s", c.Name, *c.RestartPolicy)
				}
			}
			got, ok := tt.job.Annotations[annotations.Defaulted]
			if ok != (tt.defaulted != "") || !strings.Contains(got, tt.defaulted) {
				t.Errorf("%s = %q, want it to say %q", annotations.Defaulted, got, tt.defaulted)
			}
		})
	}

	cronJobs := []struct {
		name                        string
		cj                          *batchv1.CronJob
		successful, failed, backoff any
	}{
		{"absent or API server defaults get the configured values", cronJob(ns),
			int32Of(tandemCfg.CronJobs.SuccessfulJobsHistoryLimit), int32Of(tandemCfg.CronJobs.FailedJobsHistoryLimit), backoff},
		{"values the user wrote are kept", cronJob(ns, func(cj *batchv1.CronJob) {
			cj.Spec.SuccessfulJobsHistoryLimit, cj.Spec.FailedJobsHistoryLimit = ptr.To[int32](5), ptr.To[int32](4)
			cj.Spec.JobTemplate.Spec.BackoffLimit = ptr.To[int32](2)
		}), int32(5), int32(4), int32(2)},
		{"opted out keeps the API server's defaults", cronJob(ns, func(cj *batchv1.CronJob) {
			cj.Annotations = map[string]string{annotations.Defaults: "false"}
		}), int32(3), int32(1), nil},
	}
	for _, tt := range cronJobs {
		t.Run("CronJob: "+tt.name, func(t *testing.T) {
			if err := k8s.Create(ctx, tt.cj); err != nil {
				t.Fatal(err)
			}
			s := tt.cj.Spec
			if a, b, c := int32Of(s.SuccessfulJobsHistoryLimit), int32Of(s.FailedJobsHistoryLimit), int32Of(s.JobTemplate.Spec.BackoffLimit); a != tt.successful || b != tt.failed || c != tt.backoff {
				t.Errorf("history limits %v/%v, job template backoffLimit %v; want %v/%v, %v", a, b, c, tt.successful, tt.failed, tt.backoff)
			}
		})
	}
}

// TestExampleJobIsRefusedWithoutTandem is the control for the repair: where tandem is switched off, the API
// server refuses the original example Job.
func TestExampleJobIsRefusedWithoutTandem(t *testing.T) {
	ns := namespace(t, map[string]string{"tandem.dev/disabled": "true"})
	err := k8s.Create(context.Background(), exampleJob(ns))
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.template.spec.restartPolicy") {
		t.Errorf("err = %v, want the API server's refusal of the pod template's restartPolicy", err)
	}
}

// TestCronJobsJobsCarryTheDefaults lets the real CronJob controller create a Job from a CronJob tandem defaulted.
func TestCronJobsJobsCarryTheDefaults(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, nil)
	cj := cronJob(ns, func(cj *batchv1.CronJob) { cj.Spec.Schedule = "* * * * *" })
	if err := k8s.Create(ctx, cj); err != nil {
		t.Fatal(err)
	}
	var created batchv1.Job
	eventually(t, 90*time.Second, "the CronJob controller to create a Job", func() (bool, error) {
		var list batchv1.JobList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil || len(list.Items) == 0 {
			return false, err
		}
		created = list.Items[0]
		return true, nil
	})
	s := created.Spec
	if int32Of(s.TTLSecondsAfterFinished) != int32Of(tandemCfg.Jobs.TTLSecondsAfterFinished) || int32Of(s.BackoffLimit) != int32Of(tandemCfg.Jobs.BackoffLimit) ||
		s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("the CronJob's Job: ttl %v, backoffLimit %v, restartPolicy %s", int32Of(s.TTLSecondsAfterFinished), int32Of(s.BackoffLimit), s.Template.Spec.RestartPolicy)
	}
}

// TestFinishedJobIsDeletedAfterItsTTL marks a Job's pod Succeeded (no kubelet runs here) and waits for the real
// TTL-after-finished controller to delete the Job after the ttlSecondsAfterFinished tandem set.
func TestFinishedJobIsDeletedAfterItsTTL(t *testing.T) {
	if plane == nil {
		t.Skip("marks a pod Succeeded by hand, which a kubelet would undo; on a cluster TestClusterJobsRunWithTheirDefaults runs Jobs for real")
	}
	ctx := context.Background()
	ns := namespace(t, nil)
	j := job(ns)
	if err := k8s.Create(ctx, j); err != nil {
		t.Fatal(err)
	}
	if j.Spec.TTLSecondsAfterFinished == nil {
		t.Fatal("tandem set no ttlSecondsAfterFinished")
	}
	var pod corev1.Pod
	eventually(t, 60*time.Second, "the Job controller to create a pod", func() (bool, error) {
		var pods corev1.PodList
		if err := k8s.List(ctx, &pods, client.InNamespace(ns)); err != nil || len(pods.Items) == 0 {
			return false, err
		}
		pod = pods.Items[0]
		return true, nil
	})
	now := metav1.Now()
	pod.Status.Phase = corev1.PodSucceeded
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "work", Image: "busybox",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}}}
	if err := k8s.Status().Update(ctx, &pod); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "the TTL controller to delete the finished Job", func() (bool, error) {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(j), &batchv1.Job{})
		return apierrors.IsNotFound(err), err
	})
}

// TestContainerRestartPolicyOnARegularContainer records what this API server does with the field the original
// example Job writes, where tandem is off: with the pod's own restartPolicy set, a regular container's
// restartPolicy is accepted and stored (kube-apiserver 1.35+, ContainerRestartRules on by default). tandem
// removes it anyway once the pod takes its value, so the Job means the same on older API servers, which refuse
// or drop it.
func TestContainerRestartPolicyOnARegularContainer(t *testing.T) {
	ns := namespace(t, map[string]string{"tandem.dev/disabled": "true"})
	j := exampleJob(ns)
	j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	if err := k8s.Create(context.Background(), j); err != nil {
		t.Fatalf("refused: %v", err)
	}
	if rp := j.Spec.Template.Spec.Containers[0].RestartPolicy; rp == nil || *rp != "Never" {
		t.Errorf("stored container restartPolicy = %v", rp)
	}
}
