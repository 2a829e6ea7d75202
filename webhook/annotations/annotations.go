// Package annotations holds every annotation key tandem reads or writes, each with the check of its value.
//
// The README's annotation reference is generated from All (go run ./hack/docgen; make lint fails when it is
// stale), so a key's documentation lives here, beside its check.
package annotations

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tandem-dev/tandem/internal/contract"
)

// Prefix starts every tandem annotation key.
const Prefix = "tandem.dev/"

// Keys read from a Pod or a workload's pod template.
const (
	// Backup opts a pod into backup sidecar injection. Its value names a profile of the configuration, or is
	// "true" for the configuration's default profile. "false" leaves the pod alone.
	Backup = Prefix + "backup"
	// BackupLocation is the object-storage URL backups are uploaded to, the sidecar's BACKUP_LOCATION.
	BackupLocation = Prefix + "backup-location"
	// DatabaseSecret names the Secret holding the database password. The sidecar gets DATABASE_PASSWORD from
	// it and the Secret is mounted read-only at /secrets.
	DatabaseSecret = Prefix + "database-secret"
	// DatabaseSecretKey is the key of the password in DatabaseSecret.
	DatabaseSecretKey = Prefix + "database-secret-key"
	// BackupInterval is the time between two backups, as a Go duration.
	BackupInterval = Prefix + "backup-interval"
	// Database names the database to dump, the sidecar's DATABASE_NAME.
	Database = Prefix + "database"
	// DatabaseUser is the user the sidecar logs in as, the sidecar's DATABASE_USER.
	DatabaseUser = Prefix + "database-user"
	// DatabasePort is the port the sidecar connects to the database on, the sidecar's DATABASE_PORT.
	DatabasePort = Prefix + "database-port"
	// MetricsPort is the port of the sidecar's /metrics and /healthz; "0" serves none.
	MetricsPort = Prefix + "metrics-port"
	// BackupMembers says which members of a workload back up: "all" (every pod's sidecar backs up the
	// database beside it) or "first" (a StatefulSet's member with index 0 only; the others' sidecars stay idle).
	BackupMembers = Prefix + "backup-members"
	// Verify is when the sidecar verifies its backups, the sidecar's BACKUP_VERIFY: each, a period, or off.
	Verify = Prefix + "verify"
	// VerifyQueries are the user's checks of a verified backup's restored copy, one SQL query per line, the
	// sidecar's BACKUP_VERIFY_QUERIES.
	VerifyQueries = Prefix + "verify-queries"
	// BackupCredentials names a Secret whose keys become the sidecar's environment (envFrom), for example
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	BackupCredentials = Prefix + "backup-credentials"
)

// Keys read from a Job or a CronJob.
const (
	// Defaults opts a Job or CronJob out of tandem's defaulting when "false".
	Defaults = Prefix + "defaults"
)

// Keys tandem writes.
const (
	// Injected records that tandem injected the backup sidecar, and with which profile. A pod that carries it
	// is never injected again.
	Injected = Prefix + "injected"
	// Defaulted lists, comma-separated, the field paths tandem set on a Job or CronJob.
	Defaulted = Prefix + "defaulted"
)

// DefaultDatabaseSecretKey is the key read from DatabaseSecret when DatabaseSecretKey is not set.
const DefaultDatabaseSecretKey = "database-password"

// Annotation documents one key: what it does, its default, and the check of its value.
type Annotation struct {
	Key string
	// Description is the key's meaning, in Markdown: the README's annotation table shows it as written.
	Description string
	// Default is what applies when the key is absent, in words (Markdown).
	Default string
	// SetByTandem marks keys tandem writes; users do not set them.
	SetByTandem bool
	// Validate checks a value; nil accepts any value.
	Validate func(value string) error
}

// All lists every annotation tandem knows, in the order of the README's annotation table.
var All = []Annotation{
	{Key: Backup, Description: `Opts the pod in. The value names a profile, or is "true" for the default profile; "false" opts out.`,
		Default: "no injection", Validate: ValidateProfileName},
	{Key: BackupLocation, Description: "Where backups are uploaded: `s3://bucket/prefix` (AWS S3 and S3-compatible stores) or `file:///path`; the sidecar's `BACKUP_LOCATION`.",
		Default: "the profile's `backupLocation`; required if the profile has none", Validate: ValidateLocation},
	{Key: DatabaseSecret, Description: "Secret with the database password: `DATABASE_PASSWORD` from a `secretKeyRef`, and that one key (not the whole Secret) mounted read-only at `/secrets/<key>` (volume `tandem-database-secret`). Both are optional, so a missing Secret or key keeps only the sidecar from logging in, never the pod from starting.",
		Default: "no password (a warning)", Validate: ValidateSecretName},
	{Key: DatabaseSecretKey, Description: "Key of the password in the database secret.",
		Default: "`" + DefaultDatabaseSecretKey + "`", Validate: ValidateSecretKey},
	{Key: BackupInterval, Description: "Time between backups, a Go duration (`30m`, `6h`, `24h`), at least 1s; the sidecar's `BACKUP_INTERVAL` and `BACKUP_INTERVAL_SECONDS`.",
		Default: "the profile's `interval`", Validate: func(v string) error { _, err := ParseInterval(v); return err }},
	{Key: Database, Description: "Database to dump; the sidecar's `DATABASE_NAME`.",
		Default: "the profile's `database`", Validate: ValidateDatabaseName},
	{Key: DatabaseUser, Description: "User the sidecar logs in as (every engine); the sidecar's `DATABASE_USER`. Required for `mongodb` with a database secret: the user the password belongs to, authenticated against `admin`.",
		Default: "the profile's `DATABASE_USER` (`postgres`, `root`; none for `mongodb`)", Validate: ValidateDatabaseUser},
	{Key: DatabasePort, Description: "Port the sidecar connects to the database on, for a database that does not listen on its engine's usual port (several host-network replicas on one node, each on a port of its own); the sidecar's `DATABASE_PORT`.",
		Default: "the profile's `DATABASE_PORT` (`5432`, `3306`, `27017`)", Validate: ValidateDatabasePort},
	{Key: MetricsPort, Description: "Port of the sidecar's `/metrics` and `/healthz`, declared as its container port `tandem-metrics`; `\"0\"` serves none. In a host-network pod it is a port of the node: give each replica on a node its own.",
		Default: "the profile's `metricsPort` (`9880`)", Validate: ValidatePort},
	{Key: BackupMembers, Description: "Which pods of a workload back up, where several replicas opt in: `all`, each pod's sidecar backing up the database beside it (each backup's name says which pod took it), or `first`, only a StatefulSet's member with index 0 (label `apps.kubernetes.io/pod-index`), the others' sidecars idle, for a primary and its standbys. `first` on another kind of workload is refused. The sidecar's `BACKUP_MEMBERS`.",
		Default: "`all`", Validate: ValidateMembers},
	{Key: Verify, Description: "When the sidecar verifies its backups by restoring each into a throwaway server of its own: `each` (after every backup that lands), a Go duration such as `24h` (after a backup, at most once per that period), or `off`. `restore --from latest` takes the newest verified backup. The sidecar's `BACKUP_VERIFY`.",
		Default: "the profile's `BACKUP_VERIFY` (`each`)", Validate: func(v string) error { _, _, err := contract.ParseVerify(v); return err }},
	{Key: VerifyQueries, Description: "Checks of each verified backup's restored copy: SQL queries, one per line (a YAML block scalar, `|`), that must each return true (`t`, `true` or `1`), such as `SELECT count(*) > 0 FROM orders`. The sidecar's `BACKUP_VERIFY_QUERIES`.",
		Default: "none", Validate: ValidateVerifyQueries},
	{Key: BackupCredentials, Description: "Secret whose keys become the sidecar's environment (`envFrom`), e.g. `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`.",
		Default: "none", Validate: ValidateSecretName},
	{Key: Injected, Description: "Written by tandem: the profile it injected. A pod carrying it and the sidecar is never injected again; one carrying it without the sidecar (the annotation copied from another manifest) gets the sidecar and a warning.",
		SetByTandem: true},
	{Key: Defaults, Description: "On a Job or CronJob: `\"false\"` opts it out of tandem's defaults.",
		Default: "defaults apply", Validate: ValidateBool},
	{Key: Defaulted, Description: "Written by tandem on a Job or CronJob: the comma-separated field paths it set.",
		SetByTandem: true},
}

// Lookup returns the documentation of key.
func Lookup(key string) (Annotation, bool) {
	i := slices.IndexFunc(All, func(a Annotation) bool { return a.Key == key })
	if i < 0 {
		return Annotation{}, false
	}
	return All[i], true
}

// Known reports whether key is a tandem annotation.
func Known(key string) bool {
	_, ok := Lookup(key)
	return ok
}

// True is the value of Backup that selects the default profile.
const True = "true"

// ValidateProfileName checks the value of Backup: "true", "false" or a profile name.
func ValidateProfileName(v string) error {
	if v == "" {
		return fmt.Errorf(`is empty: set it to a profile name, or "true" for the default profile`)
	}
	if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
		return fmt.Errorf("%q is not a profile name: %s", v, strings.Join(errs, "; "))
	}
	return nil
}

// ValidateLocation checks a backup location with the sidecar's own grammar (contract.ParseLocation).
func ValidateLocation(v string) error {
	l, err := contract.ParseLocation(v)
	if err != nil {
		return err
	}
	return contract.CheckOutside(l, contract.BackupMountPath)
}

// ParseInterval parses a backup interval with the sidecar's own rule (contract.ParseInterval).
func ParseInterval(v string) (time.Duration, error) { return contract.ParseInterval(v) }

// ValidateBool checks a "true" or "false" value.
func ValidateBool(v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf(`%q is neither "true" nor "false"`, v)
	}
	return nil
}

// ValidateMembers checks a tandem.dev/backup-members value.
func ValidateMembers(v string) error {
	if !slices.Contains(contract.Members, v) {
		return fmt.Errorf("%q is not one of %s", v, strings.Join(contract.Members, ", "))
	}
	return nil
}

// ValidateVerifyQueries checks a tandem.dev/verify-queries value: at least one query.
func ValidateVerifyQueries(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("is empty: give one SQL query per line that returns true, or remove the annotation")
	}
	return nil
}

// ValidateSecretName checks a Secret name.
func ValidateSecretName(v string) error {
	if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
		return fmt.Errorf("%q is not a valid Secret name: %s", v, strings.Join(errs, "; "))
	}
	return nil
}

// ValidateSecretKey checks a key of a Secret.
func ValidateSecretKey(v string) error {
	if errs := validation.IsConfigMapKey(v); len(errs) > 0 {
		return fmt.Errorf("%q is not a valid Secret key: %s", v, strings.Join(errs, "; "))
	}
	return nil
}

// ParsePort parses a port number, or "0" for none.
func ParsePort(v string) (int32, error) {
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535, or 0 for none)", v)
	}
	return int32(n), nil
}

// ValidateDatabasePort checks the port of a database: 1 to 65535.
func ValidateDatabasePort(v string) error {
	if n, err := ParsePort(v); err != nil || n == 0 {
		return fmt.Errorf("%q is not a port number (1-65535)", v)
	}
	return nil
}

// ValidatePort checks a port number, or "0" for none.
func ValidatePort(v string) error {
	_, err := ParsePort(v)
	return err
}

// ValidateDatabaseUser checks a database user name: printable, no spaces, at most 128 characters.
func ValidateDatabaseUser(v string) error {
	if v == "" {
		return fmt.Errorf("is empty: name the user the sidecar logs in as, or remove the annotation for the profile's")
	}
	return printableName(v)
}

// ValidateDatabaseName checks a database name: printable, no spaces, at most 128 characters.
func ValidateDatabaseName(v string) error {
	if v == "" {
		return fmt.Errorf("is empty: name the database to back up")
	}
	return printableName(v)
}

// printableName checks a name of the database's: printable, no spaces, at most 128 characters.
func printableName(v string) error {
	if len(v) > 128 {
		return fmt.Errorf("%q is longer than 128 characters", v)
	}
	if i := strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }); i >= 0 {
		return fmt.Errorf("%q contains a space or a control character at byte %d", v, i)
	}
	return nil
}
