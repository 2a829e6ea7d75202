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

	"github.com/go-logr/logr"
)

// scratchPort is the port in the name of the throwaway PostgreSQL server's socket; it listens on no TCP port.
const scratchPort = 5432

// scratchPostgres is a throwaway PostgreSQL server.
type scratchPostgres struct {
	scratchProcess
	bin string // the directory of initdb, postgres, pg_isready and psql
}

// startScratchPostgres makes a cluster in a new directory under parent and starts it on a Unix socket only.
func startScratchPostgres(ctx context.Context, parent string, log logr.Logger) (scratchServer, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	s := &scratchPostgres{scratchProcess: scratchProcess{stop: syscall.SIGINT}, bin: bin}
	if err := s.makeDirs(parent); err != nil {
		s.remove(log)
		return nil, err
	}
	if s.cred == nil {
		if s.env, err = nameTheUser(s.dir); err != nil {
			s.remove(log)
			return nil, err
		}
	}
	data := filepath.Join(s.dir, "data")
	initdb := s.command(ctx, filepath.Join(bin, "initdb"), "--pgdata", data, "--username", "postgres", "--auth", "trust",
		"--encoding", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		s.remove(log)
		return nil, fmt.Errorf("initdb: %v: %s", err, lastLines(out))
	}
	// No durability (the copy is thrown away), little memory, no TCP, no JIT (the image may leave LLVM out). With
	// wal_level=minimal, the restore's COPY into tables its own transaction created writes no WAL at all.
	server := s.command(context.WithoutCancel(ctx), filepath.Join(bin, "postgres"), "-D", data, "-k", s.socketDir,
		"-p", strconv.Itoa(scratchPort), "-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "max_connections=5", "-c", "autovacuum=off",
		"-c", "max_wal_size=256MB", "-c", "jit=off",
		"-c", "wal_level=minimal", "-c", "max_wal_senders=0")
	err = s.start(ctx, server, log, func(ctx context.Context) bool {
		return s.command(ctx, filepath.Join(bin, "pg_isready"), "-q", "-h", s.socketDir, "-p", strconv.Itoa(scratchPort)).Run() == nil
	})
	if err != nil {
		s.remove(log)
		return nil, err
	}
	return s, nil
}

func (s *scratchPostgres) createDatabase(ctx context.Context, database string) error {
	_, err := s.query(ctx, "postgres", `CREATE DATABASE "`+strings.ReplaceAll(database, `"`, `""`)+`"`)
	return err
}

func (s *scratchPostgres) target(cfg Config, database string) Config {
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.PasswordFile, cfg.Database = s.socketDir, scratchPort, "postgres", "", "", database
	return cfg
}

func (s *scratchPostgres) query(ctx context.Context, database, query string) (string, error) {
	return output(s.command(ctx, filepath.Join(s.bin, "psql"), "-X", "-q", "-tA", "-h", s.socketDir, "-p", strconv.Itoa(scratchPort),
		"-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-c", query))
}

// rowCounts counts the rows of the tables, by the names the dump wrote (schema-qualified, quoted where needed),
// in two queries.
func (s *scratchPostgres) rowCounts(ctx context.Context, database string, tables []tableRows) (map[string]int64, error) {
	var b strings.Builder
	b.WriteString("SELECT n FROM (VALUES ")
	for i, t := range tables {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + sqlString(t.Name) + ")")
	}
	b.WriteString(") AS v(n) WHERE to_regclass(n) IS NOT NULL")
	out, err := s.query(ctx, database, b.String())
	if err != nil {
		return nil, err
	}
	var q strings.Builder
	for _, name := range strings.Split(strings.TrimSpace(out), "\n") {
		if name == "" {
			continue
		}
		if q.Len() > 0 {
			q.WriteString(" UNION ALL ")
		}
		q.WriteString("SELECT " + sqlString(name) + ", count(*) FROM " + name)
	}
	counts := map[string]int64{}
	if q.Len() == 0 {
		return counts, nil
	}
	if out, err = s.query(ctx, database, q.String()); err != nil {
		return nil, err
	}
	return counts, parseCounts(out, "|", counts)
}

// parseCounts reads lines of a name, sep and a count into counts.
func parseCounts(out, sep string, counts map[string]int64) error {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		name, n, ok := strings.Cut(sc.Text(), sep)
		if !ok {
			continue
		}
		count, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return fmt.Errorf("counting %s: %q", name, n)
		}
		counts[name] = count
	}
	return sc.Err()
}

// sqlString is s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

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
