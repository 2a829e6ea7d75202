package backup

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
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
// renamed to dir/<name> only when the program exited 0 and the file is complete on disk. On any failure,
// cancellation included, the partial file is removed and nothing named like a backup is left. It returns the
// backup's name and its size on disk.
func (r *Runner) dump(ctx context.Context, started time.Time) (name string, size int64, err error) {
	cl, err := r.eng.client(&r.cfg, false, "")
	if err != nil {
		return "", 0, err
	}
	defer cl.cleanup()
	prog := cl.prog
	name = r.freeName(started)
	final := filepath.Join(r.cfg.Dir, name)
	partial := filepath.Join(r.cfg.Dir, "."+name+partialSuffix)

	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, err
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(partial)
		}
	}()

	// The file is written through a recorder of its first write error, so that a full disk is reported as
	// such rather than as the dump program's broken pipe.
	fw := &errWriter{w: f}
	bw := bufio.NewWriterSize(fw, 256<<10)
	gz, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	if err != nil {
		return "", 0, err
	}
	gz.Name = strings.TrimSuffix(name, ".gz")
	gz.ModTime = started
	counted := &countWriter{w: gz}

	cmd := command(ctx, prog, cl.args, cl.env)
	cmd.Stdout = counted
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	r.log.V(1).Info("dumping", "command", prog, "args", cl.args, "file", partial)
	runErr := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return "", 0, fmt.Errorf("dump interrupted: %w", context.Cause(ctx))
	case fw.err != nil:
		return "", 0, fmt.Errorf("writing %s: %w", partial, fw.err)
	case runErr != nil:
		return "", 0, fmt.Errorf("%s failed: %v: %s", filepath.Base(prog), runErr, stderr.String())
	case counted.n == 0:
		return "", 0, fmt.Errorf("%s exited 0 but wrote nothing: %s", filepath.Base(prog), stderr.String())
	}
	if err := gz.Close(); err != nil {
		return "", 0, fmt.Errorf("writing %s: %w", partial, err)
	}
	if err := bw.Flush(); err != nil {
		return "", 0, fmt.Errorf("writing %s: %w", partial, err)
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("writing %s: %w", partial, err)
	}
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("writing %s: %w", partial, err)
	}
	done = true
	if err := os.Rename(partial, final); err != nil {
		os.Remove(partial)
		return "", 0, err
	}
	if err := syncDir(r.cfg.Dir); err != nil {
		return "", 0, err
	}
	r.log.V(1).Info("dumped", "file", final, "dumpBytes", counted.n, "gzipBytes", st.Size())
	return name, st.Size(), nil
}

// freeName is the backup name for a dump started at t, moved on by a second while a file of that name exists,
// so that two dumps within one second do not overwrite each other.
func (r *Runner) freeName(t time.Time) string {
	for {
		name := backupName(r.cfg.baseName(), r.eng.ext, t)
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

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
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
