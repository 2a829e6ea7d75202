package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/tandem-dev/tandem/backup/objstore"
)

// Verification restores a backup into a throwaway database server that tandem starts itself (a data directory in
// a temporary directory, a Unix socket, no TCP port, small memory settings), checks that every table of its
// manifest is there with the rows the manifest recorded and that the user's own checks hold, and removes the
// server, also when it is stopped half way. It reads the plaintext stream, as a restore does. Its result is
// written into the backup's manifest, so that restore --from latest takes the newest backup that verified.

// verifyNice is the scheduling priority of the throwaway server and the restore client: the database beside the
// sidecar keeps its share of the CPU.
const verifyNice = 10

// Verification results, as a manifest records them.
const (
	VerifyPassed = "passed"
	VerifyFailed = "failed"
)

// The reasons a verification fails, the values of the reason label of tandem_backup_verification_failures_total.
const (
	// ReasonManifest: the backup has no manifest, or it cannot be read.
	ReasonManifest = "manifest"
	// ReasonChecksum: the object does not have the size and SHA-256 its manifest recorded.
	ReasonChecksum = "checksum"
	// ReasonServer: the throwaway server could not be started; the backup itself is not at fault, and its
	// manifest records nothing.
	ReasonServer = "server"
	// ReasonRestore: the restore into the throwaway server failed.
	ReasonRestore = "restore"
	// ReasonRows: a table of the manifest is missing from the restored copy, or has other rows.
	ReasonRows = "rows"
	// ReasonCheck: one of the user's checks (BACKUP_VERIFY_QUERIES) did not return true.
	ReasonCheck = "check"
)

// verifyReasons are all the reasons, for the metric's series.
var verifyReasons = []string{ReasonManifest, ReasonChecksum, ReasonServer, ReasonSpace, ReasonRestore, ReasonRows, ReasonCheck}

// Verification is the result of a backup's last verification, as its manifest records it.
type Verification struct {
	Result string    `json:"result"`
	Reason string    `json:"reason,omitempty"`
	Error  string    `json:"error,omitempty"`
	At     time.Time `json:"at"`
	// Seconds is how long the verification took, the restore included.
	Seconds float64 `json:"seconds"`
	Tables  int     `json:"tables"`
	Rows    int64   `json:"rows"`
	Checks  int     `json:"checks,omitempty"`
	// By is the pod (or, outside a pod, the host) that verified it.
	By            string `json:"by,omitempty"`
	TandemVersion string `json:"tandemVersion,omitempty"`
}

// passed reports whether m records a verification that passed.
func (m *Manifest) passed() bool {
	return m != nil && m.Verification != nil && m.Verification.Result == VerifyPassed
}

// failedVerification reports whether m records a verification that failed.
func (m *Manifest) failedVerification() bool {
	return m != nil && m.Verification != nil && m.Verification.Result == VerifyFailed
}

// VerifyError is a verification that did not pass, and why (one of the Reason constants).
type VerifyError struct {
	Reason string
	Err    error
}

func (e *VerifyError) Error() string { return e.Err.Error() }
func (e *VerifyError) Unwrap() error { return e.Err }

func verifyErr(reason string, format string, args ...any) error {
	return &VerifyError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// VerifyResult is what a verification checked.
type VerifyResult struct {
	Name    string
	Tables  int
	Rows    int64
	Checks  int
	Elapsed time.Duration
}

// verifyFault, when a test sets it, runs after the restore into the throwaway server and before the checks: it
// damages the restored copy as a broken restore would.
var verifyFault func(ctx context.Context, srv scratchServer, database string) error

// Verify checks the backup opts.From against its manifest (size and SHA-256), restores it into a throwaway
// server, compares the tables and their rows with the manifest, runs the checks of cfg.VerifyQueries, and
// records the result in the backup's manifest. A backup without a manifest cannot be verified; an error is a
// *VerifyError, but for a --from that names no backup.
func Verify(ctx context.Context, cfg Config, opts RestoreOptions, log logr.Logger) (*VerifyResult, error) {
	loc, name, err := prepareFrom(&cfg, opts.From)
	if err != nil {
		return nil, err
	}
	if _, ok := scratchServers[cfg.Engine]; !ok {
		return nil, fmt.Errorf("tandem verifies postgres and mysql backups; %s backups are checked against their manifest (size and SHA-256) by restore, not restored to verify them", cfg.Engine)
	}
	b, err := locate(ctx, cfg, loc, name, log)
	if err != nil {
		return nil, err
	}
	return verifyBackup(ctx, cfg, b, log)
}

// verifyBackup verifies the backup b and records the result in its manifest, except when the throwaway server
// could not start, which says nothing of the backup.
func verifyBackup(ctx context.Context, cfg Config, b located, log logr.Logger) (*VerifyResult, error) {
	start := time.Now()
	m, res, err := restoreAndCheck(ctx, cfg, b, log)
	var ve *VerifyError
	if err != nil && !errors.As(err, &ve) {
		ve = &VerifyError{Reason: ReasonRestore, Err: err}
		err = ve
	}
	elapsed := time.Since(start)
	if m == nil || ctx.Err() != nil || (ve != nil && (ve.Reason == ReasonServer || ve.Reason == ReasonSpace)) {
		return res, err // nothing to record it in, or nothing learnt of the backup
	}
	v := &Verification{Result: VerifyPassed, At: time.Now().UTC(), Seconds: elapsed.Seconds(), By: verifierName(cfg),
		TandemVersion: cfg.TandemVersion}
	if res != nil {
		v.Tables, v.Rows, v.Checks = res.Tables, res.Rows, res.Checks
	}
	if ve != nil {
		v.Result, v.Reason, v.Error = VerifyFailed, ve.Reason, ve.Error()
	}
	m.Verification = v
	if rerr := putManifest(ctx, b.bucket, cfg.Dir, m); rerr != nil {
		log.Error(rerr, "verify: could not record the result in the backup's manifest", "object", b.url, "result", v.Result)
	}
	if err == nil { // logged once recorded, so that whoever reads the log finds the manifest saying so
		log.Info("verified", "object", b.url, "tables", res.Tables, "rows", res.Rows, "checks", res.Checks, "seconds", res.Elapsed.Seconds())
	}
	return res, err
}

// restoreAndCheck is the verification itself; it returns the backup's manifest when it could be read.
func restoreAndCheck(ctx context.Context, cfg Config, b located, log logr.Logger) (*Manifest, *VerifyResult, error) {
	bucket, name, url := b.bucket, b.name, b.url
	m, err := readManifest(ctx, bucket, name)
	if err != nil {
		return nil, nil, verifyErr(ReasonManifest, "%s: %w", url, err)
	}
	if m == nil {
		return nil, nil, verifyErr(ReasonManifest, "%s has no manifest (%s): there is nothing to verify it against", url, manifestName(name))
	}
	mismatch, err := compareWithManifest(ctx, bucket, name, url, m)
	switch {
	case err != nil:
		return m, nil, verifyErr(ReasonRestore, "%w", err)
	case mismatch != "":
		return m, nil, verifyErr(ReasonChecksum, "%s: %s; it is never the latest, and restore refuses it", url, mismatch)
	}
	if err := cfg.checkVerifySpace(name, m.DumpBytes); err != nil {
		return m, nil, err
	}
	sctx, stop := cfg.watchSpace(ctx)
	defer stop()
	res, err := restoreIntoScratch(sctx, cfg, b, m, log)
	if cause := context.Cause(sctx); err != nil && errors.Is(cause, errOutgrew) {
		err = verifyErr(ReasonSpace, "verifying %s: %w", name, cause)
	}
	return m, res, err
}

// restoreIntoScratch restores the backup b, which matches its manifest m, into a throwaway server and checks it.
func restoreIntoScratch(ctx context.Context, cfg Config, b located, m *Manifest, log logr.Logger) (*VerifyResult, error) {
	bucket, eng, name, url := b.bucket, b.eng, b.name, b.url
	sum := m.SHA256
	log.Info("verify: the backup matches its manifest", "object", url, "sha256", sum, "bytes", m.Bytes)
	start := time.Now()
	srv, err := scratchServers[eng.name](ctx, scratchParent(cfg.Dir), log)
	if err != nil {
		return nil, verifyErr(ReasonServer, "starting a throwaway server to verify %s: %w", name, err)
	}
	defer srv.remove(log)
	// A backup of one database restores into a database of that name; a backup of all (mysql) makes its own.
	database := ""
	if n, ok := parseBackupName(name); eng.name == "postgres" || !ok || n.base != "all" {
		database = "verify"
		if len(m.Databases) == 1 {
			database = m.Databases[0]
		}
	}
	if database != "" {
		if err := srv.createDatabase(ctx, database); err != nil {
			return nil, verifyErr(ReasonServer, "verifying %s: %w", name, err)
		}
	}
	backup, err := openBackup(ctx, bucket, name, url, sum)
	if err != nil {
		return nil, verifyErr(ReasonRestore, "%w", err)
	}
	defer backup.Close()
	scratch := srv.target(cfg, database)
	cl, err := eng.client(&scratch, true, name)
	if err != nil {
		return nil, verifyErr(ReasonRestore, "%w", err)
	}
	defer cl.cleanup()
	rc, err := startRestoreClient(ctx, cl, log)
	if err != nil {
		return nil, verifyErr(ReasonRestore, "%w", err)
	}
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, rc.cmd.Process.Pid, verifyNice)
	if _, err := rc.feed(ctx, url, restoreInput(eng, backup)); err != nil {
		reason := ReasonRestore
		if errors.Is(err, errObjectChanged) {
			reason = ReasonChecksum
		}
		return nil, verifyErr(reason, "verifying %s: the restore failed: %w", name, err)
	}
	log.Info("verify: restored into a throwaway server", "object", url, "seconds", time.Since(start).Seconds())
	if verifyFault != nil {
		if err := verifyFault(ctx, srv, database); err != nil {
			return nil, err
		}
	}
	var tables []tableRows
	for _, t := range m.Tables {
		if eng.name == "mysql" && database == "" && mysqlSystemTable(t.Name) {
			continue // the server's own, which it rewrites
		}
		tables = append(tables, t)
	}
	res := &VerifyResult{Name: name, Tables: len(tables)}
	if len(tables) > 0 {
		counts, err := srv.rowCounts(ctx, database, tables)
		if err != nil {
			return nil, verifyErr(ReasonRows, "verifying %s: counting the rows: %w", name, err)
		}
		var problems []string
		for _, t := range tables {
			got, ok := counts[t.Name]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("table %s is missing", t.Name))
			case got != t.Rows:
				problems = append(problems, fmt.Sprintf("table %s has %d rows, the manifest says %d", t.Name, got, t.Rows))
			default:
				res.Rows += got
				log.Info("verify: table checked", "table", t.Name, "rows", got)
			}
		}
		if len(problems) > 0 {
			return nil, verifyErr(ReasonRows, "verifying %s: %s", name, strings.Join(problems, "; "))
		}
	}
	for _, q := range cfg.VerifyQueries {
		out, err := srv.query(ctx, database, q)
		if err != nil {
			return nil, verifyErr(ReasonCheck, "verifying %s: the check %q failed: %w", name, q, err)
		}
		if got := strings.TrimSpace(out); !isTrue(got) {
			return nil, verifyErr(ReasonCheck, "verifying %s: the check %q returned %q, not true (BACKUP_VERIFY_QUERIES)", name, q, got)
		}
		res.Checks++
		log.Info("verify: check passed", "query", q)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// isTrue reports whether a check's output is one true value: t or true (postgres), 1 (mysql).
func isTrue(s string) bool {
	switch strings.ToLower(s) {
	case "t", "true", "1":
		return true
	}
	return false
}

// verifierName is who verified: the pod, or the host outside one.
func verifierName(cfg Config) string {
	if cfg.PodName != "" {
		return cfg.PodName
	}
	h, _ := os.Hostname()
	return h
}

// scratchServer is a throwaway database server that a backup is restored into to verify it.
type scratchServer interface {
	// createDatabase makes the database a backup of one database restores into.
	createDatabase(ctx context.Context, database string) error
	// target is cfg changed to restore into the server's database (empty: the databases the dump names), as
	// its superuser, through its socket.
	target(cfg Config, database string) Config
	// query runs one query in database (empty: none) and returns its rows, one per line, columns separated by
	// the engine client's separator.
	query(ctx context.Context, database, query string) (string, error)
	// rowCounts counts the rows of the tables, named as the dump names them (in database, for a dump of one); a
	// table that is not there is left out of the result.
	rowCounts(ctx context.Context, database string, tables []tableRows) (map[string]int64, error)
	// remove stops the server and deletes its directories.
	remove(log logr.Logger)
}

// scratchServers start a throwaway server of each engine tandem verifies, in a new directory under parent.
var scratchServers = map[string]func(ctx context.Context, parent string, log logr.Logger) (scratchServer, error){
	"postgres": startScratchPostgres,
	"mysql":    startScratchMariaDB,
}

// putManifest writes m to the bucket, and beside its backup in dir when the backup is still there.
func putManifest(ctx context.Context, b objstore.Bucket, dir string, m *Manifest) error {
	if _, err := os.Stat(filepath.Join(dir, m.Name)); err == nil {
		if err := writeLocalManifest(dir, m); err != nil {
			return err
		}
	}
	data, err := encodeManifest(m)
	if err != nil {
		return err
	}
	_, err = objstore.Put(ctx, b, manifestName(m.Name), bytes.NewReader(data), objstore.CreateOptions{ContentType: "application/json"})
	return err
}

// verifyStep is the sidecar's verification after a backup landed: unless BACKUP_VERIFY is off, or its period
// has not passed since the last one, it verifies the newest backup at the location that has no verification
// recorded (normally the one that just landed), logs and counts the result, and returns the failure.
func (r *Runner) verifyStep(ctx context.Context) error {
	period, on := r.cfg.verifyPeriod()
	if !on || ctx.Err() != nil {
		return nil
	}
	if _, ok := scratchServers[r.eng.name]; !ok {
		if r.verifiedAt.IsZero() {
			r.log.Info("this engine's backups are not verified (tandem starts no " + r.eng.name + " server): each is checked against its manifest when it is restored")
			r.verifiedAt = time.Now()
		}
		return nil
	}
	if period > 0 && !r.verifiedAt.IsZero() && time.Since(r.verifiedAt) < period {
		return nil
	}
	bucket, err := objstore.Open(ctx, r.loc)
	if err != nil {
		r.log.Error(err, "verify: cannot open the backup location; the next backup is verified instead", "location", r.loc.String())
		return nil
	}
	name, err := newestUnverified(ctx, bucket, r.cfg.baseName(), r.eng.ext)
	if err != nil {
		r.log.Error(err, "verify: cannot list the backup location; the next backup is verified instead", "location", r.loc.String())
		return nil
	}
	if name == "" {
		return nil
	}
	r.verifiedAt = time.Now()
	url := r.loc.ObjectURL(name)
	r.log.Info("verify: restoring the backup into a throwaway server", "object", url)
	res, err := verifyBackup(ctx, r.cfg, located{bucket: bucket, eng: r.eng, name: name, url: url}, r.log)
	elapsed := time.Since(r.verifiedAt)
	if ctx.Err() != nil {
		r.log.Info("verification interrupted; the throwaway server was removed", "object", url)
		return nil
	}
	if err != nil {
		reason := ReasonRestore
		var ve *VerifyError
		if errors.As(err, &ve) {
			reason = ve.Reason
		}
		r.metrics.verifyFailed(reason, err, elapsed)
		r.log.Error(err, "verification failed: this backup is never the latest", "object", url, "reason", reason)
		return err
	}
	r.metrics.verified(res.Elapsed)
	if m, err := readManifest(ctx, bucket, name); err == nil && m != nil {
		r.lastVerified = m
	}
	return nil
}

// newestUnverified is the newest complete backup of base at the location with no verification recorded that is
// newer than the newest one that passed, or "" when there is none. Backups that failed are passed over: one that
// failed (a tampered object named as if taken later, say) never stops the next ones from being verified.
func newestUnverified(ctx context.Context, b objstore.Bucket, base, ext string) (string, error) {
	backups, err := listRemote(ctx, b, base, ext)
	if err != nil {
		return "", err
	}
	for _, bk := range backups {
		if !bk.complete {
			continue
		}
		m, err := readManifest(ctx, b, bk.key)
		if err != nil || m == nil {
			continue
		}
		switch {
		case m.passed():
			return "", nil
		case m.Verification == nil:
			return bk.key, nil
		}
	}
	return "", nil
}
