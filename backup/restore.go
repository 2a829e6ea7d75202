package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/tandem-dev/tandem/backup/codec"
	"github.com/tandem-dev/tandem/backup/objstore"
)

// Latest is the --from value that restores the newest backup of the database at the configured location.
const Latest = "latest"

// RestoreOptions say which backup Restore restores, and how far it trusts it.
type RestoreOptions struct {
	// From is Latest, the URL of an object (s3://bucket/prefix/db-20260102T030405Z.sql.zst), or the name of an
	// object at the configured location.
	From string
	// Unverified restores a backup whose manifest is unreadable or does not match it, knowingly.
	Unverified bool
}

// Restore streams a backup from the bucket, decompressed (zstd; gzip for .gz), into the database cfg names, with
// the engine's client (psql in one transaction that stops at the first error, for postgres; mysql for mysql;
// mongorestore --archive --drop for mongodb). The latest is the newest backup with a manifest. Before the database is
// touched, the object is read once and checked against its manifest's SHA-256 and size; a backup that does not
// match is refused, and the restore checks the SHA-256 again as it streams (postgres: a mismatch there aborts
// the transaction). The backup is never held in memory or written to disk.
func Restore(ctx context.Context, cfg Config, opts RestoreOptions, log logr.Logger) error {
	loc, name, err := prepareFrom(&cfg, opts.From)
	if err != nil {
		return err
	}
	// Read now, so that an unreadable password file fails before the store is even asked.
	password, err := cfg.password()
	if err != nil {
		return err
	}
	cfg.Password, cfg.PasswordFile = password, ""
	b, err := locate(ctx, cfg, loc, name, log)
	if err != nil {
		return err
	}
	bucket, eng, name, url := b.bucket, b.eng, b.name, b.url
	sum, err := checkAgainstManifest(ctx, bucket, name, url, opts.Unverified, log)
	if err != nil {
		return err
	}
	takenBy := "unknown" // a backup taken outside a pod, or by an earlier version
	if n, ok := parseBackupName(name); ok && n.pod != "" {
		takenBy = n.pod
	}
	log.Info("restoring", "object", url, "takenByPod", takenBy, "engine", cfg.Engine, "host", cfg.Host, "database", cfg.Database)
	start := time.Now()
	backup, err := openBackup(ctx, bucket, name, url, sum)
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
	n, err := rc.feed(ctx, url, restoreInput(eng, backup))
	if err != nil {
		return err
	}
	log.Info("restored", "object", url, "sqlBytes", n, "seconds", time.Since(start).Seconds())
	return nil
}

// restoreInput is what the engine's restore client reads of backup.
func restoreInput(eng *engine, backup io.Reader) io.Reader {
	if eng.name == "postgres" {
		return postgresRestoreInput(backup)
	}
	return backup
}

// located is the one backup a restore or a verification reads.
type located struct {
	bucket    objstore.Bucket
	eng       *engine
	name, url string
}

// prepareFrom reads --from (from) and completes and checks cfg for it: the location, and the backup's name (empty
// for the latest).
func prepareFrom(cfg *Config, from string) (Location, string, error) {
	loc, name, err := resolveFrom(cfg.Location, from)
	if err != nil {
		return Location{}, "", fmt.Errorf("--from: %w", err)
	}
	if cfg.Location == "" {
		cfg.Location = loc.String() // a full URL needs no BACKUP_LOCATION
	}
	return loc, name, cfg.Validate()
}

// locate chooses the backup at loc that prepareFrom named: that one, or the latest.
func locate(ctx context.Context, cfg Config, loc Location, name string, log logr.Logger) (located, error) {
	eng := engines[cfg.Engine]
	bucket, err := objstore.Open(ctx, loc)
	if err != nil {
		return located{}, err
	}
	if name != "" {
		if n, ok := parseBackupName(name); ok && n.ext != eng.ext {
			return located{}, fmt.Errorf("%s is a .%s backup, not one %s restores (.%s)", name, n.ext, eng.name, eng.ext)
		}
		return located{bucket: bucket, eng: eng, name: name, url: loc.ObjectURL(name)}, nil
	}
	name, unverified, newer, err := latest(ctx, bucket, cfg.baseName(), eng.ext)
	if err != nil {
		return located{}, fmt.Errorf("%s: %w", loc, err)
	}
	b := located{bucket: bucket, eng: eng, name: name, url: loc.ObjectURL(name)}
	switch {
	case unverified:
		log.Info("the latest backup has not been verified: no backup at the location has passed verification", "object", b.url)
	case newer != "":
		log.Info("the latest backup is the newest that passed verification; newer ones have not been verified (yet): to take one, name it with --from",
			"object", b.url, "newestUnverified", newer)
	}
	return b, nil
}

// openBackup opens the object name (at url) and reads it decompressed, by the codec its name ends with (.zst,
// or .gz for backups written before zstd); closing what it returns closes the object. With a SHA-256 (hex) to
// match, the object's end is an error unless its bytes sum to it.
func openBackup(ctx context.Context, bucket objstore.Bucket, name, url, sum string) (io.ReadCloser, error) {
	c := codec.Gzip // a name tandem did not write: gzip, as every backup before zstd
	if n, ok := parseBackupName(name); ok {
		c = n.codec
	}
	obj, err := bucket.Open(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	var raw io.Reader = obj
	if sum != "" {
		raw = &checkedReader{r: obj, h: sha256.New(), want: sum}
	}
	zr, err := c.NewReader(raw)
	if err != nil {
		obj.Close()
		return nil, fmt.Errorf("%s: not a %s file: %w", url, c.Name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, closers{zr, obj}}, nil
}

// closers closes each of its closers, and returns the first error.
type closers []io.Closer

func (cs closers) Close() error {
	var first error
	for _, c := range cs {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
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

// latest is the backup restore --from latest takes, by the timestamps in the names, whichever pod took it (with
// several pods backing up one database, the newest of any): the newest backup of the database base with
// extension ext that passed verification and is not suspect. Backups that failed verification are never taken.
// When none passed (verification is off, or the engine's backups are not verified), it is the newest complete
// backup (one whose manifest landed) that is not suspect, and unverified says so; newer, when not empty, is the
// newest backup that was passed over because it is not verified yet.
func latest(ctx context.Context, b objstore.Bucket, base, ext string) (name string, unverified bool, newer string, err error) {
	backups, err := listRemote(ctx, b, base, ext)
	if err != nil {
		return "", false, "", err
	}
	if len(backups) == 0 {
		return "", false, "", fmt.Errorf("no backup of %q (%s-<timestamp>.%s.zst, or .gz) found", base, base, ext)
	}
	var suspect, failed []string
	fallback := ""
	for _, bk := range backups {
		if !bk.complete {
			continue
		}
		m, err := readManifest(ctx, b, bk.key)
		switch {
		case err != nil || m == nil:
			continue // not a backup tandem can trust: an older one is the latest
		case m.failedVerification():
			failed = append(failed, bk.key)
		case m.Suspect != "":
			suspect = append(suspect, bk.key)
		case m.passed():
			return bk.key, false, fallback, nil
		case fallback == "":
			fallback = bk.key
		}
	}
	if fallback != "" {
		return fallback, true, "", nil
	}
	if len(suspect) > 0 {
		return "", false, "", fmt.Errorf("every backup of %q with a manifest is suspect (much smaller than the one before it) or failed verification, the newest suspect %s: "+
			"if that is what the database holds, restore it by name: --from %s", base, suspect[0], suspect[0])
	}
	if len(failed) > 0 {
		return "", false, "", fmt.Errorf("every backup of %q with a manifest failed verification, the newest %s (its manifest says why): "+
			"restore one by name, knowingly: --from %s", base, failed[0], failed[0])
	}
	return "", false, "", fmt.Errorf("no backup of %q has a manifest (%s): the newest, %s, was written before manifests existed or its upload "+
		"did not finish; restore it by name, unchecked: --from %s", base, manifestSuffix, backups[0].key, backups[0].key)
}

// checkAgainstManifest reads the manifest of the backup name (at url) and the whole object once, and returns
// the object's SHA-256 when it matches the manifest's, before anything is restored. A backup whose manifest is
// unreadable or does not match is refused, unless unverified says to restore it knowingly; one without a
// manifest is restored unchecked (then, as with unverified, the returned sum is empty: nothing to check while
// streaming).
func checkAgainstManifest(ctx context.Context, b objstore.Bucket, name, url string, unverified bool, log logr.Logger) (string, error) {
	refuse := func(why string) (string, error) {
		if unverified {
			log.Info("restoring a backup that does not match its manifest, as --unverified says", "object", url, "problem", why)
			return "", nil
		}
		return "", fmt.Errorf("%s: %s; nothing was restored: restore another backup (--from NAME), or this one knowingly with --unverified", url, why)
	}
	m, err := readManifest(ctx, b, name)
	switch {
	case err != nil:
		return refuse(fmt.Sprintf("its manifest cannot be read: %v", err))
	case m == nil:
		// Named, since the latest always has one: a backup written before manifests existed.
		log.Info("restoring a backup that has no manifest, unchecked (written before manifests existed, or its upload did not finish)", "object", url)
		return "", nil
	}
	mismatch, err := compareWithManifest(ctx, b, name, url, m)
	if err != nil {
		return "", err
	}
	if mismatch != "" {
		return refuse(mismatch)
	}
	log.Info("the backup matches its manifest", "object", url, "sha256", m.SHA256, "bytes", m.Bytes)
	return m.SHA256, nil
}

// compareWithManifest reads the whole object name (at url) once and says how it differs from what its manifest m
// recorded (its size and SHA-256); "" when it does not.
func compareWithManifest(ctx context.Context, b objstore.Bucket, name, url string, m *Manifest) (string, error) {
	obj, err := b.Open(ctx, name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", url, err)
	}
	defer obj.Close()
	h := sha256.New()
	n, err := io.Copy(h, obj)
	if err != nil {
		return "", fmt.Errorf("reading %s to check it: %w", url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 || n != m.Bytes {
		return fmt.Sprintf("its %d bytes have SHA-256 %s, but its manifest says %d bytes with %s: the object changed or was damaged after it was written",
			n, got, m.Bytes, m.SHA256), nil
	}
	return "", nil
}

// errObjectChanged is a backup's object read to its end with a SHA-256 other than its manifest's.
var errObjectChanged = errors.New("the object changed while it was restored")

// checkedReader reads r and turns its end into an error unless what it read sums to want.
type checkedReader struct {
	r    io.Reader
	h    hash.Hash
	want string
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.want {
			return n, fmt.Errorf("%w: its SHA-256 is now %s, not %s", errObjectChanged, got, c.want)
		}
	}
	return n, err
}
