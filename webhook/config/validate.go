package config

import (
	"fmt"
	"github.com/tandem-dev/tandem/internal/contract"
	"slices"
	"sort"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tandem-dev/tandem/webhook/annotations"
)

// Validate checks the whole configuration and returns every problem, each naming its key.
func (c *Config) Validate() field.ErrorList {
	var errs field.ErrorList
	if c.DefaultProfile != "" {
		if _, ok := c.Profiles[c.DefaultProfile]; !ok {
			errs = append(errs, field.NotSupported(field.NewPath("defaultProfile"), c.DefaultProfile, c.ProfileNames()))
		}
	}
	for _, name := range c.ProfileNames() {
		errs = append(errs, c.Profiles[name].validate(field.NewPath("profiles").Key(name), name)...)
	}
	errs = append(errs, c.Jobs.validate(field.NewPath("jobs"))...)
	errs = append(errs, c.CronJobs.validate(field.NewPath("cronJobs"))...)
	return errs
}

// ProfileNames returns the profiles' names, sorted.
func (c *Config) ProfileNames() []string {
	names := make([]string, 0, len(c.Profiles))
	for n := range c.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (p *Profile) validate(path *field.Path, name string) field.ErrorList {
	var errs field.ErrorList
	if name == annotations.True || name == "false" {
		errs = append(errs, field.Invalid(path, name, `"true" and "false" are values of tandem.dev/backup, not profile names`))
	} else if err := annotations.ValidateProfileName(name); err != nil {
		errs = append(errs, field.Invalid(path, name, err.Error()))
	}
	for _, msg := range validation.IsDNS1123Label(p.ContainerName) {
		errs = append(errs, field.Invalid(path.Child("containerName"), p.ContainerName, msg))
	}
	switch p.ImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, field.NotSupported(path.Child("imagePullPolicy"), p.ImagePullPolicy,
			[]corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}))
	}
	if _, err := annotations.ParseInterval(p.Interval); err != nil {
		errs = append(errs, field.Invalid(path.Child("interval"), p.Interval, err.Error()))
	}
	if p.BackupLocation != "" {
		if err := annotations.ValidateLocation(p.BackupLocation); err != nil {
			errs = append(errs, field.Invalid(path.Child("backupLocation"), p.BackupLocation, err.Error()))
		}
	}
	if p.Database != "" {
		if err := annotations.ValidateDatabaseName(p.Database); err != nil {
			errs = append(errs, field.Invalid(path.Child("database"), p.Database, err.Error()))
		}
	}
	if p.MetricsPort != 0 {
		for _, msg := range validation.IsValidPortNum(int(p.MetricsPort)) {
			errs = append(errs, field.Invalid(path.Child("metricsPort"), p.MetricsPort, msg))
		}
	}
	for i, e := range p.Env {
		ep := path.Child("env").Index(i).Child("name")
		if e.Name == contract.EnvMetricsBindAddress && p.MetricsPort != 0 {
			errs = append(errs, field.Forbidden(ep, fmt.Sprintf("%s is set by tandem from metricsPort: set one of them", e.Name)))
		}
		for _, msg := range validation.IsEnvVarName(e.Name) {
			errs = append(errs, field.Invalid(ep, e.Name, msg))
		}
		if slices.Contains(contract.InjectedEnv, e.Name) {
			errs = append(errs, field.Forbidden(ep, fmt.Sprintf("%s is set by tandem from the pod's annotations", e.Name)))
		}
	}
	if p.DataSizeLimit != nil && p.DataSizeLimit.Sign() < 0 {
		errs = append(errs, field.Invalid(path.Child("dataSizeLimit"), p.DataSizeLimit.String(), "must not be negative (0 sets no limit)"))
	}
	errs = append(errs, validateResources(path.Child("resources"), p.Resources)...)
	if p.GuaranteedResources != nil {
		gp := path.Child("guaranteedResources")
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := p.GuaranteedResources[name]; !ok {
				errs = append(errs, field.Required(gp.Key(string(name)), "a Guaranteed pod's containers need both cpu and memory"))
			} else if q.Sign() <= 0 {
				errs = append(errs, field.Invalid(gp.Key(string(name)), q.String(), "must be greater than 0"))
			}
		}
	}

	volumes := map[string]bool{}
	for i, v := range p.Volumes {
		vp := path.Child("volumes").Index(i).Child("name")
		for _, msg := range validation.IsDNS1123Label(v.Name) {
			errs = append(errs, field.Invalid(vp, v.Name, msg))
		}
		switch {
		case v.Name == contract.BackupVolume || v.Name == contract.SecretVolume:
			errs = append(errs, field.Forbidden(vp, v.Name+" is tandem's own volume"))
		case volumes[v.Name]:
			errs = append(errs, field.Duplicate(vp, v.Name))
		}
		volumes[v.Name] = true
	}
	for i, m := range p.VolumeMounts {
		mp := path.Child("volumeMounts").Index(i)
		if !volumes[m.Name] && m.Name != contract.BackupVolume {
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		if m.MountPath == contract.BackupMountPath || m.MountPath == contract.SecretMountPath {
			errs = append(errs, field.Forbidden(mp.Child("mountPath"), m.MountPath+" is where tandem mounts its own volume"))
		}
		if m.MountPath == "" || m.MountPath[0] != '/' {
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be an absolute path"))
		}
	}
	return errs
}

func validateResources(path *field.Path, r corev1.ResourceRequirements) field.ErrorList {
	var errs field.ErrorList
	for name, req := range r.Requests {
		if req.Sign() < 0 {
			errs = append(errs, field.Invalid(path.Child("requests").Key(string(name)), req.String(), "must not be negative"))
		}
		if limit, ok := r.Limits[name]; ok && req.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(path.Child("requests").Key(string(name)), req.String(),
				fmt.Sprintf("must not exceed the limit, %s", limit.String())))
		}
	}
	for name, limit := range r.Limits {
		if limit.Sign() < 0 {
			errs = append(errs, field.Invalid(path.Child("limits").Key(string(name)), limit.String(), "must not be negative"))
		}
	}
	return errs
}

func (j *JobDefaults) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonNegative(path.Child("ttlSecondsAfterFinished"), j.TTLSecondsAfterFinished)...)
	errs = append(errs, nonNegative(path.Child("backoffLimit"), j.BackoffLimit)...)
	if j.ActiveDeadlineSeconds != nil && *j.ActiveDeadlineSeconds <= 0 {
		errs = append(errs, field.Invalid(path.Child("activeDeadlineSeconds"), *j.ActiveDeadlineSeconds, "must be greater than 0"))
	}
	if j.RestartPolicy != nil && *j.RestartPolicy != corev1.RestartPolicyNever && *j.RestartPolicy != corev1.RestartPolicyOnFailure {
		errs = append(errs, field.NotSupported(path.Child("restartPolicy"), *j.RestartPolicy,
			[]corev1.RestartPolicy{corev1.RestartPolicyNever, corev1.RestartPolicyOnFailure}))
	}
	return errs
}

func (c *CronJobDefaults) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonNegative(path.Child("successfulJobsHistoryLimit"), c.SuccessfulJobsHistoryLimit)...)
	errs = append(errs, nonNegative(path.Child("failedJobsHistoryLimit"), c.FailedJobsHistoryLimit)...)
	if c.ConcurrencyPolicy != nil {
		switch *c.ConcurrencyPolicy {
		case batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
		default:
			errs = append(errs, field.NotSupported(path.Child("concurrencyPolicy"), *c.ConcurrencyPolicy,
				[]batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}))
		}
	}
	if c.StartingDeadlineSeconds != nil && *c.StartingDeadlineSeconds < 0 {
		errs = append(errs, field.Invalid(path.Child("startingDeadlineSeconds"), *c.StartingDeadlineSeconds, "must not be negative"))
	}
	return errs
}

func nonNegative(path *field.Path, v *int32) field.ErrorList {
	if v != nil && *v < 0 {
		return field.ErrorList{field.Invalid(path, *v, "must not be negative")}
	}
	return nil
}
