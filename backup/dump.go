package backup

import (
	"bufio"
	"compress/gzip"
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
)

// killGrace is how long a database client has to exit after SIGTERM before it is killed.
const killGrace = 5 * time.Second

// dump runs the engine's dump program and streams its standard output through gzip into dir/.<name>.partial,
// renamed to dir/<name> only when the program exited 0, its output is a whole dump (the inspector found the
// engine's completion marker) and the file is complete on disk, its manifest written beside it. On any failure,
// cancellation included, the partial file is removed and nothing named like a backup is left. It returns the
// backup's manifest.
func (r *Runner) dump(ctx context.Context, started time.Time) (*Manifest, error) {
	cl, err := r.eng.client(&r.cfg, false, "")
	if err != nil {
		return nil, err
	}
	defer cl.cleanup()
	name := r.freeName(started)
	out, err := createPartial(r.cfg.Dir, name, started, newInspector(r.eng.name))
	if err != nil {
		return nil, err
	}
	facts, err := r.runDump(ctx, cl, out)
	if err != nil {
		out.discard()
		return nil, err
	}
	size, err := out.finish()
	if err != nil {
		out.discard()
		return nil, err
	}
	m := &Manifest{Format: ManifestFormat, Name: name, Engine: r.eng.name, ServerVersion: facts.serverVersion,
		ClientVersion: facts.clientVersion, Databases: facts.databases, Pod: r.cfg.PodName, Started: started.UTC(),
		Finished: time.Now().UTC(), Bytes: size, DumpBytes: out.n, SHA256: hex.EncodeToString(out.hash.Sum(nil)),
		Tables: facts.tables, TandemVersion: r.cfg.TandemVersion}
	if r.cfg.Database != "" {
		m.Databases = []string{r.cfg.Database}
	}
	ref, what := r.sizeReference()
	m.Suspect = suspicion(m.DumpBytes, ref, what, r.cfg.SuspectBelowPercent)
	// The manifest first: a backup file is never without one.
	if err := writeLocalManifest(r.cfg.Dir, m); err != nil {
		out.discard()
		return nil, err
	}
	if err := out.publish(); err != nil {
		os.Remove(filepath.Join(r.cfg.Dir, manifestName(name)))
		return nil, err
	}
	r.log.V(1).Info("dumped", "file", filepath.Join(r.cfg.Dir, name), "dumpBytes", out.n, "gzipBytes", size)
	r.previous = m
	return m, nil
}

// runDump runs the dump client cl with its standard output into out, and says why a dump failed: the sidecar
// was stopping, the file could not be written, the program failed, it wrote nothing, or what it wrote is not a
// whole dump. It returns what the dump's text says of it.
func (r *Runner) runDump(ctx context.Context, cl client, out *partialBackup) (dumpFacts, error) {
	cmd := command(ctx, cl.prog, cl.args, cl.env)
	cmd.Stdout = out
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	r.log.V(1).Info("dumping", "command", cl.prog, "args", cl.args, "file", out.path)
	runErr := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return dumpFacts{}, fmt.Errorf("dump interrupted: %w", context.Cause(ctx))
	case out.fw.err != nil:
		return dumpFacts{}, fmt.Errorf("writing %s: %w", out.path, out.fw.err)
	case runErr != nil:
		return dumpFacts{}, fmt.Errorf("%s failed: %v: %s", filepath.Base(cl.prog), runErr, stderr.String())
	case out.n == 0:
		return dumpFacts{}, fmt.Errorf("%s exited 0 but wrote nothing: %s", filepath.Base(cl.prog), stderr.String())
	}
	facts, err := out.insp.finish()
	if err != nil {
		return dumpFacts{}, fmt.Errorf("%s exited 0, but %v (%d bytes; its messages: %s)", filepath.Base(cl.prog), err, out.n, stderr.String())
	}
	return facts, nil
}

// partialBackup is a backup being written: what is written to it goes through gzip into the hidden file
// dir/.<name>.partial, which becomes the backup dir/<name> only by commit.
type partialBackup struct {
	dir, name, path string
	f               *os.File
	// fw records the file's first write error, so that a full disk is reported as such rather than as the dump
	// program's broken pipe.
	fw *errWriter
	bw *bufio.Writer
	gz *gzip.Writer
	n  int64 // bytes written, before compression
	// insp reads the dump's plaintext; hash sums the file's bytes, as they are stored.
	insp inspector
	hash hash.Hash
}

// createPartial creates the partial file of the backup name in dir, failing if it exists. modTime goes into the
// gzip header; insp reads what is written.
func createPartial(dir, name string, modTime time.Time, insp inspector) (*partialBackup, error) {
	path := filepath.Join(dir, "."+name+partialSuffix)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	p := &partialBackup{dir: dir, name: name, path: path, f: f, fw: &errWriter{w: io.MultiWriter(f, h)}, insp: insp, hash: h}
	p.bw = bufio.NewWriterSize(p.fw, 256<<10)
	if p.gz, err = gzip.NewWriterLevel(p.bw, gzip.DefaultCompression); err != nil {
		p.discard()
		return nil, err
	}
	p.gz.Name = strings.TrimSuffix(name, ".gz")
	p.gz.ModTime = modTime
	return p, nil
}

func (p *partialBackup) Write(b []byte) (int, error) {
	n, err := p.gz.Write(b)
	p.n += int64(n)
	p.insp.Write(b[:n])
	return n, err
}

// discard closes and removes the partial file.
func (p *partialBackup) discard() {
	p.f.Close()
	os.Remove(p.path)
}

// publish renames the finished file to the backup's name. When it cannot, the file is removed.
func (p *partialBackup) publish() error {
	if err := os.Rename(p.path, filepath.Join(p.dir, p.name)); err != nil {
		os.Remove(p.path)
		return err
	}
	return syncDir(p.dir)
}

// finish ends the gzip stream, writes out what is buffered, and closes the file once its content is on disk.
func (p *partialBackup) finish() (int64, error) {
	if err := p.gz.Close(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", p.path, err)
	}
	if err := p.bw.Flush(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", p.path, err)
	}
	if err := p.f.Sync(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", p.path, err)
	}
	st, err := p.f.Stat()
	if err != nil {
		return 0, err
	}
	if err := p.f.Close(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", p.path, err)
	}
	return st.Size(), nil
}

// freeName is the backup name for a dump started at t, moved on by a second while a file of that name exists,
// so that two dumps within one second do not overwrite each other.
func (r *Runner) freeName(t time.Time) string {
	for {
		name := backupName(r.cfg.baseName(), r.cfg.PodName, r.eng.ext, t)
		if _, err := os.Lstat(filepath.Join(r.cfg.Dir, name)); errors.Is(err, os.ErrNotExist) {
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
