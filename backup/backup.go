package backup

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tandem-dev/tandem/backup/objstore"
	"github.com/tandem-dev/tandem/internal/contract"
)

// Runner takes backups: it dumps, uploads and prunes, once or on an interval.
type Runner struct {
	cfg     Config
	eng     *engine
	loc     Location
	log     logr.Logger
	metrics *Metrics

	// Backoff between upload attempts within a pass, and between passes that failed. Step advances a
	// wait.Backoff, so each sequence of retries steps a copy of its own.
	uploadBackoff, passBackoff wait.Backoff
	// databaseWait is how long Run waits for the database before its first dump.
	databaseWait time.Duration
	// previous and lastVerified are the manifests of the last backup and of the last one that passed
	// verification; the next dump's size is compared with the latter, or the former when none passed. Read from
	// the directory at the first dump.
	previous, lastVerified *Manifest
	previousLoaded         bool
	// verifiedAt is when this sidecar last verified a backup, for a verification period.
	verifiedAt time.Time
}

// sizeReference returns the manifest the next dump's size is compared with, and what it is. At the first dump it
// reads the manifests of the local copies, or, with none, those of the newest backups at the location (bucket;
// nil when it could not be opened, and then it tries again at the next dump).
func (r *Runner) sizeReference(ctx context.Context, bucket objstore.Bucket) (*Manifest, string) {
	if !r.previousLoaded {
		r.previousLoaded = r.loadPrevious(ctx, bucket)
	}
	if r.lastVerified != nil {
		return r.lastVerified, "the last verified backup"
	}
	return r.previous, "the backup before it"
}

// referenceDepth is how many of the newest complete backups at the location the first dump reads the manifest
// of, to find the last verified one.
const referenceDepth = 20

// loadPrevious finds the last backup and the last verified one, and reports whether it could look.
func (r *Runner) loadPrevious(ctx context.Context, bucket objstore.Bucket) bool {
	backups, _ := listLocal(r.cfg.Dir)
	for _, b := range backups {
		m, err := readLocalManifest(r.cfg.Dir, b.name)
		if err != nil || m == nil {
			continue
		}
		if r.previous == nil {
			r.previous = m
		}
		if m.passed() {
			r.lastVerified = m
			return true
		}
	}
	if r.previous != nil {
		return true
	}
	if bucket == nil {
		return false
	}
	remote, err := listRemote(ctx, bucket, r.cfg.baseName(), r.eng.ext)
	if err != nil {
		r.log.Error(err, "cannot list the backup location to compare this dump's size with the last backup's", "location", r.loc.String())
		return false
	}
	read := 0
	for _, b := range remote {
		if !b.complete || read == referenceDepth {
			continue
		}
		read++
		m, err := readManifest(ctx, bucket, b.key)
		if err != nil || m == nil {
			continue
		}
		if r.previous == nil {
			r.previous = m
		}
		if m.passed() {
			r.lastVerified = m
			break
		}
	}
	return true
}

// localRoom reports whether the next dump also writes a local copy, and how large it may grow (0: no limit):
// BACKUP_KEEP is above 0 and, once uploaded backups beyond the newest keep-1 are pruned, the directory holds fewer
// than keep, and room for one as large as the last backup within BACKUP_DIR_SIZE_LIMIT. So the directory never
// holds more than keep backups, the one being written included; when the ones there have not been uploaded yet
// (the location is down), the next dump streams to the location only, and they are kept.
func (r *Runner) localRoom() (bool, int64) {
	if r.cfg.Keep == 0 {
		return false, 0
	}
	if removed, err := prune(r.cfg.Dir, r.cfg.Keep-1); err != nil {
		r.log.Error(err, "pruning the backups directory")
	} else if len(removed) > 0 {
		r.log.Info("pruned uploaded backups to make room for the next one", "keep", r.cfg.Keep, "removed", removed)
	}
	backups, err := listLocal(r.cfg.Dir)
	if err != nil {
		r.log.Error(err, "listing the backups directory; this backup streams to the location only")
		return false, 0
	}
	if len(backups) >= r.cfg.Keep {
		r.log.Info("the backups directory holds BACKUP_KEEP backups not uploaded yet; this one streams to the location only, without a local copy",
			"keep", r.cfg.Keep, "pending", len(backups))
		return false, 0
	}
	if r.cfg.DirSizeLimit == 0 {
		return true, 0
	}
	budget := r.cfg.usable() - usage(r.cfg.Dir)
	if last := r.previous; last != nil && last.Bytes > budget {
		r.log.Info("no room for a local copy as large as the last backup within BACKUP_DIR_SIZE_LIMIT; this one streams to the location only",
			"last", bytesString(last.Bytes), "room", bytesString(max(budget, 0)), "limit", bytesString(r.cfg.DirSizeLimit))
		return false, 0
	}
	return budget > 0, budget
}

// DatabaseWait is how long the sidecar waits, before its first dump, for the database to accept connections. A
// native sidecar starts before the database's container does, and a database restoring or recovering takes a
// while: a dump at once would fail, and count as a failure, while the database is only starting. After the wait
// it dumps all the same, and a dump that fails is retried as always.
const DatabaseWait = 5 * time.Minute

// NewRunner checks cfg and returns a Runner for it. metrics may be nil.
func NewRunner(cfg Config, log logr.Logger, metrics *Metrics) (*Runner, error) {
	if err := cfg.ValidateForBackup(); err != nil {
		return nil, err
	}
	loc, err := ParseLocation(cfg.Location)
	if err != nil {
		return nil, err
	}
	// A password file that cannot be read fails at start, not at the first backup a day later.
	if _, err := cfg.password(); err != nil {
		return nil, err
	}
	return &Runner{
		cfg: cfg, eng: engines[cfg.Engine], loc: loc, log: log, metrics: metrics,
		uploadBackoff: jitteredBackoff(time.Second, time.Minute),
		passBackoff:   jitteredBackoff(30*time.Second, cfg.Interval),
		databaseWait:  DatabaseWait,
	}, nil
}

// RunSidecar is `tandem backup` as a sidecar: Run with cfg until ctx is cancelled, surviving what it cannot
// fix. A sidecar that exits is restarted by the kubelet and, while it crash-loops, makes the database's pod
// NotReady (a native sidecar holds back the containers after it), so a configuration it cannot back up with, a
// password file or a directory that is not there, is logged, counted (failures_total{stage="start"}), reported
// by /healthz, and tried again with backoff (a mounted file may appear) until SIGTERM. cfgErr is an error of
// reading the configuration, which no retry mends.
func RunSidecar(ctx context.Context, cfg Config, cfgErr error, log logr.Logger, metrics *Metrics) {
	retry := jitteredBackoff(30*time.Second, 5*time.Minute)
	for {
		err := cfgErr
		if err == nil {
			var r *Runner
			if r, err = NewRunner(cfg, log, metrics); err == nil {
				err = r.Run(ctx)
			}
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		metrics.block(err)
		delay := retry.Step()
		log.Error(err, "cannot back up; the sidecar keeps running, so the database's pod stays Ready, and tries again", "retryIn", delay.String())
		if !sleep(ctx, delay) {
			log.Info("stopping")
			return
		}
	}
}

// Once takes one backup: dump it to the location, upload every local copy not uploaded yet, prune. It fails when
// the dump failed, or it did not land and has no local copy, or a local copy did not land within UploadRetryFor;
// a local copy that did not land stays in the directory for the next run.
func (r *Runner) Once(ctx context.Context) error {
	if err := r.prepare(); err != nil {
		return err
	}
	dumped, dumpErr := r.dumpStep(ctx)
	_, landed, uploadErr := r.uploadPending(ctx)
	if dumped {
		landed++
	}
	if landed > 0 {
		_, _ = r.applyRetention(ctx) // logged and counted; a backup that landed is a success
	}
	var verifyErr error
	if landed > 0 {
		verifyErr = r.verifyStep(ctx)
	}
	pruneErr := r.pruneStep()
	return errors.Join(dumpErr, uploadErr, verifyErr, pruneErr)
}

// Run takes a backup every Interval until ctx is cancelled, which is not an error. A dump that fails, or that
// could not be stored and has no local copy, is tried again after a backoff (30 s, doubling, at most the
// interval): the database is dumped again, since nothing else holds that backup. A local copy that did not land
// is uploaded again after a backoff of its own, without dumping again. When the directory already holds a backup younger than
// the interval (the container restarted, the pod did not), the first dump waits until that one is due.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.prepare(); err != nil {
		return err
	}
	r.metrics.block(nil)
	if idle, why := r.idle(); idle {
		r.log.Info("this pod does not back up: "+why+"; the sidecar stays idle (tandem restore still works here)", "members", r.cfg.Members, "podIndex", r.cfg.PodIndex)
		r.metrics.setIdle()
		<-ctx.Done()
		r.log.Info("stopping")
		return nil
	}
	now := time.Now()
	nextDump := now
	if last, name, where := r.lastBackup(ctx); !last.IsZero() {
		if due := last.Add(r.cfg.Interval); due.After(now) {
			nextDump = due
			r.log.Info("a recent backup is "+where+"; waiting until the next one is due", "backup", name, "next", due.Format(time.RFC3339))
		}
	}
	if !nextDump.After(now) {
		r.awaitDatabase(ctx)
	}
	var nextUpload time.Time // zero: nothing pending
	dumpRetry, uploadRetry := r.passBackoff, r.passBackoff
	for {
		wake := nextDump
		if !nextUpload.IsZero() && nextUpload.Before(wake) {
			wake = nextUpload
		}
		if !sleep(ctx, time.Until(wake)) {
			r.log.Info("stopping")
			return nil
		}
		dumped := false
		if started := time.Now(); !started.Before(nextDump) {
			var err error
			if dumped, err = r.dumpStep(ctx); err != nil {
				if ctx.Err() != nil {
					r.log.Info("stopping; the interrupted dump was removed")
					return nil
				}
				nextDump = time.Now().Add(dumpRetry.Step())
				r.log.Info("will try the dump again", "at", nextDump.Format(time.RFC3339))
			} else {
				dumpRetry = r.passBackoff
				nextDump = started.Add(r.cfg.Interval)
			}
		}
		pending, landed, _ := r.uploadPending(ctx)
		if dumped {
			landed++
		}
		if landed > 0 && ctx.Err() == nil {
			_, _ = r.applyRetention(ctx)
			_ = r.verifyStep(ctx) // logged and counted
		}
		if ctx.Err() != nil {
			_ = r.pruneStep() // local and quick: what landed before the stop is pruned as usual
			r.log.Info("stopping")
			return nil
		}
		if pending > 0 {
			nextUpload = time.Now().Add(uploadRetry.Step())
			r.log.Info("backups not uploaded yet are kept and will be uploaded again", "count", pending, "at", nextUpload.Format(time.RFC3339))
		} else {
			uploadRetry, nextUpload = r.passBackoff, time.Time{}
		}
		_ = r.pruneStep()
		// The pass's buffers (the parts, zstd's window, verification's) are garbage now; handing their pages
		// back at once keeps the sidecar near its idle size between backups (BenchmarkSidecarFootprint's
		// idle-RssAnon-MiB), rather than at its peak until the runtime's scavenger gets to them.
		debug.FreeOSMemory()
	}
}

// lastBackup is when this pod's newest backup was taken, by its name, and where it is: its local copy, or else
// the location (a sidecar restarted in a new pod, or one without local copies). Zero when there is none, or the
// location cannot be listed (then the first dump is taken at once).
func (r *Runner) lastBackup(ctx context.Context) (time.Time, string, string) {
	if backups, err := listLocal(r.cfg.Dir); err == nil && len(backups) > 0 {
		return backups[0].time, backups[0].name, "in the directory"
	}
	bucket, err := objstore.Open(ctx, r.loc)
	if err != nil {
		return time.Time{}, "", ""
	}
	remote, err := listRemote(ctx, bucket, r.cfg.baseName(), r.eng.ext)
	if err != nil {
		r.log.Error(err, "cannot list the backup location to learn when the last backup was; backing up now", "location", r.loc.String())
		return time.Time{}, "", ""
	}
	for _, b := range remote {
		if n, _ := parseBackupName(b.key); b.complete && n.pod == r.cfg.PodName {
			return b.time, b.key, "at the location"
		}
	}
	return time.Time{}, "", ""
}

// idle reports whether this pod is not the member that backs up, and why. With members "first", a pod without a
// StatefulSet index backs up all the same (with a warning), since a missing backup is worse than a second one.
func (r *Runner) idle() (bool, string) {
	if r.cfg.Members != contract.MembersFirst {
		return false, ""
	}
	if r.cfg.PodIndex == "" {
		r.log.Info("BACKUP_MEMBERS is first, but this pod has no StatefulSet index (no " + contract.PodIndexLabel + " label): backing up as if it were the first")
		return false, ""
	}
	if r.cfg.PodIndex == "0" {
		return false, ""
	}
	return true, fmt.Sprintf("it is member %s of its StatefulSet, and only member 0 backs up (BACKUP_MEMBERS=first)", r.cfg.PodIndex)
}

// awaitDatabase waits until the database accepts TCP connections, for at most databaseWait. A database reached
// through a Unix socket (a host that is a path) is not waited for.
func (r *Runner) awaitDatabase(ctx context.Context) {
	if r.databaseWait <= 0 || strings.HasPrefix(r.cfg.Host, "/") {
		return
	}
	addr := net.JoinHostPort(r.cfg.Host, strconv.Itoa(r.cfg.port()))
	var lastErr error
	dialer := net.Dialer{Timeout: 2 * time.Second}
	err := wait.PollUntilContextTimeout(ctx, time.Second, r.databaseWait, true, func(ctx context.Context) (bool, error) {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			if lastErr == nil {
				r.log.Info("waiting for the database to accept connections before the first backup", "address", addr, "atMost", r.databaseWait.String(), "reason", err.Error())
			}
			lastErr = err
			return false, nil
		}
		_ = conn.Close()
		return true, nil
	})
	switch {
	case ctx.Err() != nil:
	case err != nil:
		r.log.Info("the database does not accept connections yet; dumping all the same", "address", addr, "waited", r.databaseWait.String(), "reason", lastErr.Error())
	case lastErr != nil:
		r.log.Info("the database accepts connections", "address", addr)
	}
}

// prepare checks the directory and removes the partial files of a sidecar that was killed mid-dump.
func (r *Runner) prepare() error {
	st, err := os.Stat(r.cfg.Dir)
	if err != nil {
		return fmt.Errorf("BACKUP_DIR (--dir): %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("BACKUP_DIR (--dir): %s is not a directory", r.cfg.Dir)
	}
	removed, err := removePartials(r.cfg.Dir)
	if len(removed) > 0 {
		r.log.Info("removed the partial files of an interrupted dump", "files", removed)
	}
	return err
}

// dumpStep takes one backup, and reports whether it landed at the location.
func (r *Runner) dumpStep(ctx context.Context) (bool, error) {
	start := time.Now()
	m, landed, err := r.dump(ctx, start)
	if err != nil {
		if ctx.Err() != nil {
			r.log.Info("dump interrupted; nothing was stored, and its partial copy was removed", "reason", err.Error())
			return false, err
		}
		stage := "dump"
		if errors.Is(err, errNotStored) {
			stage = "upload"
		}
		r.metrics.failed(stage)
		r.log.Error(err, "backup failed; nothing was stored", "engine", r.cfg.Engine, "database", r.cfg.Database)
		return false, err
	}
	url := r.loc.ObjectURL(m.Name)
	r.log.Info("dumped", "object", url, "dumpBytes", m.DumpBytes, "bytes", m.Bytes, "seconds", time.Since(start).Seconds(),
		"sha256", m.SHA256, "tables", len(m.Tables), "localCopy", r.hasLocal(m.Name))
	if m.Suspect != "" {
		r.metrics.suspected()
		r.log.Info("the dump is suspect: it is kept and uploaded, but it is never the latest and retention does not count it; "+
			"if the database did shrink, the next dumps of its new size are not suspect", "object", url, "reason", m.Suspect)
	}
	r.metrics.dumped(m.Name, start, time.Since(start), m.Bytes)
	if !landed {
		r.metrics.failed("upload") // the local copy is uploaded instead
	}
	if landed {
		r.log.Info("uploaded", "object", url, "bytes", m.Bytes, "seconds", time.Since(start).Seconds(), "streamed", true)
		r.metrics.uploaded(m.Name)
	}
	return landed, nil
}

// hasLocal reports whether the backup name has a local copy.
func (r *Runner) hasLocal(name string) bool {
	_, err := os.Lstat(filepath.Join(r.cfg.Dir, name))
	return err == nil
}

// uploadPending uploads every finished backup in the directory that has not landed yet, newest first, each
// retried with backoff until UploadRetryFor has passed since the first attempt of this pass. It returns how many
// are still pending and how many landed.
func (r *Runner) uploadPending(ctx context.Context) (pending, landed int, err error) {
	backups, err := listLocal(r.cfg.Dir)
	if err != nil {
		return 0, 0, err
	}
	var todo []localBackup
	for _, b := range backups {
		if !b.uploaded {
			todo = append(todo, b)
		}
	}
	if len(todo) == 0 {
		return 0, 0, nil
	}
	bucket, err := objstore.Open(ctx, r.loc)
	if err != nil {
		r.metrics.failed("upload")
		r.log.Error(err, "cannot open the backup location; backups kept for the next pass", "location", r.loc.String())
		return len(todo), 0, err
	}
	deadline := time.Now().Add(r.cfg.UploadRetryFor)
	var errs []error
	for _, b := range todo {
		if err := r.uploadOne(ctx, bucket, b.name, deadline); err != nil {
			errs = append(errs, fmt.Errorf("upload %s: %w", b.name, err))
			continue
		}
		landed++
	}
	return len(todo) - landed, landed, errors.Join(errs...)
}

func (r *Runner) uploadOne(ctx context.Context, bucket objstore.Bucket, name string, deadline time.Time) error {
	path := filepath.Join(r.cfg.Dir, name)
	url := r.loc.ObjectURL(name)
	retry := r.uploadBackoff
	var n int64
	landed := false // the backup's object; its manifest goes after it
	for attempt := 1; ; attempt++ {
		start := time.Now()
		var err error
		if !landed {
			n, err = upload(ctx, bucket, path, name)
			landed = err == nil
		}
		if err == nil {
			err = uploadManifest(ctx, bucket, r.cfg.Dir, name)
		}
		if err == nil {
			if err := markUploaded(r.cfg.Dir, name, url); err != nil {
				// The object landed; without the marker it is uploaded again next pass, which is harmless.
				r.log.Error(err, "uploaded, but could not record it", "file", path)
			}
			r.log.Info("uploaded", "object", url, "bytes", n, "seconds", time.Since(start).Seconds(), "attempt", attempt)
			r.metrics.uploaded(name)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("upload interrupted: %w", context.Cause(ctx))
		}
		r.metrics.failed("upload")
		delay := retry.Step()
		if time.Now().Add(delay).After(deadline) {
			r.log.Error(err, "upload failed; the backup is kept and will be uploaded on the next pass", "object", url, "attempts", attempt)
			return err
		}
		r.log.Error(err, "upload failed; retrying", "object", url, "attempt", attempt, "retryIn", delay.String())
		if !sleep(ctx, delay) {
			return fmt.Errorf("upload interrupted: %w", context.Cause(ctx))
		}
	}
}

func (r *Runner) pruneStep() error {
	removed, err := prune(r.cfg.Dir, r.cfg.Keep)
	if len(removed) > 0 {
		r.log.Info("pruned uploaded backups beyond the newest kept", "keep", r.cfg.Keep, "removed", removed)
	}
	if err != nil {
		r.metrics.failed("prune")
		r.log.Error(err, "pruning the backups directory")
	}
	return err
}

// jitteredBackoff starts at initial and doubles at each step up to max, each delay within ±20% of that so that a
// fleet of sidecars does not retry in step. wait.Backoff's jitter only adds (up to Jitter times the delay), so the
// delays are scaled to 80% and jittered by half of that: 0.8 × [1, 1.5] is [0.8, 1.2]. An initial above max
// starts at max.
func jitteredBackoff(initial, max time.Duration) wait.Backoff {
	return wait.Backoff{
		Duration: min(initial, max) * 4 / 5,
		Factor:   2,
		Jitter:   0.5,
		Steps:    math.MaxInt32, // never runs out: the cap ends the doubling; callers decide when to stop
		Cap:      max * 4 / 5,
	}
}

// sleep waits for d, and reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
