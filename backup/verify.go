package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Verification restores a backup into a throwaway database server that tandem starts itself (a data directory in
// a temporary directory, a Unix socket, no TCP port, small memory settings), checks that every table of its
// manifest is there with the rows the manifest recorded, and removes the server, also when it is stopped half
// way. It reads the plaintext stream, as a restore does.

// verifyNice is the scheduling priority of the throwaway server and the restore client: the database beside the
// sidecar keeps its share of the CPU.
const verifyNice = 10

// VerifyResult is what a verification checked.
type VerifyResult struct {
	Name   string
	Tables int
	Rows   int64
}

// Verify checks the backup opts.From against its manifest (size and SHA-256), restores it into a throwaway
// server and compares the tables and their rows with the manifest. A backup without a manifest cannot be
// verified; postgres backups only, for now.
func Verify(ctx context.Context, cfg Config, opts RestoreOptions, log logr.Logger) (*VerifyResult, error) {
	if cfg.Engine != "postgres" && cfg.Engine != "" {
		return nil, fmt.Errorf("tandem verifies postgres backups; %s backups are checked against their manifest by restore, not verified", cfg.Engine)
	}
	loc, name, err := prepareFrom(&cfg, opts.From)
	if err != nil {
		return nil, err
	}
	b, err := locate(ctx, cfg, loc, name)
	if err != nil {
		return nil, err
	}
	bucket, eng, name, url := b.bucket, b.eng, b.name, b.url
	m, err := readManifest(ctx, bucket, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%s has no manifest (%s): there is nothing to verify it against", url, manifestName(name))
	}
	sum, err := checkAgainstManifest(ctx, bucket, name, url, false, log)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	srv, err := startScratchPostgres(ctx, scratchParent(cfg.Dir), log)
	if err != nil {
		return nil, fmt.Errorf("starting a throwaway server to verify %s: %w", name, err)
	}
	defer srv.remove(log)
	database := "verify"
	if len(m.Databases) == 1 {
		database = m.Databases[0]
	}
	if err := srv.sql(ctx, "postgres", `CREATE DATABASE "`+strings.ReplaceAll(database, `"`, `""`)+`"`); err != nil {
		return nil, err
	}
	scratch := cfg
	scratch.Host, scratch.Port, scratch.User, scratch.Password, scratch.PasswordFile, scratch.Database = srv.socketDir, scratchPort, "postgres", "", "", database
	backup, err := openBackup(ctx, bucket, name, url, sum)
	if err != nil {
		return nil, err
	}
	defer backup.Close()
	cl, err := eng.client(&scratch, true, name)
	if err != nil {
		return nil, err
	}
	defer cl.cleanup()
	cl.env = append(cl.env, "PGCONNECT_TIMEOUT=10")
	rc, err := startRestoreClient(ctx, cl, log)
	if err != nil {
		return nil, err
	}
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, rc.cmd.Process.Pid, verifyNice)
	if _, err := rc.feed(ctx, url, postgresRestoreInput(backup)); err != nil {
		return nil, fmt.Errorf("verifying %s: the restore failed: %w", name, err)
	}
	log.Info("verify: restored into a throwaway server", "object", url, "seconds", time.Since(start).Seconds())
	res := &VerifyResult{Name: name, Tables: len(m.Tables)}
	if len(m.Tables) > 0 {
		counts, err := srv.rowCounts(ctx, database, m.Tables)
		if err != nil {
			return nil, fmt.Errorf("verifying %s: counting the rows: %w", name, err)
		}
		var problems []string
		for _, t := range m.Tables {
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
			return nil, fmt.Errorf("verifying %s: %s", name, strings.Join(problems, "; "))
		}
	}
	log.Info("verified", "object", url, "tables", res.Tables, "rows", res.Rows, "seconds", time.Since(start).Seconds())
	return res, nil
}

// scratchPort is the port in the name of the throwaway server's socket; it listens on no TCP port.
const scratchPort = 5432

// scratchParent is where the throwaway server's data directory goes: the backups directory (an emptyDir with
// room for a dump) when it is there, else the temporary directory.
func scratchParent(dir string) string {
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return dir
	}
	return os.TempDir()
}

// scratchServer is a throwaway PostgreSQL server.
type scratchServer struct {
	bin       string // the directory of initdb, postgres and psql
	dir       string // the data directory's parent
	socketDir string // short: a Unix socket's path has at most 107 bytes
	cmd       *exec.Cmd
	cred      *syscall.Credential // the user the server runs as when tandem runs as root, which PostgreSQL refuses
}

// startScratchPostgres makes a cluster in a new directory under parent and starts it on a Unix socket only.
func startScratchPostgres(ctx context.Context, parent string, log logr.Logger) (*scratchServer, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	s := &scratchServer{bin: bin}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: as nobody, in a directory nobody can reach.
		s.cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		parent = os.TempDir()
	}
	if s.dir, err = os.MkdirTemp(parent, ".tandem-verify-"); err != nil {
		return nil, err
	}
	if s.socketDir, err = os.MkdirTemp("", "tv"); err != nil {
		s.remove(log)
		return nil, err
	}
	for _, d := range []string{s.dir, s.socketDir} {
		if err := s.own(d); err != nil {
			s.remove(log)
			return nil, err
		}
	}
	data := filepath.Join(s.dir, "data")
	initdb := s.command(ctx, "initdb", "--pgdata", data, "--username", "postgres", "--auth", "trust", "--encoding", "UTF8",
		"--no-locale", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		s.remove(log)
		return nil, fmt.Errorf("initdb: %v: %s", err, lastLines(out))
	}
	logFile, err := os.Create(filepath.Join(s.dir, "server.log"))
	if err != nil {
		s.remove(log)
		return nil, err
	}
	defer logFile.Close()
	s.cmd = s.command(context.WithoutCancel(ctx), "postgres", "-D", data, "-k", s.socketDir, "-p", strconv.Itoa(scratchPort),
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=5", "-c", "autovacuum=off", "-c", "max_wal_size=256MB")
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		s.remove(log)
		return nil, err
	}
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, s.cmd.Process.Pid, verifyNice)
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		return s.command(ctx, "pg_isready", "-q", "-h", s.socketDir, "-p", strconv.Itoa(scratchPort)).Run() == nil, nil
	})
	if err != nil {
		log.Info("verify: the throwaway server did not start", "log", lastLines(mustRead(filepath.Join(s.dir, "server.log"))))
		s.remove(log)
		return nil, fmt.Errorf("the throwaway server did not accept connections: %w", err)
	}
	log.Info("verify: throwaway server started", "dir", s.dir, "socket", s.socketDir)
	return s, nil
}

// command runs one of the server's programs, as the server's user.
func (s *scratchServer) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := command(ctx, filepath.Join(s.bin, prog), args, append(childEnv(), "LC_ALL=C"))
	cmd.SysProcAttr.Credential = s.cred
	return cmd
}

func (s *scratchServer) own(dir string) error {
	if s.cred == nil {
		return nil
	}
	return os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid))
}

func (s *scratchServer) sql(ctx context.Context, database, query string) error {
	out, err := s.command(ctx, "psql", "-X", "-q", "-h", s.socketDir, "-p", strconv.Itoa(scratchPort), "-U", "postgres",
		"-d", database, "-v", "ON_ERROR_STOP=1", "-c", query).CombinedOutput()
	if err != nil {
		return fmt.Errorf("psql: %v: %s", err, lastLines(out))
	}
	return nil
}

// rowCounts counts the rows of tables in one query; a table that is not there is left out of the result.
func (s *scratchServer) rowCounts(ctx context.Context, database string, tables []tableRows) (map[string]int64, error) {
	// Which of the tables exist, by the names as the dump wrote them (schema-qualified, quoted where needed).
	var present []string
	var b strings.Builder
	b.WriteString("SELECT n FROM (VALUES ")
	for i, t := range tables {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("('" + strings.ReplaceAll(t.Name, "'", "''") + "')")
	}
	b.WriteString(") AS v(n) WHERE to_regclass(n) IS NOT NULL")
	out, err := s.query(ctx, database, b.String())
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		if line != "" {
			present = append(present, line)
		}
	}
	counts := map[string]int64{}
	if len(present) == 0 {
		return counts, nil
	}
	var q strings.Builder
	for i, name := range present {
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		q.WriteString("SELECT '" + strings.ReplaceAll(name, "'", "''") + "', count(*) FROM " + name)
	}
	out, err = s.query(ctx, database, q.String())
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		name, n, ok := strings.Cut(sc.Text(), "|")
		if !ok {
			continue
		}
		count, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("counting %s: %q", name, n)
		}
		counts[name] = count
	}
	return counts, nil
}

func (s *scratchServer) query(ctx context.Context, database, query string) (string, error) {
	cmd := s.command(ctx, "psql", "-X", "-q", "-tA", "-h", s.socketDir, "-p", strconv.Itoa(scratchPort), "-U", "postgres",
		"-d", database, "-v", "ON_ERROR_STOP=1", "-c", query)
	var stderr tailBuffer
	stderr.max = 4 << 10
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("psql: %v: %s", err, stderr.String())
	}
	return string(out), nil
}

// remove stops the server (a fast shutdown, then SIGKILL) and deletes its directories.
func (s *scratchServer) remove(log logr.Logger) {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGINT) // fast shutdown
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-done
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

// postgresBinDir finds initdb, postgres, pg_isready and psql: on PATH, or in Debian's
// /usr/lib/postgresql/<version>/bin, the newest version first.
func postgresBinDir() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "postgres", "pg_isready", "psql"} {
			if st, err := os.Stat(filepath.Join(dir, p)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server here (initdb, postgres, pg_isready and psql on PATH or in /usr/lib/postgresql/*/bin)")
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
