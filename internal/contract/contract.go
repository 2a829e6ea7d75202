// Package contract is what the injector (webhook/) and the backup sidecar (backup/) must agree on: the sidecar's
// environment, the volume and paths tandem mounts into it, the interval rule and the grammar of backup locations.
// Both sides import it and neither defines these itself, so whatever the webhook admits, the sidecar starts with.
package contract

import (
	"fmt"
	"time"
)

// What tandem adds to a pod for its sidecar; profiles may not use these names for their own volumes or mounts.
const (
	// BackupVolume is the emptyDir shared with the sidecar, mounted at BackupMountPath.
	BackupVolume = "backup-data"
	// BackupMountPath is where the sidecar writes its dumps, its BACKUP_DIR by default.
	BackupMountPath = "/backups"
	// SecretVolume is the database Secret's password key, projected alone, mounted at SecretMountPath.
	SecretVolume = "tandem-database-secret"
	// SecretMountPath is where the database Secret's password key is mounted in the sidecar.
	SecretMountPath = "/secrets"
)

// The sidecar's environment. The injector sets the first group from the pod's annotations and its profile; the
// sidecar reads all of them, each also as a flag.
const (
	EnvLocation         = "BACKUP_LOCATION"
	EnvInterval         = "BACKUP_INTERVAL"
	EnvIntervalSeconds  = "BACKUP_INTERVAL_SECONDS"
	EnvDatabaseName     = "DATABASE_NAME"
	EnvDatabaseUser     = "DATABASE_USER"
	EnvDatabasePassword = "DATABASE_PASSWORD"

	EnvEngine               = "BACKUP_ENGINE"
	EnvDir                  = "BACKUP_DIR"
	EnvKeep                 = "BACKUP_KEEP"
	EnvRemoteKeep           = "BACKUP_REMOTE_KEEP"
	EnvSuspectBelowPercent  = "BACKUP_SUSPECT_BELOW_PERCENT"
	EnvRemoteMaxAge         = "BACKUP_REMOTE_MAX_AGE"
	EnvUploadRetryFor       = "BACKUP_UPLOAD_RETRY_FOR"
	EnvMetricsBindAddress   = "BACKUP_METRICS_BIND_ADDRESS"
	EnvDatabaseHost         = "DATABASE_HOST"
	EnvDatabasePort         = "DATABASE_PORT"
	EnvDatabasePasswordFile = "DATABASE_PASSWORD_FILE"
	// EnvVerify is when the sidecar verifies its backups (each, a period, off); EnvVerifyQueries are the
	// user's checks of a restored copy, SQL queries one per line that must each return true.
	EnvVerify        = "BACKUP_VERIFY"
	EnvVerifyQueries = "BACKUP_VERIFY_QUERIES"
	// EnvPodName is the name of the pod whose database is backed up (the injector sets it from the Downward
	// API): it is part of every backup's name, so that the backups of several pods never collide.
	EnvPodName = "BACKUP_POD_NAME"
	// EnvMembers is which members of a workload back up (Members); EnvPodIndex is the pod's index in its
	// StatefulSet (the injector sets it from the label PodIndexLabel through the Downward API), empty for a pod
	// that is not a StatefulSet's.
	EnvMembers  = "BACKUP_MEMBERS"
	EnvPodIndex = "BACKUP_POD_INDEX"
	// EnvDirSizeLimit is the sizeLimit of the backup-data emptyDir (a Kubernetes quantity such as 16Gi), which
	// the sidecar keeps below: the kubelet evicts a pod whose emptyDir outgrows it.
	EnvDirSizeLimit = "BACKUP_DIR_SIZE_LIMIT"
)

// InjectedEnv are the variables the injector sets itself from the pod's annotations; a profile's env may not
// redefine them.
var InjectedEnv = []string{EnvLocation, EnvInterval, EnvIntervalSeconds, EnvDatabaseName, EnvDatabasePassword, EnvPodName, EnvMembers, EnvPodIndex, EnvDirSizeLimit}

// Which members of a workload back up: every pod, or a StatefulSet's member with index 0 only.
const (
	MembersAll   = "all"
	MembersFirst = "first"
)

// Members are the values of BACKUP_MEMBERS.
var Members = []string{MembersAll, MembersFirst}

// PodIndexLabel is the label a StatefulSet's controller gives each of its pods: its index.
const PodIndexLabel = "apps.kubernetes.io/pod-index"

// Engines are the databases the sidecar dumps, the values of BACKUP_ENGINE.
var Engines = []string{"postgres", "mysql", "mongodb"}

// NeedsDatabase reports whether the engine dumps one named database only, so DATABASE_NAME is required.
func NeedsDatabase(engine string) bool { return engine == "postgres" }

// NeedsUserForPassword reports whether the engine cannot log in with a password without a user: the mongodb
// tools authenticate a user against admin, and have no default user.
func NeedsUserForPassword(engine string) bool { return engine == "mongodb" }

// MetricsPortName is the name of the sidecar's container port of /metrics and /healthz, which a PodMonitor
// selects.
const MetricsPortName = "tandem-metrics"

// MetricsBindAddress is the sidecar's BACKUP_METRICS_BIND_ADDRESS for a port: every interface, so that the
// kubelet and Prometheus reach it.
func MetricsBindAddress(port int32) string { return fmt.Sprintf(":%d", port) }

// MinInterval is the shortest backup interval.
const MinInterval = time.Second

// ParseInterval parses a backup interval: a Go duration of at least MinInterval.
// The values of BACKUP_VERIFY besides a period: verify after each backup, or never.
const (
	VerifyEach = "each"
	VerifyOff  = "off"
)

// ParseVerify reads a BACKUP_VERIFY value: each (or empty), off, or a positive Go duration, the least time between
// two verifications. It returns that period (0: after each backup) and whether the sidecar verifies.
func ParseVerify(v string) (period time.Duration, on bool, err error) {
	switch v {
	case VerifyEach, "":
		return 0, true, nil
	case VerifyOff:
		return 0, false, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, false, fmt.Errorf("%q is not each, off, or a positive Go duration such as 24h", v)
	}
	return d, true, nil
}

func ParseInterval(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a Go duration (examples: 30m, 6h, 24h)", v)
	}
	if d < MinInterval {
		return 0, fmt.Errorf("%q is shorter than the minimum interval, %s", v, MinInterval)
	}
	return d, nil
}
