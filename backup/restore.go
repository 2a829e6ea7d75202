package backup

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
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
	if cfg.Location == "" {
		cfg.Location = loc.String() // a full URL needs no BACKUP_LOCATION
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Read now, so that an unreadable password file fails before the download.
	if cfg.Password, err = cfg.password(); err != nil {
		return err
	}
	cfg.PasswordFile = ""
	eng := engines[cfg.Engine]
	bucket, err := loc.Open(ctx)
	if err != nil {
		return err
	}
	if name == "" {
		if name, err = latest(ctx, bucket, cfg.baseName(), eng.ext); err != nil {
			return fmt.Errorf("%s: %w", loc, err)
		}
	} else if _, _, ext, ok := parseBackupName(name); ok && ext != eng.ext {
		return fmt.Errorf("%s is a .%s backup, not one %s restores (.%s)", name, ext, eng.name, eng.ext)
	}
	url := loc.ObjectURL(name)
	log.Info("restoring", "object", url, "engine", cfg.Engine, "host", cfg.Host, "database", cfg.Database)
	start := time.Now()

	rd, err := bucket.Open(ctx, name)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	defer rd.Close()
	zr, err := gzip.NewReader(rd)
	if err != nil {
		return fmt.Errorf("%s: not a gzip file: %w", url, err)
	}
	cl, err := eng.client(&cfg, true, name)
	if err != nil {
		return err
	}
	defer cl.cleanup()
	prog := cl.prog
	cmd := command(ctx, prog, cl.args, cl.env)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	log.V(1).Info("running", "command", prog, "args", cl.args)
	if err := cmd.Start(); err != nil {
		return err
	}
	in := &errWriter{w: stdin}
	var sql io.Reader = zr
	if eng.name == "postgres" {
		sql = postgresRestoreInput(zr)
	}
	n, copyErr := io.Copy(in, sql)
	if copyErr != nil && in.err == nil {
		// The backup could not be read to its end (a truncated object, a bad checksum, the network). Closing
		// the client's input now would let it commit what it has read: kill it instead, so that the database
		// aborts the transaction.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = stdin.Close()
		_ = cmd.Wait()
		return fmt.Errorf("reading %s: %w; the restore was aborted (postgres: nothing changed)", url, copyErr)
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("restore interrupted: %w", context.Cause(ctx))
		}
		return fmt.Errorf("%s failed: %v: %s", filepath.Base(prog), err, stderr.String())
	}
	if copyErr != nil {
		return fmt.Errorf("%s stopped reading the backup: %w: %s", filepath.Base(prog), copyErr, stderr.String())
	}
	log.Info("restored", "object", url, "sqlBytes", n, "seconds", time.Since(start).Seconds())
	return nil
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
// timestamp in its name.
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
