package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"

	"github.com/tandem-dev/tandem/backup/codec"
	"github.com/tandem-dev/tandem/backup/objstore"
)

// killGrace is how long a database client has to exit after SIGTERM before it is killed.
const killGrace = 5 * time.Second

// dump runs the engine's dump program and streams its standard output through zstd to the backup location, as
// an object that appears only when it is committed, and, when local copies are kept (BACKUP_KEEP), into
// dir/.<name>.partial as well, renamed to dir/<name> once whole. The object is committed, and its manifest put
// beside it, only when the program exited 0 and its output is a whole dump (the inspector found the engine's
// completion marker); on any failure, cancellation included, the object is aborted (S3: no part is left) and
// the partial file removed. A store that fails half way fails the dump, unless a local copy is being written:
// then the dump goes on into it, and that copy is uploaded later without dumping again. It returns the backup's
// manifest, and whether it landed at the location.
func (r *Runner) dump(ctx context.Context, started time.Time) (*Manifest, bool, error) {
	cl, err := r.eng.client(&r.cfg, false, "")
	if err != nil {
		return nil, false, err
	}
	defer cl.cleanup()
	bucket, openErr := objstore.Open(ctx, r.loc)
	if openErr != nil {
		bucket = nil
	}
	name := r.freeName(ctx, started, bucket)
	ref, what := r.sizeReference(ctx, bucket)
	out := &storedWriter{hash: sha256.New(), log: r.log}
	if openErr == nil {
		r.abortStale(ctx, bucket)
		var hint int64
		if r.previous != nil {
			hint = r.previous.Bytes
		}
		out.obj, openErr = bucket.Create(ctx, name, objstore.CreateOptions{ContentType: codec.Zstd.ContentType, SizeHint: hint})
	}
	if openErr != nil {
		out.objErr = fmt.Errorf("opening %s: %w", r.loc, openErr)
	}
	if ok, budget := r.localRoom(); ok {
		if out.local, err = createLocalCopy(r.cfg.Dir, name, budget); err != nil {
			out.localErr = err
		}
	}
	if out.obj == nil && out.local == nil {
		return nil, false, out.failure()
	}
	defer out.discard() // what is neither committed nor published
	p, err := newPartialBackup(name, newInspector(r.eng.name), out)
	if err != nil {
		return nil, false, err
	}
	facts, err := r.runDump(ctx, cl, p)
	if err != nil {
		return nil, false, err
	}
	if out.localErr != nil {
		r.log.Error(out.localErr, "the local copy could not be written; the backup streams to the location only")
	}
	m := &Manifest{Format: ManifestFormat, Name: name, Engine: r.eng.name, Compression: codec.Zstd.Name, ServerVersion: facts.serverVersion,
		ClientVersion: facts.clientVersion, Databases: facts.databases, Pod: r.cfg.PodName, Started: started.UTC(),
		Finished: time.Now().UTC(), Bytes: out.size, DumpBytes: p.n, SHA256: hex.EncodeToString(out.hash.Sum(nil)),
		Tables: facts.tables, TandemVersion: r.cfg.TandemVersion}
	if r.cfg.Database != "" {
		m.Databases = []string{r.cfg.Database}
	}
	m.Suspect = suspicion(m.DumpBytes, ref, what, r.cfg.SuspectBelowPercent)
	if out.local != nil {
		// The manifest first: a backup file is never without one.
		if err := out.local.finish(); err == nil {
			err = writeLocalManifest(r.cfg.Dir, m)
			if err == nil {
				if err = out.local.publish(); err != nil {
					os.Remove(filepath.Join(r.cfg.Dir, manifestName(name)))
				}
			}
			if err != nil {
				out.localErr, out.local = err, nil
			}
		} else {
			out.localErr, out.local = err, nil
		}
		if out.localErr != nil {
			r.log.Error(out.localErr, "the local copy could not be written; the backup streams to the location only", "file", filepath.Join(r.cfg.Dir, name))
		}
	}
	landed := false
	if out.obj != nil {
		if _, err := out.obj.Commit(); err != nil {
			out.objErr, out.obj = fmt.Errorf("storing %s: %w", r.loc.ObjectURL(name), err), nil
		} else {
			out.obj = nil // committed: nothing to discard
			if err := r.putManifest(ctx, bucket, m); err != nil {
				out.objErr = err
				// A backup object without its manifest is incomplete, never the latest: do not leave it.
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				_ = bucket.Delete(dctx, name)
				cancel()
			} else {
				landed = true
			}
		}
	}
	switch {
	case out.local == nil && !landed:
		return nil, false, out.failure()
	case out.local != nil:
		out.local = nil // published
		if landed {
			if err := markUploaded(r.cfg.Dir, name, r.loc.ObjectURL(name)); err != nil {
				r.log.Error(err, "uploaded, but could not record it; it is uploaded again on the next pass", "file", filepath.Join(r.cfg.Dir, name))
			}
		} else if ctx.Err() != nil {
			r.log.Info("stopped before the backup reached the location; its local copy is uploaded by the next run", "file", filepath.Join(r.cfg.Dir, name))
		} else {
			r.log.Error(out.objErr, "the backup did not reach the location while it was dumped; its local copy is uploaded instead", "file", filepath.Join(r.cfg.Dir, name))
		}
	}
	r.log.V(1).Info("dumped", "object", r.loc.ObjectURL(name), "dumpBytes", p.n, "storedBytes", out.size)
	r.previous = m
	return m, landed, nil
}

// abortStale aborts the uploads of this pod's backups that an earlier run left open at the location (a sidecar
// killed, a store that died before it could be told): S3 keeps their parts, unseen but billed, until a lifecycle
// rule removes them. This run has none open while it dumps, so every one there is stale.
func (r *Runner) abortStale(ctx context.Context, bucket objstore.Bucket) {
	uploads, err := bucket.Uploads(ctx)
	if err != nil {
		r.log.V(1).Info("cannot list the uploads open at the location", "reason", err.Error())
		return
	}
	var aborted []string
	for _, u := range uploads {
		n, ok := parseBackupName(u.Key)
		if !ok || n.base != r.cfg.baseName() || n.ext != r.eng.ext || n.pod != r.cfg.PodName {
			continue
		}
		if err := bucket.AbortUpload(ctx, u); err != nil {
			r.log.Error(err, "cannot abort an upload an earlier run left open", "object", r.loc.ObjectURL(u.Key), "upload", u.ID)
			continue
		}
		aborted = append(aborted, u.Key)
	}
	if len(aborted) > 0 {
		r.log.Info("aborted the uploads an earlier run left open", "objects", aborted)
	}
}

// putManifest puts m at the location, beside its backup's object, retried with backoff for UploadRetryFor.
func (r *Runner) putManifest(ctx context.Context, bucket objstore.Bucket, m *Manifest) error {
	deadline := time.Now().Add(r.cfg.UploadRetryFor)
	retry := r.uploadBackoff
	for {
		err := putManifest(ctx, bucket, r.cfg.Dir, m)
		if err == nil || ctx.Err() != nil {
			return err
		}
		delay := retry.Step()
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("putting the manifest of %s: %w", m.Name, err)
		}
		r.log.Error(err, "putting the manifest failed; retrying", "object", r.loc.ObjectURL(manifestName(m.Name)), "retryIn", delay.String())
		if !sleep(ctx, delay) {
			return fmt.Errorf("putting the manifest of %s: %w", m.Name, context.Cause(ctx))
		}
	}
}

// runDump runs the dump client cl with its standard output into out, and says why a dump failed: the sidecar
// was stopping, the backup could not be stored or written, the program failed, it wrote nothing, or what it
// wrote is not a whole dump. It returns what the dump's text says of it.
func (r *Runner) runDump(ctx context.Context, cl client, out *partialBackup) (dumpFacts, error) {
	cmd := command(ctx, cl.prog, cl.args, cl.env)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return dumpFacts{}, err
	}
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	r.log.V(1).Info("dumping", "command", cl.prog, "args", cl.args, "object", r.loc.ObjectURL(out.name))
	if err := cmd.Start(); err != nil {
		return dumpFacts{}, err
	}
	// A pipe of 1 MiB rather than 64 KiB, read 256 KiB at a time: the dump program keeps writing while a part
	// is handed to the upload, instead of waiting on the compressor a block at a time.
	if f, ok := stdout.(*os.File); ok {
		_, _ = unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	}
	_, copyErr := io.CopyBuffer(out, struct{ io.Reader }{stdout}, make([]byte, 256<<10)) // not File.WriteTo's 32 KiB
	if copyErr != nil {
		// Nowhere to write to: the dump program's next write fails, and it exits.
		_ = stdout.Close()
	}
	runErr := cmd.Wait()
	closeErr := out.close() // the compressor's end, written out
	switch {
	case ctx.Err() != nil:
		return dumpFacts{}, fmt.Errorf("dump interrupted: %w", context.Cause(ctx))
	case out.stored.obj == nil && out.stored.local == nil:
		return dumpFacts{}, out.stored.failure()
	case copyErr != nil: // and the dump program, which could not write on, failed because of it
		return dumpFacts{}, fmt.Errorf("compressing %s's output: %w", filepath.Base(cl.prog), copyErr)
	case runErr != nil:
		return dumpFacts{}, fmt.Errorf("%s failed: %v: %s", filepath.Base(cl.prog), runErr, stderr.String())
	case out.n == 0:
		return dumpFacts{}, fmt.Errorf("%s exited 0 but wrote nothing: %s", filepath.Base(cl.prog), stderr.String())
	case closeErr != nil:
		return dumpFacts{}, closeErr
	}
	facts, err := out.insp.finish()
	if err != nil {
		return dumpFacts{}, fmt.Errorf("%s exited 0, but %v (%d bytes; its messages: %s)", filepath.Base(cl.prog), err, out.n, stderr.String())
	}
	return facts, nil
}

// partialBackup is a backup being written: the dump's plaintext, read by the inspector and compressed into
// stored.
type partialBackup struct {
	name   string
	n      int64 // bytes of the dump, before compression
	insp   inspector
	zw     io.WriteCloser
	stored *storedWriter
}

func newPartialBackup(name string, insp inspector, stored *storedWriter) (*partialBackup, error) {
	zw, err := codec.Zstd.NewWriter(stored)
	if err != nil {
		return nil, err
	}
	return &partialBackup{name: name, insp: insp, zw: zw, stored: stored}, nil
}

func (p *partialBackup) Write(b []byte) (int, error) {
	n, err := p.zw.Write(b)
	p.n += int64(n)
	p.insp.Write(b[:n])
	return n, err
}

// close ends the compressed stream.
func (p *partialBackup) close() error {
	if err := p.zw.Close(); err != nil {
		if f := p.stored.failure(); p.stored.obj == nil && p.stored.local == nil {
			return f
		}
		return fmt.Errorf("compressing: %w", err)
	}
	return nil
}

// storedWriter takes the compressed backup, as it is stored: it sums it, counts it, and writes it to the object
// at the location and to the local copy, each while it works. It fails only when both have failed, or the one
// there is.
type storedWriter struct {
	hash hash.Hash
	size int64
	// obj is the object being written, nil once it failed (objErr says why) or was committed; local the local
	// copy, nil once it failed (localErr), was published, or when none is kept.
	obj      objstore.Writer
	objErr   error
	local    *localCopy
	localErr error
	log      logr.Logger
}

func (s *storedWriter) Write(p []byte) (int, error) {
	s.hash.Write(p)
	s.size += int64(len(p))
	if s.obj != nil {
		if _, err := s.obj.Write(p); err != nil {
			s.objErr = err
			if aerr := s.obj.Abort(); aerr != nil {
				s.log.Error(aerr, "the upload failed, and aborting it too")
			}
			s.obj = nil
		}
	}
	if s.local != nil {
		if _, err := s.local.Write(p); err != nil {
			s.localErr = fmt.Errorf("writing %s: %w", s.local.path, err)
			s.local.discard()
			s.local = nil
		}
	}
	if s.obj == nil && s.local == nil {
		return 0, s.failure()
	}
	return len(p), nil
}

// failure says why the backup could not be stored anywhere.
func (s *storedWriter) failure() error {
	switch {
	case s.objErr != nil && s.localErr != nil:
		return fmt.Errorf("%w: %w; nor could its local copy be written: %w", errNotStored, s.objErr, s.localErr)
	case s.objErr != nil:
		return fmt.Errorf("%w, and nothing of it was left at the location: %w", errNotStored, s.objErr)
	case s.localErr != nil:
		return s.localErr
	}
	return errors.New("the backup has nowhere to go")
}

// discard aborts the object and removes the local copy, when they are still there.
func (s *storedWriter) discard() {
	if s.obj != nil {
		if err := s.obj.Abort(); err != nil {
			s.log.Error(err, "aborting the upload of an interrupted backup")
		}
		s.obj = nil
	}
	if s.local != nil {
		s.local.discard()
		s.local = nil
	}
}

// localCopy is a backup's local copy being written, to the hidden file dir/.<name>.partial, which becomes the
// backup dir/<name> only by publish.
type localCopy struct {
	dir, name, path string
	f               *os.File
	bw              *bufio.Writer
	// n is what was written, budget the most that may be (0: no limit).
	n, budget int64
}

// createLocalCopy creates the partial file of the backup name in dir, failing if it exists; it may hold budget
// bytes (0: no limit).
func createLocalCopy(dir, name string, budget int64) (*localCopy, error) {
	path := filepath.Join(dir, "."+name+partialSuffix)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &localCopy{dir: dir, name: name, path: path, f: f, bw: bufio.NewWriterSize(f, 256<<10), budget: budget}, nil
}

func (l *localCopy) Write(p []byte) (int, error) {
	if l.budget > 0 && l.n+int64(len(p)) > l.budget {
		return 0, fmt.Errorf("the local copy outgrew the %s left within BACKUP_DIR_SIZE_LIMIT", bytesString(l.budget))
	}
	n, err := l.bw.Write(p)
	l.n += int64(n)
	return n, err
}

// discard closes and removes the partial file.
func (l *localCopy) discard() {
	l.f.Close()
	os.Remove(l.path)
}

// finish writes out what is buffered and closes the file once its content is on disk.
func (l *localCopy) finish() error {
	err := l.bw.Flush()
	if err == nil {
		err = l.f.Sync()
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(l.path)
		return fmt.Errorf("writing %s: %w", l.path, err)
	}
	return nil
}

// publish renames the finished file to the backup's name. When it cannot, the file is removed.
func (l *localCopy) publish() error {
	if err := os.Rename(l.path, filepath.Join(l.dir, l.name)); err != nil {
		os.Remove(l.path)
		return err
	}
	return syncDir(l.dir)
}

// freeName is the backup name for a dump started at t, moved on by a second while a local copy or an object of
// that name exists (bucket: nil when it could not be opened), so that two dumps within one second do not
// overwrite each other.
func (r *Runner) freeName(ctx context.Context, t time.Time, bucket objstore.Bucket) string {
	for {
		name := backupName(r.cfg.baseName(), r.cfg.PodName, r.eng.ext, t)
		_, err := os.Lstat(filepath.Join(r.cfg.Dir, name))
		taken := err == nil
		if !taken && bucket != nil {
			_, err = bucket.Size(ctx, name)
			taken = err == nil // a store that cannot say fails the upload that follows
		}
		if !taken {
			return name
		}
		t = t.Add(time.Second)
	}
}

// command makes a database client's command: in a process group of its own, which cancelling ctx ends with
// SIGTERM (and SIGKILL after killGrace), so that nothing it started outlives it.
func command(ctx context.Context, prog string, args, env []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = killGrace
	return cmd
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// tailBuffer keeps the last max bytes written to it: the end of a client's standard error, where its reason
// for failing is.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return "(no message)"
	}
	return s
}
