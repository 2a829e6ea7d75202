package backup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
)

// scratchParent is where the throwaway server's data directory goes: the backups directory (an emptyDir with
// room for a dump) when it is there, else the temporary directory.
func scratchParent(dir string) string {
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return dir
	}
	return os.TempDir()
}

// scratchProcess is what every throwaway server has: its directories and its process, and the user it runs as.
type scratchProcess struct {
	dir       string // the data directory's parent, .tandem-verify-*
	socketDir string // short: a Unix socket's path has at most 107 bytes
	cmd       *exec.Cmd
	exited    chan struct{} // closed once cmd has exited
	// cred is the user the server runs as when tandem runs as root (nobody), which the servers refuse or
	// discourage; nil otherwise.
	cred *syscall.Credential
	// stop is the signal of a fast shutdown.
	stop syscall.Signal
	// env is added to the environment of the server's programs.
	env []string
}

// makeDirs makes the server's directories under parent (the temporary directory when tandem runs as root, so
// that nobody can reach them).
func (s *scratchProcess) makeDirs(parent string) error {
	if os.Geteuid() == 0 {
		s.cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		parent = os.TempDir()
		if err := reachableByAll(parent); err != nil {
			return fmt.Errorf("tandem runs as root, so the throwaway server runs as nobody (65534), who cannot reach the temporary directory: %w; set TMPDIR to a directory everyone can reach, or run tandem as another user", err)
		}
	}
	var err error
	if s.dir, err = os.MkdirTemp(parent, ".tandem-verify-"); err != nil {
		return err
	}
	if s.socketDir, err = os.MkdirTemp("", "tv"); err != nil {
		return err
	}
	if s.cred != nil {
		for _, d := range []string{s.dir, s.socketDir} {
			if err := os.Chown(d, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return err
			}
		}
	}
	return nil
}

// nameTheUser returns the environment that gives this process's user a name, which initdb and postgres refuse
// to run without, when it has none: a platform that assigns user IDs (OpenShift's namespace ranges) runs the
// container as a user /etc/passwd does not list. nss_wrapper (Debian's libnss-wrapper, in the backup image)
// then reads a passwd file of its own, written into dir. Nil when the user has a name.
func nameTheUser(dir string) ([]string, error) {
	uid, gid := os.Getuid(), os.Getgid()
	if _, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return nil, nil
	}
	libs, _ := filepath.Glob("/usr/lib/*/libnss_wrapper.so")
	more, _ := filepath.Glob("/usr/lib*/libnss_wrapper.so")
	libs = append(libs, more...)
	if len(libs) == 0 {
		return nil, fmt.Errorf("user ID %d has no name (no entry in /etc/passwd), which the database server needs; the backup image gives it one with nss_wrapper (libnss-wrapper), which is not installed here", uid)
	}
	passwd, group := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	if err := os.WriteFile(passwd, fmt.Appendf(nil, "tandem:x:%d:%d:tandem:%s:/usr/sbin/nologin\n", uid, gid, dir), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(group, fmt.Appendf(nil, "tandem:x:%d:\n", gid), 0o644); err != nil {
		return nil, err
	}
	return []string{"LD_PRELOAD=" + libs[0], "NSS_WRAPPER_PASSWD=" + passwd, "NSS_WRAPPER_GROUP=" + group}, nil
}

// reachableByAll checks that every user can reach into dir: each directory on its path can be searched by
// others.
func reachableByAll(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := abs; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s has mode %s", d, st.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// command runs prog as the server's user, with the server's directory as its temporary directory (which the
// server's user can write to, and which goes with the server).
func (s *scratchProcess) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := command(ctx, prog, args, append(append(childEnv(), "LC_ALL=C", "TMPDIR="+s.dir), s.env...))
	cmd.SysProcAttr.Credential = s.cred
	return cmd
}

// start starts the server's process with its output in the log file, at low CPU priority, and waits until
// ready reports true.
func (s *scratchProcess) start(ctx context.Context, cmd *exec.Cmd, log logr.Logger, ready func(context.Context) bool) error {
	logPath := filepath.Join(s.dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, verifyNice)
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case <-s.exited:
			return false, fmt.Errorf("the server exited: %s", lastLines(mustRead(logPath)))
		default:
		}
		return ready(ctx), nil
	})
	if err != nil {
		log.Info("verify: the throwaway server did not start", "log", lastLines(mustRead(logPath)))
		return fmt.Errorf("the throwaway server did not accept connections: %w", err)
	}
	log.Info("verify: throwaway server started", "dir", s.dir, "socket", s.socketDir)
	return nil
}

// remove stops the server (a fast shutdown, then SIGKILL) and deletes its directories.
func (s *scratchProcess) remove(log logr.Logger) {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(s.cmd.Process.Pid, s.stop)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	}
	for _, d := range []string{s.dir, s.socketDir} {
		if d == "" {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			log.Error(err, "verify: could not remove the throwaway server's directory", "dir", d)
		}
	}
}

// output runs cmd and returns its standard output; an error carries the end of its standard error.
func output(cmd *exec.Cmd) (string, error) {
	var stderr tailBuffer
	stderr.max = 4 << 10
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", filepath.Base(cmd.Path), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func lastLines(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

func mustRead(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}
