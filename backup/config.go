// Package backup is tandem's backup sidecar: it streams a database's dump through zstd to object storage (and,
// when asked, into a local copy), verifies it by restoring it into a throwaway server, and restores a backup into
// the database. The `tandem backup`, `tandem verify` and `tandem restore` commands are thin wiring around it.
package backup

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tandem-dev/tandem/internal/contract"
)

// Config is what the sidecar needs to know. The injector sets it through the environment; each setting also has
// a flag, and a flag overrides the environment.
type Config struct {
	// Engine is the database kind: postgres, mysql or mongodb.
	Engine string
	// Location is where backups are uploaded: a bucket URL (s3://bucket/prefix or file:///dir, contract.ParseLocation).
	Location string
	// Interval is the time between two backups.
	Interval time.Duration
	// Dir is the local directory of the local copies (Keep), and of the throwaway server a verification starts.
	Dir string
	// Host, Port, User, Database and Password say which database to dump and how to log in. Port 0 and an
	// empty User mean the engine's default.
	Host     string
	Port     int
	User     string
	Database string
	Password string
	// TandemVersion is written into each backup's manifest; the command sets it, no variable or flag does.
	TandemVersion string
	// PodName is the pod whose database is backed up, part of each backup's name; empty outside a pod.
	PodName string
	// Members is which members of a workload back up (contract.Members; empty: all), and PodIndex this pod's
	// index in its StatefulSet (empty for a pod that is not a StatefulSet's).
	Members  string
	PodIndex string
	// PasswordFile, when set, is a file holding the password (a mounted Secret), read at every backup and
	// restore so that a rotated password is picked up without a restart. It excludes Password.
	PasswordFile string
	// Keep is how many local copies of backups Dir holds, the one being written included (0: none, each backup
	// streams to Location only). Older uploaded ones are deleted; ones not uploaded yet are never deleted, and
	// while Keep of them wait, a new backup streams to Location only.
	Keep int
	// RemoteKeep is how many backups of this database stay at Location; older ones are deleted after each
	// upload. 0 keeps them all.
	RemoteKeep int
	// RemoteMaxAge deletes backups at Location older than this, by the timestamp in their names, after each
	// upload. 0 is no limit. The newest backup is never deleted.
	RemoteMaxAge time.Duration
	// UploadRetryFor is how long a failed upload is retried, with backoff, within one pass. A backup that has
	// not landed by then stays in Dir and is tried again on the next pass.
	UploadRetryFor time.Duration
	// DirSizeLimit is the most Dir may hold, in bytes (0: no limit): the sizeLimit of the emptyDir it is, which
	// the kubelet evicts the pod for outgrowing. A verification or a local copy that would pass it is not made.
	DirSizeLimit int64
	// MetricsAddr is the address of /metrics and /healthz; empty or "0" serves nothing.
	MetricsAddr string
	// SuspectBelowPercent makes a dump suspect when it is smaller than this percentage of the last verified
	// backup, or of the backup before it when none is verified (0: never).
	SuspectBelowPercent int
	// Verify is when the sidecar verifies its backups: VerifyEach (after each backup that lands), a Go
	// duration (after a backup, at most once per that period), or VerifyOff.
	Verify string
	// VerifyQueries are the user's checks of a restored copy: SQL queries that must each return true.
	VerifyQueries []string
}

// The values of Config.Verify besides a period.
const (
	VerifyEach = contract.VerifyEach
	VerifyOff  = contract.VerifyOff
)

// verifyPeriod is the least time between two verifications (0: after each backup), and false when the sidecar
// does not verify (or Verify is not valid, which Validate reports).
func (c *Config) verifyPeriod() (time.Duration, bool) {
	d, on, _ := contract.ParseVerify(c.Verify)
	return d, on
}

// DefaultConfig is the configuration before the environment and flags are applied.
func DefaultConfig() Config {
	return Config{
		Interval:            24 * time.Hour,
		Dir:                 contract.BackupMountPath,
		Host:                "localhost",
		Keep:                0,
		UploadRetryFor:      15 * time.Minute,
		SuspectBelowPercent: 50,
		Verify:              VerifyEach,
	}
}

// setting is one configuration value: its environment variable, its flag, and how to parse it.
type setting struct {
	env, flag, usage string
	value            flag.Value
	secret           bool
}

func (c *Config) settings() []setting {
	return []setting{
		{env: contract.EnvEngine, flag: "engine", usage: "database engine: postgres, mysql or mongodb", value: (*stringValue)(&c.Engine)},
		{env: contract.EnvLocation, flag: "location", usage: "where backups are uploaded: s3://bucket/prefix or file:///dir (S3-compatible stores: set AWS_ENDPOINT_URL)", value: (*stringValue)(&c.Location)},
		{env: contract.EnvInterval, flag: "interval", usage: "time between two backups, a Go duration (BACKUP_INTERVAL_SECONDS, in seconds, is read when BACKUP_INTERVAL is unset)", value: (*durationValue)(&c.Interval)},
		{env: contract.EnvDir, flag: "dir", usage: "local directory of the local copies (--keep) and of the throwaway server a verification starts", value: (*stringValue)(&c.Dir)},
		{env: contract.EnvKeep, flag: "keep", usage: "how many local copies of backups to keep in the directory, the one being written included (0: none, backups stream to the location only; a local copy is uploaded later when the location fails during the dump)", value: (*intValue)(&c.Keep)},
		{env: contract.EnvRemoteKeep, flag: "remote-keep", usage: "how many backups of the database to keep at the location, newest first; older ones are deleted after each upload (0: keep all)", value: (*intValue)(&c.RemoteKeep)},
		{env: contract.EnvRemoteMaxAge, flag: "remote-max-age", usage: "delete backups of the database at the location older than this Go duration (by the timestamp in their names) after each upload; the newest is always kept (0: no limit)", value: (*durationValue)(&c.RemoteMaxAge)},
		{env: contract.EnvSuspectBelowPercent, flag: "suspect-below-percent", usage: "a dump smaller than this percentage of the backup before it is suspect: kept and uploaded, but never the latest and never counted by retention (0: off)", value: (*intValue)(&c.SuspectBelowPercent)},
		{env: contract.EnvVerify, flag: "verify", usage: "when the sidecar verifies its backups, restoring each into a throwaway server: each (after every backup that lands), a Go duration such as 24h (at most once per that period), or off", value: (*stringValue)(&c.Verify)},
		{env: contract.EnvVerifyQueries, flag: "verify-queries", usage: "checks of a verified backup's restored copy: SQL queries, one per line, that must each return true (t, true or 1)", value: (*linesValue)(&c.VerifyQueries)},
		{env: contract.EnvDirSizeLimit, flag: "dir-size-limit", usage: "the most the directory may hold, a Kubernetes quantity such as 16Gi (the sizeLimit of its emptyDir, which tandem's injector sets): a verification or a local copy that would pass it is not made (0: no limit)", value: (*quantityValue)(&c.DirSizeLimit)},
		{env: contract.EnvUploadRetryFor, flag: "upload-retry-for", usage: "how long a failed upload is retried with backoff before the backup is left for the next pass", value: (*durationValue)(&c.UploadRetryFor)},
		{env: contract.EnvMetricsBindAddress, flag: "metrics-bind-address", usage: `address of /metrics and /healthz ("0" or empty serves nothing)`, value: (*stringValue)(&c.MetricsAddr)},
		{env: contract.EnvDatabaseHost, flag: "host", usage: "database host", value: (*stringValue)(&c.Host)},
		{env: contract.EnvDatabasePort, flag: "port", usage: "database port (default: the engine's, 5432, 3306 or 27017)", value: (*intValue)(&c.Port)},
		{env: contract.EnvDatabaseUser, flag: "user", usage: "database user (default: postgres for postgres, root for mysql, none for mongodb; a mongodb user authenticates against admin)", value: (*stringValue)(&c.User)},
		{env: contract.EnvDatabaseName, flag: "database", usage: "database to dump and restore into (mysql, mongodb: empty dumps all databases)", value: (*stringValue)(&c.Database)},
		{env: contract.EnvDatabasePassword, flag: "password", usage: "database password; prefer the environment variable: a command line is visible to every process on the node", value: (*stringValue)(&c.Password), secret: true},
		{env: contract.EnvPodName, flag: "pod-name", usage: "name of the pod whose database is backed up, part of each backup's name so that the backups of several replicas never collide (tandem's injector sets it)", value: (*stringValue)(&c.PodName)},
		{env: contract.EnvMembers, flag: "members", usage: "which members of a workload back up: all, or first (a StatefulSet's member with index 0; the others stay idle)", value: (*stringValue)(&c.Members)},
		{env: contract.EnvPodIndex, flag: "pod-index", usage: "this pod's index in its StatefulSet, for --members first (tandem's injector sets it from the apps.kubernetes.io/pod-index label)", value: (*stringValue)(&c.PodIndex)},
		{env: contract.EnvDatabasePasswordFile, flag: "password-file", usage: "file holding the database password (a mounted Secret), read at every backup and restore so that a rotated password is picked up; a trailing newline is ignored", value: (*stringValue)(&c.PasswordFile)},
	}
}

// ApplyEnv sets each value whose environment variable lookup finds. An unparsable value is an error naming the
// variable.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	var errs []error
	for _, s := range c.settings() {
		v, ok := lookup(s.env)
		if s.env == contract.EnvInterval && (!ok || v == "") {
			// The injector sets both; older profiles and hand-written pods may set only the seconds.
			if secs, ok := lookup(contract.EnvIntervalSeconds); ok && secs != "" {
				d, err := contract.ParseInterval(secs + "s")
				if err != nil {
					errs = append(errs, fmt.Errorf("%s=%q: want a whole number of seconds, at least %s", contract.EnvIntervalSeconds, secs, contract.MinInterval))
					continue
				}
				c.Interval = d
			}
			continue
		}
		if !ok || v == "" {
			continue
		}
		if err := s.value.Set(v); err != nil {
			shown := v
			if s.secret {
				shown = "(hidden)"
			}
			errs = append(errs, fmt.Errorf("%s=%s: %v", s.env, shown, err))
		}
	}
	return errors.Join(errs...)
}

// BindFlags declares a flag for each setting on fs, defaulting to the value c holds now; call it after ApplyEnv
// so that a flag overrides the environment.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	for _, s := range c.settings() {
		fs.Var(s.value, s.flag, s.usage+" [$"+s.env+"]")
		if s.secret {
			fs.Lookup(s.flag).DefValue = "" // never print a password in --help
		}
	}
}

// Validate checks the configuration, naming the environment variable (and flag) to fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(env, flagName, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s (--%s): %s", env, flagName, fmt.Sprintf(format, args...)))
	}
	switch c.Engine {
	case "postgres", "mysql", "mongodb":
	case "":
		bad("BACKUP_ENGINE", "engine", "required: postgres, mysql or mongodb")
	default:
		bad("BACKUP_ENGINE", "engine", "%q is not postgres, mysql or mongodb", c.Engine)
	}
	if contract.NeedsDatabase(c.Engine) && c.Database == "" {
		bad("DATABASE_NAME", "database", "required for %s", c.Engine)
	}
	if c.Location == "" {
		bad("BACKUP_LOCATION", "location", "required, e.g. s3://my-bucket/my-backups")
	} else if _, err := ParseLocation(c.Location); err != nil {
		bad("BACKUP_LOCATION", "location", "%v", err)
	}
	if c.Interval < contract.MinInterval {
		bad("BACKUP_INTERVAL", "interval", "%s is shorter than the minimum interval, %s", c.Interval, contract.MinInterval)
	}
	if c.Dir == "" {
		bad("BACKUP_DIR", "dir", "required")
	}
	if c.Host == "" {
		bad("DATABASE_HOST", "host", "required")
	}
	if c.Port < 0 || c.Port > 65535 {
		bad("DATABASE_PORT", "port", "%d is not a port", c.Port)
	}
	if c.Keep < 0 {
		bad("BACKUP_KEEP", "keep", "must not be negative")
	}
	if c.RemoteKeep < 0 {
		bad("BACKUP_REMOTE_KEEP", "remote-keep", "must not be negative (0 keeps every backup)")
	}
	if c.RemoteMaxAge < 0 {
		bad("BACKUP_REMOTE_MAX_AGE", "remote-max-age", "must not be negative (0 is no limit)")
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, errors.New("DATABASE_PASSWORD (--password) and DATABASE_PASSWORD_FILE (--password-file) are both set: set one"))
	}
	if contract.NeedsUserForPassword(c.Engine) && c.User == "" && (c.Password != "" || c.PasswordFile != "") {
		bad("DATABASE_USER", "user", "required for %s when a password is set", c.Engine)
	}
	if c.DirSizeLimit < 0 {
		bad("BACKUP_DIR_SIZE_LIMIT", "dir-size-limit", "must not be negative (0 is no limit)")
	}
	if c.UploadRetryFor < 0 {
		bad("BACKUP_UPLOAD_RETRY_FOR", "upload-retry-for", "must not be negative")
	}
	if c.SuspectBelowPercent < 0 || c.SuspectBelowPercent > 100 {
		bad("BACKUP_SUSPECT_BELOW_PERCENT", "suspect-below-percent", "%d is not a percentage from 0 (off) to 100", c.SuspectBelowPercent)
	}
	if _, _, err := contract.ParseVerify(c.Verify); err != nil {
		bad("BACKUP_VERIFY", "verify", "%v", err)
	}
	if c.Members != "" && !slices.Contains(contract.Members, c.Members) {
		bad("BACKUP_MEMBERS", "members", "%q is not one of %s", c.Members, strings.Join(contract.Members, ", "))
	}
	if c.PodIndex != "" {
		if _, err := strconv.ParseUint(c.PodIndex, 10, 31); err != nil {
			bad("BACKUP_POD_INDEX", "pod-index", "%q is not a StatefulSet member's index", c.PodIndex)
		}
	}
	if c.PodName != "" && len(validation.IsDNS1123Subdomain(c.PodName)) > 0 {
		bad("BACKUP_POD_NAME", "pod-name", "%q is not a pod name (lowercase letters, digits, '-' and '.')", c.PodName)
	}
	if strings.ContainsAny(c.Database, "/\x00") || strings.HasPrefix(c.Database, "-") || strings.HasPrefix(c.Database, ".") {
		bad("DATABASE_NAME", "database", "%q cannot be part of a file name", c.Database)
	}
	return errors.Join(errs...)
}

// ValidateForBackup is Validate, and what backing up needs more than a restore does: a location outside the
// directory, whose emptyDir is deleted with the pod (a restore may read a backup copied there).
func (c *Config) ValidateForBackup() error {
	if err := c.Validate(); err != nil {
		return err
	}
	return c.validateLocation()
}

func (c *Config) validateLocation() error {
	l, err := ParseLocation(c.Location)
	if err != nil {
		return fmt.Errorf("BACKUP_LOCATION (--location): %w", err)
	}
	if err := contract.CheckOutside(l, c.Dir); err != nil {
		return fmt.Errorf("BACKUP_LOCATION (--location): %w", err)
	}
	return nil
}

// password is the database password: DATABASE_PASSWORD_FILE's content, without its trailing newline, read now,
// or DATABASE_PASSWORD.
func (c *Config) password() (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("DATABASE_PASSWORD_FILE (--password-file): %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

type stringValue string

func (s *stringValue) String() string     { return string(*s) }
func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }

type intValue int

func (i *intValue) String() string { return strconv.Itoa(int(*i)) }
func (i *intValue) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", v)
	}
	*i = intValue(n)
	return nil
}

// linesValue is a list given one item per line; blank lines are left out.
type linesValue []string

func (l *linesValue) String() string { return strings.Join(*l, "\n") }
func (l *linesValue) Set(v string) error {
	*l = nil
	for _, line := range strings.Split(v, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			*l = append(*l, line)
		}
	}
	return nil
}

// quantityValue is a number of bytes given as a Kubernetes quantity (16Gi, 500M, 1073741824).
type quantityValue int64

func (q *quantityValue) String() string {
	return resource.NewQuantity(int64(*q), resource.BinarySI).String()
}
func (q *quantityValue) Set(v string) error {
	x, err := resource.ParseQuantity(v)
	if err != nil {
		return fmt.Errorf("%q is not a quantity such as 16Gi", v)
	}
	*q = quantityValue(x.Value())
	return nil
}

type durationValue time.Duration

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Set(v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 24h or 90m", v)
	}
	*d = durationValue(x)
	return nil
}
