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
	"sigs.k8s.io/yaml"
)

// Config is the whole configuration.
type Config struct {
	// BackupImage is the image of tandem's backup sidecar (tandem backup and the database clients); a profile
	// without an image runs it. DefaultBackupImage when empty.
	BackupImage string `json:"backupImage,omitempty"`
	// DefaultProfile is the profile injected when tandem.dev/backup is "true".
	DefaultProfile string `json:"defaultProfile,omitempty"`
	// Profiles are the backup sidecars, by name. A profile set to null in a file removes the built-in one.
	Profiles map[string]*Profile `json:"profiles,omitempty"`
	// Jobs are the defaults for Jobs and for the job templates of CronJobs.
	Jobs JobDefaults `json:"jobs"`
	// CronJobs are the defaults for CronJobs.
	CronJobs CronJobDefaults `json:"cronJobs"`
}

// Profile describes one backup sidecar.
type Profile struct {
	// ContainerName is the sidecar's name; DefaultContainerName when empty.
	ContainerName   string                      `json:"containerName,omitempty"`
	Image           string                      `json:"image"`
	ImagePullPolicy corev1.PullPolicy           `json:"imagePullPolicy,omitempty"`
	Command         []string                    `json:"command,omitempty"`
	Args            []string                    `json:"args,omitempty"`
	Env             []corev1.EnvVar             `json:"env,omitempty"`
	Resources       corev1.ResourceRequirements `json:"resources,omitempty"`
	SecurityContext *corev1.SecurityContext     `json:"securityContext,omitempty"`
	// Volumes are added to the pod beside tandem's own, and VolumeMounts to the sidecar.
	Volumes      []corev1.Volume      `json:"volumes,omitempty"`
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// Interval is the time between backups, a Go duration; DefaultInterval when empty.
	Interval string `json:"interval,omitempty"`
	// BackupLocation is used when a pod has no tandem.dev/backup-location.
	BackupLocation string `json:"backupLocation,omitempty"`
	// Database is used when a pod has no tandem.dev/database.
	Database string `json:"database,omitempty"`
	// NativeSidecar injects the sidecar into initContainers with restartPolicy Always, so it starts before
	// and stops after the database and does not keep a Job's pod from completing.
	NativeSidecar bool `json:"nativeSidecar,omitempty"`
}

// JobDefaults are set on Jobs; a nil field is off.
type JobDefaults struct {
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished"`
	BackoffLimit            *int32 `json:"backoffLimit"`
	ActiveDeadlineSeconds   *int64 `json:"activeDeadlineSeconds"`
	// RestartPolicy replaces the in-tree Always, which is invalid in a Job's pod template.
	RestartPolicy *corev1.RestartPolicy `json:"restartPolicy"`
}

// CronJobDefaults are set on CronJobs; a nil field is off.
type CronJobDefaults struct {
	SuccessfulJobsHistoryLimit *int32                     `json:"successfulJobsHistoryLimit"`
	FailedJobsHistoryLimit     *int32                     `json:"failedJobsHistoryLimit"`
	ConcurrencyPolicy          *batchv1.ConcurrencyPolicy `json:"concurrencyPolicy"`
	StartingDeadlineSeconds    *int64                     `json:"startingDeadlineSeconds"`
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
