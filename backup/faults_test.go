package backup

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/backup/backuptest"
)

// wholeFakeDump is a fake pg_dump's script that writes a dump tandem's gate takes for a whole one: it ends with
// pg_dump's completion comment.
const wholeFakeDump = `printf -- '-- a dump\n--\n-- PostgreSQL database dump complete\n--\n'`

// fakeDump puts an executable pg_dump running script on a PATH of its own and returns the environment that
// puts that PATH first.
func fakeDump(t *testing.T, script string) []string {
	t.Helper()
	return fakeTools(t, map[string]string{"pg_dump": script})
}

// fakeTools puts an executable shell script for each program name on a PATH of its own and returns the
// environment that puts that PATH first.
func fakeTools(t *testing.T, scripts map[string]string) []string {
	t.Helper()
	bin := t.TempDir()
	for name, script := range scripts {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
}

// nothingLeft asserts that the backups directory and the bucket prefix are empty: a failed backup leaves no file
// that looks like a backup, and no partial file either.
func nothingLeft(t *testing.T, dir, prefix string) {
	t.Helper()
	wantFiles(t, "backups directory", dirFiles(t, dir), nil)
	wantFiles(t, "bucket", objects(t, store, prefix), nil)
}

func TestDatabaseUnreachable(t *testing.T) {
	port, err := backuptest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv("postgres", prefix, dir), "DATABASE_PORT="+strconv.Itoa(port))
	code, out := tandemRun(t, env, "backup", "--once")
	if code == 0 || !strings.Contains(out, "pg_dump failed") || !strings.Contains(out, "Connection refused") {
		t.Fatalf("backup --once exited %d; want a failure naming pg_dump and the refused connection", code)
	}
	nothingLeft(t, dir, prefix)
}

func TestWrongPassword(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv("postgres", prefix, dir), "DATABASE_PASSWORD=not-the-password")
	code, out := tandemRun(t, env, "backup", "--once")
	if code == 0 || !strings.Contains(out, "password authentication failed") {
		t.Fatalf("backup --once exited %d; want a failure saying password authentication failed", code)
	}
	if strings.Contains(out, "not-the-password") {
		t.Fatal("the password appears in the output")
	}
	nothingLeft(t, dir, prefix)
}

// TestDumpFailsAfterOutput is the original script's bug: a dump that wrote half its output and then failed must
// not become a backup.
func TestDumpFailsAfterOutput(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv("postgres", prefix, dir), fakeDump(t, `echo "CREATE TABLE half_written (id int);"; echo "pg_dump: error: query failed: server closed the connection" >&2; exit 1`)...)
	code, out := tandemRun(t, env, "backup", "--once")
	if code == 0 || !strings.Contains(out, "server closed the connection") {
		t.Fatalf("backup --once exited %d; want a failure with pg_dump's message", code)
	}
	nothingLeft(t, dir, prefix)
}

// TestObjectStoreDownThenBack: with the store down, the dump is kept locally, not marked uploaded, and retried
// with backoff; when the store comes back, the retry lands it. A run whose retries run out fails and keeps the
// backup, and the next run uploads it along with its own.
func TestObjectStoreDownThenBack(t *testing.T) {
	s3, err := backuptest.StartS3(deps, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	s3.Stop()
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv("postgres", prefix, dir), s3.Env()...)

	// Retries run out: the backup stays, unmarked.
	code, out := tandemRun(t, append(env, "BACKUP_UPLOAD_RETRY_FOR=0s"), "backup", "--once")
	if code == 0 || !strings.Contains(out, "upload failed") {
		t.Fatalf("backup --once with the store down exited %d; want an upload failure", code)
	}
	kept := backupFiles(dirFiles(t, dir))
	wantFiles(t, "backups directory", dirFiles(t, dir), withManifests(kept))
	if len(kept) != 1 {
		t.Fatalf("backups directory holds %q, want the one backup kept", dirFiles(t, dir))
	}
	wantFiles(t, "bucket", objects(t, s3, prefix), nil)

	// The store comes back while the next run retries.
	r := startTandem(t, append(env, "BACKUP_UPLOAD_RETRY_FOR=2m"), "backup", "--once")
	eventually(t, 30*time.Second, "the second run retries its upload", func() bool {
		return strings.Count(r.stderr.String(), "upload failed; retrying") >= 2
	})
	wantFiles(t, "bucket while down", objects(t, s3, prefix), nil)
	if err := s3.Start(); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t, time.Minute); code != 0 {
		t.Fatalf("backup --once exited %d after the store came back", code)
	}
	all := backupFiles(dirFiles(t, dir))
	if len(all) != 2 {
		t.Fatalf("backups directory holds %q, want both backups (BACKUP_KEEP=3)", dirFiles(t, dir))
	}
	wantFiles(t, "bucket", objects(t, s3, prefix), all)
	for _, n := range all {
		if _, err := os.Stat(filepath.Join(dir, n+".uploaded")); err != nil {
			t.Errorf("%s is not marked uploaded: %v", n, err)
		}
		sameFile(t, filepath.Join(dir, n), filepath.Join(s3.Root, bucket, prefix, n))
	}
}

// TestSIGTERMDuringDump: the sidecar is told to stop while pg_dump is writing; it kills the dump, removes the
// partial file and exits 0 within the grace period, uploading nothing.
func TestSIGTERMDuringDump(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	env := append(pgEnv("postgres", prefix, dir), fakeDump(t, `echo $$ > `+pidFile+`; head -c 1000000 /dev/urandom; exec sleep 600`)...)
	r := startTandem(t, env, "backup")
	var partial string
	eventually(t, 30*time.Second, "the dump is writing its partial file", func() bool {
		for _, n := range dirFiles(t, dir) {
			if strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".sql.gz.partial") {
				if st, err := os.Stat(filepath.Join(dir, n)); err == nil && st.Size() > 0 {
					partial = n
					return true
				}
			}
		}
		return false
	})
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	dumpPID, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	start := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("tandem backup exited %d on SIGTERM, want 0", code)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("tandem backup took %s to stop", took)
	}
	if !strings.Contains(r.stderr.String(), "interrupted") {
		t.Errorf("the log does not say the dump was interrupted")
	}
	if err := syscall.Kill(dumpPID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the dump (pid %d) outlived the sidecar: kill 0: %v", dumpPID, err)
	}
	t.Logf("partial file was %s", partial)
	nothingLeft(t, dir, prefix)
}

// TestBackupsDirectoryFull: writing the dump fails (here at a file size limit, which fails the write the way a
// full volume does, with no root needed); the partial file is removed and the error names the cause.
func TestBackupsDirectoryFull(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv("postgres", prefix, dir), fakeDump(t, `head -c 4000000 /dev/urandom; printf '\n-- PostgreSQL database dump complete\n'`)...)
	// ulimit -f counts 512-byte blocks in dash and bash's POSIX mode, 1024 in bash: 256 or 512 KiB.
	cmd := exec.Command("/bin/sh", "-c", `ulimit -f 512 && exec "$0" "$@"`, tandemBin, "backup", "--once")
	r := startCommand(t, cmd, env)
	code := r.wait(t, time.Minute)
	if code == 0 || !strings.Contains(r.stderr.String(), "file too large") {
		t.Fatalf("backup --once exited %d; want a failure saying the file is too large", code)
	}
	nothingLeft(t, dir, prefix)
}

// TestRestoreTruncatedBackupChangesNothing: a backup cut short (a damaged object, a dropped connection) is
// refused by gzip's length and checksum, and psql is killed before it can commit, so the database is unchanged.
// The object here ends cleanly after the table's data, without gzip's trailer: every statement psql has read is
// whole, so closing its input instead of killing it would commit a table without its primary key.
func TestRestoreTruncatedBackupChangesNothing(t *testing.T) {
	must := mustSQL(t)
	db := dbFor(t, "db")
	must(pg.SQL("postgres", "CREATE DATABASE "+db))
	must(pg.SQL(db, pgSchema))
	dir, prefix := t.TempDir(), prefixFor(t)
	env := pgEnv(db, prefix, dir)
	if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
		t.Fatalf("backup --once exited %d", code)
	}
	name := backupFiles(dirFiles(t, dir))[0]
	sql := gunzip(t, filepath.Join(dir, name))
	end := strings.Index(sql, "\\.\n")
	if end < 0 || !strings.Contains(sql[end:], "PRIMARY KEY") {
		t.Fatalf("the dump has no COPY data followed by the primary key:\n%.2000s", sql)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(sql[:end+3])); err != nil {
		t.Fatal(err)
	}
	if err := zw.Flush(); err != nil { // no Close: no trailer
		t.Fatal(err)
	}
	// Served from a file:// location: S3 would refuse the damaged object by its stored checksum before gzip does.
	damaged := t.TempDir()
	if err := os.WriteFile(filepath.Join(damaged, name), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	must(pg.SQL(db, "DELETE FROM items WHERE id > 1000"))
	want := must(pg.SQL(db, pgDigest))
	code, out := tandemRun(t, env, "restore", "--from", "file://"+filepath.Join(damaged, name))
	if code == 0 || !strings.Contains(out, "unexpected EOF") {
		t.Fatalf("restore of a truncated backup exited %d; want a failure saying the backup ended early", code)
	}
	if got := must(pg.SQL(db, pgDigest)); got != want {
		t.Fatalf("after the failed restore: %s, want the rows unchanged: %s", got, want)
	}
	if got := must(pg.SQL(db, "SELECT count(*) FROM pg_indexes WHERE tablename = 'items'")); got != "1" {
		t.Fatalf("after the failed restore the table has %s indexes, want its primary key", got)
	}
}

// TestLargeBackupUploadsInParts: a backup above the transfer manager's 16 MiB threshold goes up as a multipart
// upload (5 MiB parts, one in flight), and the object that lands is the file, byte for byte.
func TestLargeBackupUploadsInParts(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv("postgres", prefix, dir), fakeDump(t, `head -c 23000000 /dev/urandom; printf '\n-- PostgreSQL database dump complete\n'`)...)
	if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
		t.Fatalf("backup --once exited %d", code)
	}
	names := backupFiles(dirFiles(t, dir))
	wantFiles(t, "bucket", objects(t, store, prefix), names)
	sameFile(t, filepath.Join(dir, names[0]), filepath.Join(store.Root, bucket, prefix, names[0]))
	if st, _ := os.Stat(filepath.Join(dir, names[0])); st.Size() < 22000000 {
		t.Fatalf("the backup is %d bytes, too small to need a multipart upload", st.Size())
	}
}
