// Package config is tandem's configuration: the backup sidecar profiles and the Job and CronJob defaults, read
// strictly from one YAML file and checked with errors that name the key to fix.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// Config is the whole configuration.
//
// The doc comments of its fields, and of the types below, are the README's configuration reference and the
// rules of its Job and CronJob defaults (hack/docgen writes them there, Markdown included): each says what the
// key does, and a last paragraph "Default: ..." what applies when it is left out. The built-in values of jobs
// and cronJobs are read from default.yaml.
type Config struct {
	// BackupImage is the image of tandem's backup sidecar (`tandem backup`, `tandem restore` and the database
	// clients), which every profile without an `image` runs.
	//
	// Default: `ghcr.io/tandem-dev/tandem-backup:<tandem's version>`; the chart sets the one of its appVersion.
	BackupImage string `json:"backupImage,omitempty"`
	// DefaultProfile is the profile selected by `tandem.dev/backup: "true"`.
	//
	// Default: `postgres`.
	DefaultProfile string `json:"defaultProfile,omitempty"`
	// Profiles are the backup sidecars, by name: the value of `tandem.dev/backup` that selects one. A profile
	// the file names replaces the built-in profile of that name whole; `null` removes it.
	//
	// Default: the built-in `postgres`, `mysql` and `mongodb`.
	Profiles map[string]*Profile `json:"profiles,omitempty"`
	// Jobs are the defaults for Jobs and for the job templates of CronJobs.
	Jobs JobDefaults `json:"jobs"`
	// CronJobs are the defaults for CronJobs.
	CronJobs CronJobDefaults `json:"cronJobs"`
}

// Profile describes one backup sidecar.
type Profile struct {
	// ContainerName is the name of the sidecar container.
	//
	// Default: `tandem-backup`.
	ContainerName string `json:"containerName,omitempty"`
	// Image is the sidecar's image.
	//
	// Default: `backupImage`.
	Image string `json:"image"`
	// ImagePullPolicy is `Always`, `IfNotPresent` or `Never`.
	//
	// Default: the cluster's default.
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`
	// Command is the sidecar's command.
	//
	// Default: the image's entrypoint.
	Command []string `json:"command,omitempty"`
	// Args are the sidecar's arguments.
	Args []string `json:"args,omitempty"`
	// Env is extra environment, after tandem's own variables (which it may not redefine).
	Env []corev1.EnvVar `json:"env,omitempty"`
	// Resources are the sidecar's requests and limits in a pod of QoS class Burstable; a request above its
	// limit is an error. In a BestEffort pod the sidecar has none, and in a pod with pod-level `resources` it
	// shares the pod's, so neither changes class.
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
	// GuaranteedResources are the sidecar's requests and, equal to them, its limits in a pod of QoS class
	// Guaranteed, which stays Guaranteed: `cpu` and `memory` both. A Guaranteed pod is refused when the profile
	// has neither this key nor `resources.limits` with both.
	//
	// Default: `resources.limits`, when it names cpu and memory; `{cpu: 500m, memory: 512Mi}` in the built-in
	// profiles.
	GuaranteedResources corev1.ResourceList `json:"guaranteedResources,omitempty"`
	// SecurityContext is the sidecar's security context. The built-in profiles pass Pod Security
	// `restricted`.
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
	// Volumes are extra pod volumes, added beside tandem's own (not named `backup-data`).
	Volumes []corev1.Volume `json:"volumes,omitempty"`
	// VolumeMounts are extra sidecar mounts, of `backup-data` or of the profile's volumes (not at `/backups`
	// or `/secrets`).
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// DataSizeLimit is the `sizeLimit` of the `backup-data` emptyDir: the disk the sidecar may use on the node,
	// for the throwaway server a verification restores each backup into (about 1.5 times the size of the dump)
	// and for local copies (`BACKUP_KEEP`, none by default). The kubelet evicts a pod whose emptyDir outgrows its
	// limit, so the sidecar is told it too (`BACKUP_DIR_SIZE_LIMIT`) and stays below it: a verification that
	// would not fit is not started, or stopped, and says so; a local copy that would not fit is not written.
	// `0` sets no limit.
	//
	// Default: none; `16Gi` in the built-in profiles.
	DataSizeLimit *resource.Quantity `json:"dataSizeLimit,omitempty"`
	// Interval is the default time between backups, a Go duration of at least 1s.
	//
	// Default: `24h`.
	Interval string `json:"interval,omitempty"`
	// BackupLocation is the default location for pods without `tandem.dev/backup-location`.
	BackupLocation string `json:"backupLocation,omitempty"`
	// Database is the default database name, for pods without `tandem.dev/database`.
	Database string `json:"database,omitempty"`
	// MetricsPort is the port of the sidecar's `/metrics` and `/healthz` (tandem backup's
	// `BACKUP_METRICS_BIND_ADDRESS`), declared as the container port `tandem-metrics` for a PodMonitor to find;
	// `tandem.dev/metrics-port` overrides it, `0` serves none. A port of the pod's own containers is refused.
	//
	// Default: none; `9880` in the built-in profiles.
	MetricsPort int32 `json:"metricsPort,omitempty"`
	// NativeSidecar is `true` for a native sidecar: the last of `initContainers`, with `restartPolicy:
	// Always`. It starts after the pod's init containers and before its containers without delaying them (it
	// has no startup probe and waits for the database on its own), stops after them, is restarted whatever the
	// pod's `restartPolicy`, and lets a Job's pod complete. `false` adds a regular container, which keeps a pod
	// that must complete (a Job's) from ever completing.
	//
	// Default: `true`.
	NativeSidecar *bool `json:"nativeSidecar,omitempty"`
}

// Guaranteed returns the sidecar's requests and limits in a pod of QoS class Guaranteed: GuaranteedResources,
// or else the limits when they name cpu and memory; false when the profile has neither.
func (p *Profile) Guaranteed() (corev1.ResourceList, bool) {
	for _, list := range []corev1.ResourceList{p.GuaranteedResources, p.Resources.Limits} {
		_, cpu := list[corev1.ResourceCPU]
		_, memory := list[corev1.ResourceMemory]
		if cpu && memory {
			return list, true
		}
	}
	return nil, false
}

// Native reports whether the profile's sidecar is a native sidecar: unless nativeSidecar is false.
func (p *Profile) Native() bool { return p.NativeSidecar == nil || *p.NativeSidecar }

// JobDefaults are set on Jobs and on the job templates of CronJobs; a nil field is off.
type JobDefaults struct {
	// TTLSecondsAfterFinished is set on a Job's `spec` and a CronJob's `spec.jobTemplate.spec` when absent
	// (the API server has no default). Any value the user wrote, `0` included, is kept.
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished"`
	// BackoffLimit is set when absent or `6`, the API server's default. Any other value is kept. Not set when
	// the Job uses `backoffLimitPerIndex` (the API server's default is then the largest int32, which tandem
	// must not cap).
	BackoffLimit *int32 `json:"backoffLimit"`
	// ActiveDeadlineSeconds is set when absent.
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds"`
	// RestartPolicy is set on the pod template when its `restartPolicy` is `Always` (the API server's
	// default, which a Job rejects) or absent: if the regular containers carry a container-level `Never` or
	// `OnFailure` and agree, the pod takes theirs; otherwise it takes this key. A Job with a
	// `podFailurePolicy` gets `Never`, the only value it accepts. The container-level field is then removed
	// (unless `restartPolicyRules` need it), so the object means the same on every Kubernetes version.
	// `Never` and `OnFailure` are kept.
	RestartPolicy *corev1.RestartPolicy `json:"restartPolicy"`
}

// CronJobDefaults are set on CronJobs; a nil field is off.
type CronJobDefaults struct {
	// SuccessfulJobsHistoryLimit is set when absent or `3`, the API server's default.
	SuccessfulJobsHistoryLimit *int32 `json:"successfulJobsHistoryLimit"`
	// FailedJobsHistoryLimit is set when absent or `1`, the API server's default; the built-in value equals
	// it, so by default nothing changes.
	FailedJobsHistoryLimit *int32 `json:"failedJobsHistoryLimit"`
	// ConcurrencyPolicy is set when absent or `Allow`, the API server's default.
	ConcurrencyPolicy *batchv1.ConcurrencyPolicy `json:"concurrencyPolicy"`
	// StartingDeadlineSeconds is set when absent.
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds"`
}

// Defaults filled into a profile that leaves them out.
const (
	DefaultContainerName = "tandem-backup"
	DefaultInterval      = "24h"
)

//go:embed default.yaml
var defaultYAML []byte

// BackupImageRepository is where tandem's backup image is published.
const BackupImageRepository = "ghcr.io/tandem-dev/tandem-backup"

// DefaultBackupImage is the backup image when the configuration names none: tandem's own, at this binary's
// version (cmd/tandem sets it at start; the Helm chart always names the image of its appVersion).
var DefaultBackupImage = BackupImageRepository + ":latest"

// DefaultYAML returns the built-in configuration as YAML, the file every configuration file is laid over.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Default returns the built-in configuration.
func Default() *Config {
	c, err := finish(builtin())
	if err != nil {
		panic("built-in configuration is invalid: " + err.Error())
	}
	return c
}

// builtin decodes default.yaml, not yet finished: what a configuration file is laid over.
func builtin() *Config {
	c := &Config{}
	if err := unmarshal(c, defaultYAML); err != nil {
		panic("built-in configuration is invalid: " + err.Error())
	}
	return c
}

// Parse reads a configuration file's content, laid over the built-in configuration: a key the file leaves out
// keeps its built-in value, a key set to null is switched off, and a profile the file names replaces the
// built-in profile of that name whole. Unknown keys and invalid values are errors that name the key.
func Parse(data []byte) (*Config, error) {
	c := builtin()
	if err := unmarshal(c, data); err != nil {
		return nil, err
	}
	return finish(c)
}

// Load reads the configuration file at path; an empty path gives the built-in configuration.
func Load(path string) (*Config, error) {
	if path == "" {
		return Default(), nil
	}
	c, _, err := load(path)
	return c, err
}

// load reads and parses the file at path, and returns its content too.
func load(path string) (*Config, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading configuration: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, data, fmt.Errorf("configuration %s: %w", path, err)
	}
	return c, data, nil
}

// unmarshal lays the YAML document data over c, strictly.
func unmarshal(c *Config, data []byte) error {
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "error unmarshaling JSON: while decoding JSON: "))
	}
	return nil
}

// finish fills in what a configuration leaves to defaults (container name, interval, the backup image of a
// profile without an image) and validates the result.
func finish(base *Config) (*Config, error) {
	if base.BackupImage == "" {
		base.BackupImage = DefaultBackupImage
	}
	for name, p := range base.Profiles {
		if p == nil {
			delete(base.Profiles, name)
			continue
		}
		if p.ContainerName == "" {
			p.ContainerName = DefaultContainerName
		}
		if p.Interval == "" {
			p.Interval = DefaultInterval
		}
		if p.Image == "" {
			p.Image = base.BackupImage
		}
	}
	if errs := base.Validate(); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return nil, errors.New(strings.Join(msgs, "\n"))
	}
	return base, nil
}

// Profile returns the profile a tandem.dev/backup value selects: "true" selects the default profile.
func (c *Config) Profile(name string) (*Profile, string, bool) {
	if name == "true" {
		name = c.DefaultProfile
	}
	p, ok := c.Profiles[name]
	return p, name, ok
}
