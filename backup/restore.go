package backup

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/tandem-dev/tandem/backup/objstore"
)

// Latest is the --from value that restores the newest backup of the database at the configured location.
const Latest = "latest"

// Restore streams a backup from the bucket, through gunzip, into the database cfg names, with the engine's
// client (psql in one transaction that stops at the first error, for postgres; mysql for mysql; mongorestore
// --archive --drop for mongodb). from is
// Latest, the URL of an object (s3://bucket/prefix/db-20260102T030405Z.sql.gz), or the name of an object at
// cfg.Location. The backup is never held in memory or written to disk.
func Restore(ctx context.Context, cfg Config, from string, log logr.Logger) error {
	loc, name, err := resolveFrom(cfg.Location, from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if err := prepareRestoreConfig(&cfg, loc); err != nil {
		return err
	}
	eng := engines[cfg.Engine]
	bucket, err := objstore.Open(ctx, loc)
	if err != nil {
		return err
	}
	if name, err = chooseBackup(ctx, bucket, loc, eng, cfg.baseName(), name); err != nil {
		return err
	}
	url := loc.ObjectURL(name)
	takenBy := "unknown" // a backup taken outside a pod, or by an earlier version
	if n, ok := parseBackupName(name); ok && n.pod != "" {
		takenBy = n.pod
	}
	log.Info("restoring", "object", url, "takenByPod", takenBy, "engine", cfg.Engine, "host", cfg.Host, "database", cfg.Database)
	start := time.Now()
	backup, err := openBackup(ctx, bucket, name, url)
	if err != nil {
		return err
	}
	defer backup.Close()
	cl, err := eng.client(&cfg, true, name)
	if err != nil {
		return err
	}
	defer cl.cleanup()
	rc, err := startRestoreClient(ctx, cl, log)
	if err != nil {
		return err
	}
	var input io.Reader = backup
	if eng.name == "postgres" {
		input = postgresRestoreInput(backup)
	}
	n, err := rc.feed(ctx, url, input)
	if err != nil {
		return err
	}
	log.Info("restored", "object", url, "sqlBytes", n, "seconds", time.Since(start).Seconds())
	return nil
}

// prepareRestoreConfig completes cfg for a restore from loc and checks it.
func prepareRestoreConfig(cfg *Config, loc Location) error {
	if cfg.Location == "" {
		cfg.Location = loc.String() // a full URL needs no BACKUP_LOCATION
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Read now, so that an unreadable password file fails before the download.
	password, err := cfg.password()
	if err != nil {
		return err
	}
	cfg.Password, cfg.PasswordFile = password, ""
	return nil
}

// chooseBackup is the backup to restore: name, which must be one eng restores, or when name is empty the newest
// backup of the database base at loc.
func chooseBackup(ctx context.Context, bucket objstore.Bucket, loc Location, eng *engine, base, name string) (string, error) {
	if name != "" {
		if n, ok := parseBackupName(name); ok && n.ext != eng.ext {
			return "", fmt.Errorf("%s is a .%s backup, not one %s restores (.%s)", name, n.ext, eng.name, eng.ext)
		}
		return name, nil
	}
	newest, err := latest(ctx, bucket, base, eng.ext)
	if err != nil {
		return "", fmt.Errorf("%s: %w", loc, err)
	}
	return newest, nil
}

// openBackup opens the object name (at url) and reads it through gunzip; closing what it returns closes the
// object.
func openBackup(ctx context.Context, bucket objstore.Bucket, name, url string) (io.ReadCloser, error) {
	obj, err := bucket.Open(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	zr, err := gzip.NewReader(obj)
	if err != nil {
		obj.Close()
		return nil, fmt.Errorf("%s: not a gzip file: %w", url, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, obj}, nil
}

// restoreClient is a restore program that has started, reading the backup on its standard input, in.
type restoreClient struct {
	prog   string
	cmd    *exec.Cmd
	in     io.WriteCloser
	stderr *tailBuffer
}

func startRestoreClient(ctx context.Context, cl client, log logr.Logger) (*restoreClient, error) {
	cmd := command(ctx, cl.prog, cl.args, cl.env)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	log.V(1).Info("running", "command", cl.prog, "args", cl.args)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &restoreClient{prog: cl.prog, cmd: cmd, in: in, stderr: stderr}, nil
}

// feed copies backup (the object at url) to the client's standard input and waits for the client to exit. It
// returns how many bytes it copied.
func (c *restoreClient) feed(ctx context.Context, url string, backup io.Reader) (int64, error) {
	in := &errWriter{w: c.in}
	n, copyErr := io.Copy(in, backup)
	if copyErr != nil && in.err == nil {
		// The backup could not be read to its end (a truncated object, a bad checksum, the network). Closing
		// the client's input now would let it commit what it has read: kill it instead, so that the database
		// aborts the transaction.
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		_ = c.in.Close()
		_ = c.cmd.Wait()
		return n, fmt.Errorf("reading %s: %w; the restore was aborted (postgres: nothing changed)", url, copyErr)
	}
	_ = c.in.Close()
	if err := c.cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return n, fmt.Errorf("restore interrupted: %w", context.Cause(ctx))
		}
		return n, fmt.Errorf("%s failed: %v: %s", filepath.Base(c.prog), err, c.stderr.String())
	}
	if copyErr != nil {
		return n, fmt.Errorf("%s stopped reading the backup: %w: %s", filepath.Base(c.prog), copyErr, c.stderr.String())
	}
	return n, nil
}

// resolveFrom reads --from: the location and the object's name, empty for the latest.
func resolveFrom(location, from string) (Location, string, error) {
	switch {
	case from == "":
		return Location{}, "", errors.New(`required: "latest", an object's URL, or a backup's name`)
	case strings.Contains(from, "://"):
		return SplitObjectURL(from)
	case location == "":
		return Location{}, "", fmt.Errorf("%q is not a URL, and BACKUP_LOCATION (--location) is not set", from)
	}
	loc, err := ParseLocation(location)
	if err != nil {
		return Location{}, "", fmt.Errorf("BACKUP_LOCATION: %w", err)
	}
	if from == Latest {
		return loc, "", nil
	}
	if strings.Contains(from, "/") {
		return Location{}, "", fmt.Errorf("%q: give a URL, or the name of a backup at %s", from, loc)
	}
	return loc, from, nil
}

// latest is the name of the newest backup of the database base with extension ext in the bucket, by the
// timestamp in its name, whichever pod took it (with several pods backing up one database, the newest of any).
func latest(ctx context.Context, b objstore.Bucket, base, ext string) (string, error) {
	backups, err := listRemote(ctx, b, base, ext)
	if err != nil {
		return "", err
	}
	if len(backups) == 0 {
		return "", fmt.Errorf("no backup of %q (%s-<timestamp>.%s.gz) found", base, base, ext)
	}
	return backups[0].key, nil
}
