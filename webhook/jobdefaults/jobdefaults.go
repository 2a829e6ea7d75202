// Package jobdefaults fills in the Job and CronJob fields that teams forget, from the jobs and cronJobs sections of
// tandem's configuration. It is plain Go on typed objects: the webhook and the offline `tandem inject` both call
// it, and its only output is a Plan and the JSON patch that carries it out.
//
// # Which value wins
//
// The API server applies its own defaults before it calls a mutating webhook, so a Job arrives with
// backoffLimit 6 and a pod template restartPolicy Always even when its author wrote neither, and a CronJob with
// successfulJobsHistoryLimit 3, failedJobsHistoryLimit 1 and concurrencyPolicy Allow (its jobTemplate.spec is
// not defaulted). `tandem inject` sees what the user wrote, with no defaults at all. Both must come out the same,
// so a configured value replaces a field only when the field is absent or holds the API server's own default:
//
//	jobs.ttlSecondsAfterFinished          set when absent (the API server has no default)
//	jobs.backoffLimit                     set when absent or 6, unless the Job sets backoffLimitPerIndex
//	                                      (the API server's default is then MaxInt32, which tandem must not cap)
//	jobs.activeDeadlineSeconds            set when absent (the API server has no default)
//	jobs.restartPolicy                    pod template restartPolicy set when Always or absent (see below)
//	cronJobs.successfulJobsHistoryLimit   set when absent or 3
//	cronJobs.failedJobsHistoryLimit       set when absent or 1
//	cronJobs.concurrencyPolicy            set when absent or Allow
//	cronJobs.startingDeadlineSeconds      set when absent (the API server has no default)
//
// A value that differs from the API server's default is the user's and is never overwritten. The flip side: a
// user who writes exactly the in-tree default (backoffLimit: 6) cannot be told from one who wrote nothing, and
// gets the configured value; to keep 6, opt out. A configured value equal to the API server's default changes
// nothing, even where the field is absent, since the API server sets it then. A configuration key set to null is
// off. The jobs rules apply to a Job's spec and to a CronJob's spec.jobTemplate.spec alike.
//
// # restartPolicy
//
// Always, the API server's default for a pod, is rejected in a Job's pod template. When the template's
// restartPolicy is Always or absent, tandem sets it to jobs.restartPolicy, except that when regular containers
// carry a container-level restartPolicy of Never or OnFailure (as the original example Job does) and agree, the
// pod takes theirs. A Job with a podFailurePolicy accepts only Never, so it gets Never. The container-level field
// is then removed from each such container, unless Defaulter.KeepContainerRestartPolicy is set or the container
// has restartPolicyRules (which require it). Every repair is a warning. jobs.restartPolicy: null switches the
// whole rule off.
//
// # Opting out
//
// tandem.dev/defaults: "false" on a Job or CronJob leaves it exactly as it is, repairs included: "false" means
// tandem does not touch the object, and the API server's own validation then names what is wrong (tandem adds a
// warning when the restartPolicy will be rejected). On a CronJob's spec.jobTemplate.metadata it leaves the job
// template alone but still defaults the CronJob's own fields; and since the CronJob controller copies those
// annotations to every Job it creates, it is also what opts those Jobs out. Any value other than "true" or
// "false" is a *Refusal.
//
// # What the user sees
//
// A plan that sets anything adds the field paths to the annotation tandem.dev/defaulted (merged with the paths
// already there) and carries one warning listing the fields and values set. Running the defaulter again on its
// own output plans nothing: every rule leaves a field that already holds the configured value alone.
package jobdefaults

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/config"
)

// The API server's own defaults (k8s.io/kubernetes pkg/apis/batch/v1/defaults.go), which tandem may replace.
const (
	InTreeBackoffLimit               int32 = 6
	InTreeSuccessfulJobsHistoryLimit int32 = 3
	InTreeFailedJobsHistoryLimit     int32 = 1
	InTreeConcurrencyPolicy                = batchv1.AllowConcurrent
)

// Refusal is a problem with the user's Job or CronJob. The webhook denies the object with its message, which says
// what to change.
type Refusal struct {
	// Kind is Job or CronJob.
	Kind    string
	Problem string
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("tandem cannot apply its defaults to this %s: %s", r.Kind, r.Problem)
}

// Outcome is what tandem did with a Job or CronJob.
type Outcome string

// Outcomes, for logs and metrics.
const (
	// Defaulted: at least one field is set.
	Defaulted Outcome = "defaulted"
	// Unchanged: every field already had a value tandem keeps.
	Unchanged Outcome = "unchanged"
	// OptedOut: the object says tandem.dev/defaults: "false".
	OptedOut Outcome = "opted-out"
)

// Plan is what one Job or CronJob gains. It refers to the object's metadata, so that object must not change
// between planning and Patch.
type Plan struct {
	Outcome Outcome
	// Fields are the paths of the fields set, such as spec.backoffLimit, in the order set.
	Fields []string
	// Warnings are facts the user should know: each repair, and one list of the fields set.
	Warnings []string

	changes []change
	meta    *metav1.ObjectMeta
	// defaulted is the new value of the tandem.dev/defaulted annotation; empty when it stays as it is.
	defaulted string
}

// change is one JSON patch operation, its path relative to the object.
type change struct {
	op, path string
	value    any
}

// Defaulter plans defaults with one configuration.
type Defaulter struct {
	cfg *config.Config
	// KeepContainerRestartPolicy leaves a regular container's restartPolicy in place after the pod template takes
	// its value. By default it is removed, with a warning. What kube-apiserver does with the field on a regular
	// container depends on its ContainerRestartRules feature gate: on (beta, the default since 1.35) it is a valid
	// per-container override, which says nothing more once the pod has the same value; off (1.34's default) it
	// is dropped silently; before 1.34 it is refused ("may not be set for non-init containers"). Removed, the
	// object means the same on every cluster.
	KeepContainerRestartPolicy bool
}

// New returns a Defaulter for cfg.
func New(cfg *config.Config) *Defaulter {
	return &Defaulter{cfg: cfg}
}

// DefaultJob plans the defaults of a Job, as the API server sends it to the webhook or as a user wrote it. A
// *Refusal error means the Job must not be admitted as it is. The Job is not modified.
func (d *Defaulter) DefaultJob(job *batchv1.Job) (*Plan, error) {
	plan := &Plan{Outcome: Unchanged, meta: &job.ObjectMeta}
	out, err := IsOptedOut(job.Annotations, "", "Job")
	if err != nil {
		return nil, err
	}
	if out {
		plan.Outcome = OptedOut
		plan.Warnings = optOutWarnings(nil, &job.Spec, "spec.", annotations.Defaults)
		return plan, nil
	}
	if len(job.Spec.Template.Spec.Containers) == 0 {
		return plan, nil // invalid, and its JSON may lack the parents of the fields: the API server says why
	}
	p := planner{plan: plan}
	d.jobSpec(&p, &job.Spec, "/spec", "spec.")
	p.finish(job.Annotations)
	return plan, nil
}

// DefaultCronJob plans the defaults of a CronJob and of its job template, as the API server sends it to the
// webhook or as a user wrote it. A *Refusal error means the CronJob must not be admitted as it is. The CronJob is
// not modified.
func (d *Defaulter) DefaultCronJob(cj *batchv1.CronJob) (*Plan, error) {
	plan := &Plan{Outcome: Unchanged, meta: &cj.ObjectMeta}
	out, err := IsOptedOut(cj.Annotations, "", "CronJob")
	if err != nil {
		return nil, err
	}
	templateOut, err := IsOptedOut(cj.Spec.JobTemplate.Annotations, " in spec.jobTemplate.metadata", "CronJob")
	if err != nil {
		return nil, err
	}
	tmpl := &cj.Spec.JobTemplate.Spec
	if out {
		plan.Outcome = OptedOut
		plan.Warnings = optOutWarnings(nil, tmpl, "spec.jobTemplate.spec.", annotations.Defaults)
		return plan, nil
	}
	if len(tmpl.Template.Spec.Containers) == 0 {
		return plan, nil
	}
	p := planner{plan: plan}
	c := &d.cfg.CronJobs
	p.replaceInTree("/spec/successfulJobsHistoryLimit", "spec.successfulJobsHistoryLimit",
		cj.Spec.SuccessfulJobsHistoryLimit, InTreeSuccessfulJobsHistoryLimit, c.SuccessfulJobsHistoryLimit)
	p.replaceInTree("/spec/failedJobsHistoryLimit", "spec.failedJobsHistoryLimit",
		cj.Spec.FailedJobsHistoryLimit, InTreeFailedJobsHistoryLimit, c.FailedJobsHistoryLimit)
	if want := c.ConcurrencyPolicy; want != nil && *want != InTreeConcurrencyPolicy &&
		(cj.Spec.ConcurrencyPolicy == "" || cj.Spec.ConcurrencyPolicy == InTreeConcurrencyPolicy) {
		p.set("/spec/concurrencyPolicy", "spec.concurrencyPolicy", cj.Spec.ConcurrencyPolicy != "", *want,
			inTreeNote(cj.Spec.ConcurrencyPolicy != "", cj.Spec.ConcurrencyPolicy))
	}
	setIfAbsent(&p, "/spec/startingDeadlineSeconds", "spec.startingDeadlineSeconds", cj.Spec.StartingDeadlineSeconds, c.StartingDeadlineSeconds)
	if templateOut {
		plan.Warnings = optOutWarnings(plan.Warnings, tmpl, "spec.jobTemplate.spec.", annotations.Defaults+" in spec.jobTemplate.metadata")
	} else {
		d.jobSpec(&p, tmpl, "/spec/jobTemplate/spec", "spec.jobTemplate.spec.")
	}
	p.finish(cj.Annotations)
	return plan, nil
}

// jobSpec plans the jobs defaults of the Job spec at pointer, whose field path is field.
func (d *Defaulter) jobSpec(p *planner, spec *batchv1.JobSpec, pointer, field string) {
	j := &d.cfg.Jobs
	setIfAbsent(p, pointer+"/ttlSecondsAfterFinished", field+"ttlSecondsAfterFinished", spec.TTLSecondsAfterFinished, j.TTLSecondsAfterFinished)
	if spec.BackoffLimitPerIndex == nil {
		p.replaceInTree(pointer+"/backoffLimit", field+"backoffLimit", spec.BackoffLimit, InTreeBackoffLimit, j.BackoffLimit)
	}
	setIfAbsent(p, pointer+"/activeDeadlineSeconds", field+"activeDeadlineSeconds", spec.ActiveDeadlineSeconds, j.ActiveDeadlineSeconds)
	d.restartPolicy(p, spec, pointer, field)
}

// restartPolicy repairs a pod template restartPolicy a Job does not accept.
func (d *Defaulter) restartPolicy(p *planner, spec *batchv1.JobSpec, pointer, field string) {
	pod := &spec.Template.Spec
	if d.cfg.Jobs.RestartPolicy == nil || !invalidForJob(pod.RestartPolicy) {
		return
	}
	value, source := *d.cfg.Jobs.RestartPolicy, "the configured jobs.restartPolicy"

	var from []int // regular containers whose own restartPolicy the pod can take
	for i := range pod.Containers {
		if rp := pod.Containers[i].RestartPolicy; rp != nil && (*rp == corev1.ContainerRestartPolicyNever || *rp == corev1.ContainerRestartPolicyOnFailure) {
			from = append(from, i)
		}
	}
	if len(from) > 0 {
		first := *pod.Containers[from[0]].RestartPolicy
		agree := !slices.ContainsFunc(from, func(i int) bool { return *pod.Containers[i].RestartPolicy != first })
		if agree {
			value, source = corev1.RestartPolicy(first), "the restartPolicy written on "+containerNames(pod, from)
		} else {
			p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf("%s carry different restartPolicy values, so the pod cannot take theirs: tandem used %s",
				containerNames(pod, from), source))
		}
	}
	if spec.PodFailurePolicy != nil && value != corev1.RestartPolicyNever {
		value, source = corev1.RestartPolicyNever, "the only value a Job with a podFailurePolicy accepts"
	}

	path := field + "template.spec.restartPolicy"
	p.set(pointer+"/template/spec/restartPolicy", path, pod.RestartPolicy != "", value, "")
	p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf("%s %s: tandem set it to %s, %s",
		path, describeRestartPolicy(pod.RestartPolicy), value, source))

	if d.KeepContainerRestartPolicy {
		return
	}
	var removed []int
	for _, i := range from {
		if len(pod.Containers[i].RestartPolicyRules) > 0 {
			continue // restartPolicyRules require the container's restartPolicy
		}
		p.plan.changes = append(p.plan.changes, change{op: "remove", path: pointer + "/template/spec/containers/" + strconv.Itoa(i) + "/restartPolicy"})
		removed = append(removed, i)
	}
	if len(removed) > 0 {
		p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf("tandem removed the restartPolicy of %s (%stemplate.spec.containers[%s].restartPolicy): "+
			"a Job's restartPolicy belongs on its pod template, where tandem put it", containerNames(pod, removed), field, joinInts(removed)))
	}
}

// invalidForJob reports whether a Job's pod template restartPolicy needs the repair: Always, the API server's
// default, or absent. Any other invalid value is left to the API server, whose error lists the valid ones.
func invalidForJob(rp corev1.RestartPolicy) bool {
	return rp == corev1.RestartPolicyAlways || rp == ""
}

// describeRestartPolicy says why a restartPolicy invalidForJob is wrong.
func describeRestartPolicy(rp corev1.RestartPolicy) string {
	if rp == "" {
		return "is not set, and the API server's default, Always, is rejected in a Job"
	}
	return "is Always (the API server's default when it is left out), which a Job rejects"
}

// optOutWarnings adds, for an opted-out Job spec, the warning that its restartPolicy will be rejected.
func optOutWarnings(warnings []string, spec *batchv1.JobSpec, field, where string) []string {
	if rp := spec.Template.Spec.RestartPolicy; invalidForJob(rp) && len(spec.Template.Spec.Containers) > 0 {
		warnings = append(warnings, fmt.Sprintf(`%s is "false", so tandem left %stemplate.spec.restartPolicy as it is, but it %s: set it to Never or OnFailure`,
			where, field, describeRestartPolicy(rp)))
	}
	return warnings
}

func containerNames(pod *corev1.PodSpec, indexes []int) string {
	names := make([]string, len(indexes))
	for n, i := range indexes {
		names[n] = strconv.Quote(pod.Containers[i].Name)
	}
	if len(names) == 1 {
		return "container " + names[0]
	}
	return "containers " + strings.Join(names, ", ")
}

func joinInts(is []int) string {
	s := make([]string, len(is))
	for n, i := range is {
		s[n] = strconv.Itoa(i)
	}
	return strings.Join(s, ",")
}

// IsOptedOut reads tandem.dev/defaults from annotations of a Job or CronJob (kind); where says where they are,
// for the *Refusal it returns when the value is neither "true" nor "false".
func IsOptedOut(ann map[string]string, where, kind string) (bool, error) {
	v, ok := ann[annotations.Defaults]
	if !ok {
		return false, nil
	}
	if err := annotations.ValidateBool(v); err != nil {
		return false, &Refusal{Kind: kind, Problem: fmt.Sprintf(`annotation %s%s: %v: set it to "false" to opt out of tandem's defaults, or remove it`,
			annotations.Defaults, where, err)}
	}
	return v == "false", nil
}

// planner collects a plan's changes, and the descriptions of the values set for its warning.
type planner struct {
	plan         *Plan
	descriptions []string
}

// set plans field (at pointer) to value; present says the field is in the object, note explains the old value.
func (p *planner) set(pointer, field string, present bool, value any, note string) {
	op := "add"
	if present {
		op = "replace"
	}
	p.plan.changes = append(p.plan.changes, change{op: op, path: pointer, value: value})
	p.plan.Fields = append(p.plan.Fields, field)
	p.descriptions = append(p.descriptions, fmt.Sprintf("%s=%v%s", field, value, note))
}

// replaceInTree sets the field to want when it is absent or holds the API server's default, inTree. A want equal
// to inTree is nothing to do: the API server sets it when the field is absent, so both paths store the same.
func (p *planner) replaceInTree(pointer, field string, cur *int32, inTree int32, want *int32) {
	if want == nil || *want == inTree || (cur != nil && *cur != inTree) {
		return
	}
	var old int32
	if cur != nil {
		old = *cur
	}
	p.set(pointer, field, cur != nil, *want, inTreeNote(cur != nil, old))
}

func inTreeNote[T any](present bool, old T) string {
	if !present {
		return ""
	}
	return fmt.Sprintf(" (was %v, the API server's default)", old)
}

// setIfAbsent sets a field the API server does not default.
func setIfAbsent[T any](p *planner, pointer, field string, cur, want *T) {
	if want == nil || cur != nil {
		return
	}
	p.set(pointer, field, false, *want, "")
}

// finish sets the outcome, the tandem.dev/defaulted value and the warning listing the fields set.
func (p *planner) finish(ann map[string]string) {
	if len(p.plan.Fields) == 0 {
		return
	}
	p.plan.Outcome = Defaulted
	old := ann[annotations.Defaulted]
	paths := strings.Split(old, ",")
	if old == "" {
		paths = paths[:0]
	}
	n := len(paths)
	for _, f := range p.plan.Fields {
		if !slices.Contains(paths, f) {
			paths = append(paths, f)
		}
	}
	if len(paths) > n {
		p.plan.defaulted = strings.Join(paths, ",")
	}
	p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(`tandem set %s; to keep the object as written, annotate it %s: "false"`,
		strings.Join(p.descriptions, ", "), annotations.Defaults))
}
