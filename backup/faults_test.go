package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/backup/backuptest"
	"github.com/tandem-dev/tandem/backup/codec"
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
// that looks like a backup, no partial file, and no multipart upload open under the prefix.
func nothingLeft(t *testing.T, dir, prefix string) {
	t.Helper()
	nothingLeftIn(t, store, dir, prefix)
}

// nothingLeftIn is nothingLeft in the S3 server s3.
func nothingLeftIn(t *testing.T, s3 *backuptest.S3, dir, prefix string) {
	t.Helper()
	wantFiles(t, "backups directory", dirFiles(t, dir), nil)
	wantFiles(t, "bucket", allObjectsAt(t, s3, prefix), nil)
	wantFiles(t, "multipart uploads", openUploads(t, s3, prefix), nil)
}

// openUploads lists the keys of the multipart uploads open under prefix in the test bucket of s3.
func openUploads(t *testing.T, s3 *backuptest.S3, prefix string) []string {
	t.Helper()
	keys, err := s3.Uploads(bucket)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix+"/") {
			out = append(out, k)
		}
	}
	return out
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

// TestObjectStoreDown: with the store down and no local copy (the default), the backup fails, saying it could
// not be stored, and leaves nothing; with the store back, the next run lands one.
func TestObjectStoreDown(t *testing.T) {
	s3, err := backuptest.StartS3(deps, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	s3.Stop()
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv("postgres", prefix, dir), s3.Env()...)
	code, out := tandemRun(t, env, "backup", "--once")
	if code == 0 || !strings.Contains(out, "the backup could not be stored, and nothing of it was left at the location") || !strings.Contains(out, "connection refused") {
		t.Fatalf("backup --once with the store down exited %d; want a failure saying the backup could not be stored, and why", code)
	}
	if err := s3.Start(); err != nil {
		t.Fatal(err)
	}
	nothingLeftIn(t, s3, dir, prefix)
	if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
		t.Fatalf("backup --once exited %d with the store back", code)
	}
	if got := objects(t, s3, prefix); len(got) != 1 {
		t.Fatalf("the bucket holds %q, want one backup", got)
	}
}

// TestObjectStoreDownThenBack: with local copies (BACKUP_KEEP=2) and the store down, the dump goes on into its
// local copy, which is kept, not marked uploaded, and uploaded with backoff; when the store comes back, the retry
// lands it. A run whose retries run out fails and keeps the backup, and the next run uploads it along with its
// own.
func TestObjectStoreDownThenBack(t *testing.T) {
	s3, err := backuptest.StartS3(deps, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	s3.Stop()
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv("postgres", prefix, dir), append(s3.Env(), "BACKUP_KEEP=2")...)

	// Retries run out: the backup stays, unmarked.
	code, out := tandemRun(t, append(env, "BACKUP_UPLOAD_RETRY_FOR=0s"), "backup", "--once")
	if code == 0 || !strings.Contains(out, "its local copy is uploaded instead") || !strings.Contains(out, "upload failed") {
		t.Fatalf("backup --once with the store down exited %d; want an upload failure and the local copy kept", code)
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
		t.Fatalf("backups directory holds %q, want both backups (BACKUP_KEEP=2)", dirFiles(t, dir))
	}
	wantFiles(t, "bucket", objects(t, s3, prefix), all)
	for _, n := range all {
		if _, err := os.Stat(filepath.Join(dir, n+".uploaded")); err != nil {
			t.Errorf("%s is not marked uploaded: %v", n, err)
		}
		sameFile(t, filepath.Join(dir, n), filepath.Join(s3.Root, bucket, prefix, n))
	}
	wantFiles(t, "multipart uploads", openUploads(t, s3, prefix), nil)
}

// TestObjectStoreDiesMidUpload: the store stops while parts of the backup are going up (the dump is larger than
// one part). The backup fails, saying it could not be stored, nothing appears in the bucket, and the sidecar is
// not stuck; the upload the store could not be told to abort is aborted by the next run, which lands its own.
func TestObjectStoreDiesMidUpload(t *testing.T) {
	s3, err := backuptest.StartS3(deps, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	dir, prefix := t.TempDir(), prefixFor(t)
	started := filepath.Join(t.TempDir(), "started")
	// 24 MB that zstd cannot shrink: parts of 5 MiB go up while the rest is still to come.
	env := append(pgEnv("postgres", prefix, dir), append(s3.Env(), fakeDump(t, `head -c 24000000 /dev/urandom; touch `+started+`; sleep 5; `+wholeFakeDump)...)...)
	r := startTandem(t, env, "backup", "--once")
	eventually(t, 30*time.Second, "a multipart upload is open", func() bool {
		_, err := os.Stat(started)
		return err == nil && len(openUploads(t, s3, prefix)) > 0
	})
	s3.Stop()
	code := r.wait(t, 2*time.Minute)
	if out := r.stderr.String(); code == 0 || !strings.Contains(out, "the backup could not be stored, and nothing of it was left at the location") {
		t.Fatalf("backup --once exited %d when the store died mid-upload; want a failure saying the backup could not be stored:\n%s", code, out)
	}
	if err := s3.Start(); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, "bucket", allObjectsAt(t, s3, prefix), nil)
	wantFiles(t, "backups directory", dirFiles(t, dir), nil)
	stale := openUploads(t, s3, prefix)
	t.Logf("left open by the store that died: %q", stale)

	env = append(pgEnv("postgres", prefix, dir), s3.Env()...)
	code, out := tandemRun(t, env, "backup", "--once")
	if code != 0 {
		t.Fatalf("the next backup --once exited %d", code)
	}
	if len(stale) > 0 && !strings.Contains(out, "aborted the uploads an earlier run left open") {
		t.Errorf("the next run does not say it aborted the stale upload %q", stale)
	}
	wantFiles(t, "multipart uploads", openUploads(t, s3, prefix), nil)
	if got := objects(t, s3, prefix); len(got) != 1 {
		t.Fatalf("the bucket holds %q, want the one backup of the second run", got)
	}
}

// TestDatabaseKilledMidDump: the database ends pg_dump's session while the dump streams to the bucket (its
// parts going up); the backup fails with the server's message, and nothing is left, no upload open either.
func TestDatabaseKilledMidDump(t *testing.T) {
	must := mustSQL(t)
	db := dbFor(t, "db")
	must(pg.SQL("postgres", "CREATE DATABASE "+db))
	// About 150 MB of SQL that compresses about 2x: parts go up well before the dump ends.
	must(pg.SQL(db, `CREATE TABLE big AS SELECT i, md5(i::text) || md5((i * 7)::text) || md5(random()::text) AS t FROM generate_series(1, 1500000) AS i`))
	dir, prefix := t.TempDir(), prefixFor(t)
	r := startTandem(t, pgEnv(db, prefix, dir), "backup", "--once")
	eventually(t, time.Minute, "the dump's parts go up", func() bool { return len(openUploads(t, store, prefix)) > 0 })
	killed := must(pg.SQL("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '"+db+"' AND application_name = 'pg_dump'"))
	code := r.wait(t, time.Minute)
	out := r.stderr.String()
	if killed != "1" {
		t.Fatalf("terminated %s pg_dump sessions, want 1 (did the dump end first?):\n%s", killed, out)
	}
	if code == 0 || !strings.Contains(out, "pg_dump failed") || !strings.Contains(out, "terminat") {
		t.Fatalf("backup --once exited %d when the database ended the dump; want pg_dump's failure:\n%s", code, out)
	}
	nothingLeft(t, dir, prefix)
}

// TestSIGTERMDuringUpload: the sidecar is told to stop while pg_dump is writing, parts of its backup going up
// and a local copy (BACKUP_KEEP=1) being written; it kills the dump, aborts the upload, removes the partial file
// and exits 0 within the grace period, leaving nothing.
func TestSIGTERMDuringUpload(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	env := append(pgEnv("postgres", prefix, dir), append(fakeDump(t, `echo $$ > `+pidFile+`; head -c 20000000 /dev/urandom; exec sleep 600`), "BACKUP_KEEP=1")...)
	r := startTandem(t, env, "backup")
	var partial string
	eventually(t, 30*time.Second, "the dump is writing its partial file, and its parts go up", func() bool {
		for _, n := range dirFiles(t, dir) {
			if strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".sql.zst.partial") {
				if st, err := os.Stat(filepath.Join(dir, n)); err == nil && st.Size() > 0 {
					partial = n
				}
			}
		}
		return partial != "" && len(openUploads(t, store, prefix)) > 0
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

// TestBackupsDirectoryFull: writing the local copy fails (here at a file size limit, which fails the write the
// way a full volume does, with no root needed); the partial file is removed, the log names the cause, and the
// backup streams to the bucket all the same.
func TestBackupsDirectoryFull(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv("postgres", prefix, dir), append(fakeDump(t, `head -c 4000000 /dev/urandom; printf '\n-- PostgreSQL database dump complete\n'`), "BACKUP_KEEP=1")...)
	// ulimit -f counts 512-byte blocks in dash and bash's POSIX mode, 1024 in bash: 256 or 512 KiB.
	cmd := exec.Command("/bin/sh", "-c", `ulimit -f 512 && exec "$0" "$@"`, tandemBin, "backup", "--once")
	r := startCommand(t, cmd, env)
	code := r.wait(t, time.Minute)
	if out := r.stderr.String(); code != 0 || !strings.Contains(out, "file too large") || !strings.Contains(out, "the local copy could not be written") {
		t.Fatalf("backup --once exited %d; want a success that says the local copy could not be written, the file being too large:\n%s", code, out)
	}
	wantFiles(t, "backups directory", dirFiles(t, dir), nil)
	if got := objects(t, store, prefix); len(got) != 1 {
		t.Fatalf("the bucket holds %q, want the backup", got)
	}
}

// TestRestoreTruncatedBackupChangesNothing: a backup cut short (a damaged object, a dropped connection) is
// refused by its codec (zstd's last block and checksum, gzip's length and checksum), and psql is killed before it
// can commit, so the database is unchanged. The object here ends cleanly after the table's data, without the
// stream's end: every statement psql has read is whole, so closing its input instead of killing it would commit
// a table without its primary key.
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
	name := objects(t, store, prefix)[0]
	sql := dumpText(t, stored(prefix, name))
	end := strings.Index(sql, "\\.\n")
	if end < 0 || !strings.Contains(sql[end:], "PRIMARY KEY") {
		t.Fatalf("the dump has no COPY data followed by the primary key:\n%.2000s", sql)
	}
	must(pg.SQL(db, "DELETE FROM items WHERE id > 1000"))
	want := must(pg.SQL(db, pgDigest))
	for _, c := range codec.All {
		t.Run(c.Name, func(t *testing.T) {
			var buf bytes.Buffer
			zw, err := c.NewWriter(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := zw.Write([]byte(sql[:end+3])); err != nil {
				t.Fatal(err)
			}
			if err := zw.(interface{ Flush() error }).Flush(); err != nil { // no Close: no end
				t.Fatal(err)
			}
			// Served from a file:// location: S3 would refuse the damaged object by its stored checksum first.
			damaged := filepath.Join(t.TempDir(), strings.TrimSuffix(name, ".zst")+"."+c.Ext)
			if err := os.WriteFile(damaged, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out := tandemRun(t, env, "restore", "--from", "file://"+damaged)
			if code == 0 || !strings.Contains(out, "unexpected EOF") || !strings.Contains(out, "the restore was aborted") {
				t.Fatalf("restore of a truncated backup exited %d; want a failure saying the backup ended early", code)
			}
			if got := must(pg.SQL(db, pgDigest)); got != want {
				t.Fatalf("after the failed restore: %s, want the rows unchanged: %s", got, want)
			}
			if got := must(pg.SQL(db, "SELECT count(*) FROM pg_indexes WHERE tablename = 'items'")); got != "1" {
				t.Fatalf("after the failed restore the table has %s indexes, want its primary key", got)
			}
		})
	}
}

// TestLargeBackupUploadsInParts: a backup larger than a part streams up as a multipart upload (parts of 5 MiB,
// two in flight), and the object that lands holds the dump, byte for byte, with the SHA-256 its manifest records.
func TestLargeBackupUploadsInParts(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(data, randomText(23_000_000), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(pgEnv("postgres", prefix, dir), fakeDump(t, `cat `+data+`; printf '\n-- PostgreSQL database dump complete\n'`)...)
	if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
		t.Fatalf("backup --once exited %d", code)
	}
	names := objects(t, store, prefix)
	if len(names) != 1 {
		t.Fatalf("the bucket holds %q, want one backup", names)
	}
	obj := stored(prefix, names[0])
	if st, _ := os.Stat(obj); st.Size() <= 2*5<<20 {
		t.Fatalf("the backup is %d bytes, too small for three parts", st.Size())
	}
	want, _ := os.ReadFile(data)
	if got := dumpText(t, obj); got != string(want)+"\n-- PostgreSQL database dump complete\n" {
		t.Fatalf("the object holds %d bytes of dump, not the %d written", len(got), len(want)+38)
	}
	m, err := readManifest(context.Background(), openLocation(t, "s3://"+bucket+"/"+prefix), names[0])
	if err != nil || m == nil {
		t.Fatalf("the manifest: %v", err)
	}
	content, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	if m.SHA256 != hex.EncodeToString(sum[:]) || m.Compression != "zstd" {
		t.Fatalf("the manifest says SHA-256 %s (%s), the object has %x", m.SHA256, m.Compression, sum)
	}
	wantFiles(t, "multipart uploads", openUploads(t, store, prefix), nil)
}

// randomText is n bytes of random letters, which zstd's fastest level stores about as they are.
func randomText(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(r.IntN(26))
	}
	return b
}

// TestALocalCopyStaysWithinTheDirectoryLimit: a local copy that would pass BACKUP_DIR_SIZE_LIMIT (the emptyDir's
// sizeLimit, for which the kubelet evicts the pod) is given up, and the backup lands all the same.
func TestALocalCopyStaysWithinTheDirectoryLimit(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv("postgres", prefix, dir), append(fakeDump(t, `head -c 4000000 /dev/urandom; `+wholeFakeDump), "BACKUP_KEEP=1", "BACKUP_DIR_SIZE_LIMIT=2Mi")...)
	code, out := tandemRun(t, env, "backup", "--once")
	if code != 0 || !strings.Contains(out, "the local copy outgrew the") || !strings.Contains(out, "the backup streams to the location only") {
		t.Fatalf("backup --once exited %d; want a success that says the local copy did not fit:\n%s", code, out)
	}
	wantFiles(t, "backups directory", dirFiles(t, dir), nil)
	if got := objects(t, store, prefix); len(got) != 1 {
		t.Fatalf("the bucket holds %q, want the backup", got)
	}
}
