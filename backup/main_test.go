package backup

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/backup/backuptest"
)

// The servers every test shares; each test uses databases and a bucket prefix of its own.
var (
	deps      backuptest.Deps
	tandemBin string
	pg        *backuptest.Postgres
	maria     *backuptest.MariaDB
	store     *backuptest.S3
)

const (
	pgPassword    = "pg-secret"
	mariaUser     = "tandem"
	mariaPassword = "maria-secret"
	bucket        = "backups"
)

// TestMain provisions the real parts (hack/backup-deps.sh installs or builds what is missing), starts them on
// 127.0.0.1, and builds the tandem binary the tests run. A part that cannot be had fails the run, naming it.
func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if filepath.Base(os.Args[0]) == "pg_dump" {
		return fakePGDump() // the footprint benchmark's dump program: this binary, linked as pg_dump
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "backup tests: %v\n", err)
		return 1
	}
	flag.Parse()
	tmp, err := os.MkdirTemp("", "tandem-bin-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)

	// Building tandem and provisioning (which builds versitygw the first time) go side by side; the servers
	// start once the programs are there.
	var wg sync.WaitGroup
	errs := make([]error, 5)
	durations := make([]time.Duration, 5)
	timed := func(i int, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := time.Now()
			errs[i] = f()
			durations[i] = time.Since(s)
		}()
	}
	timed(0, func() error {
		tandemBin = filepath.Join(tmp, "tandem")
		_, file, _, _ := runtime.Caller(0)
		// Built with the test's own settings (CGO_ENABLED included), so that it shares the build cache.
		cmd := exec.Command(goTool(), "build", "-o", tandemBin, "./cmd/tandem")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building tandem: %v\n%s", err, out)
		}
		return nil
	})
	timed(1, func() (err error) {
		if deps, err = backuptest.Provision(); err != nil {
			return err
		}
		var servers sync.WaitGroup
		servers.Add(3)
		go func() {
			defer servers.Done()
			durations[2], errs[2] = timedStart(func() (err error) { pg, err = backuptest.StartPostgres(deps, pgPassword); return err })
		}()
		go func() {
			defer servers.Done()
			durations[3], errs[3] = timedStart(func() (err error) { maria, err = backuptest.StartMariaDB(deps, mariaUser, mariaPassword); return err })
		}()
		go func() {
			defer servers.Done()
			durations[4], errs[4] = timedStart(func() (err error) { store, err = backuptest.StartS3(deps, bucket); return err })
		}()
		servers.Wait()
		return nil
	})
	wg.Wait()
	defer pg.Stop()
	defer maria.Stop()
	defer store.Close()
	for _, err := range errs {
		if err != nil {
			return fail(err)
		}
	}
	if testing.Verbose() {
		r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
		fmt.Fprintf(os.Stderr, "backup tests: built tandem in %s; provisioned and started the servers in %s (PostgreSQL %s, MariaDB %s, versitygw %s)\n",
			r(durations[0]), r(durations[1]), r(durations[2]), r(durations[3]), r(durations[4]))
	}
	return m.Run()
}

func timedStart(f func() error) (time.Duration, error) {
	s := time.Now()
	err := f()
	return time.Since(s), err
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// run is one run of the tandem binary.
type run struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	code   int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startTandem starts the tandem binary with env (on top of a clean environment and the S3 server's AWS
// variables) and args.
func startTandem(t *testing.T, env []string, args ...string) *run {
	t.Helper()
	return startCommand(t, exec.Command(tandemBin, args...), env)
}

func startCommand(t *testing.T, cmd *exec.Cmd, env []string) *run {
	t.Helper()
	// The server's own pg_dump and psql first (Debian keeps them off PATH, behind a wrapper at best).
	cmd.Env = append(cleanEnv(), "PATH="+deps.PGBinDir+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, store.Env()...)
	cmd.Env = append(cmd.Env, env...)
	r := &run{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r.stderr, r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		r.code = cmd.ProcessState.ExitCode()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait waits for the run to end and returns its exit code.
func (r *run) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		t.Logf("%s exited %d:\n%s", strings.Join(r.cmd.Args, " "), r.code, r.stderr.String())
		return r.code
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s:\n%s", strings.Join(r.cmd.Args, " "), timeout, r.stderr.String())
		return -1
	}
}

// stop sends the run SIGTERM, as the kubelet stops a container, and fails the test unless it exits 0 within 10 s.
func (r *run) stop(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exited %d on SIGTERM, want 0", code)
	}
}

// httpGet returns the status and body of a GET of url, failing the test when there is no answer.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	code, body, err := tryGet(url)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// tryGet returns the status and body of a GET of url.
func tryGet(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// wantErr checks err against want, a part of the message: "" wants no error. It reports whether the test case
// is over (an error was wanted and found).
func wantErr(t *testing.T, err error, want string) (done bool) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return false
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
	return true
}

// tandemRun runs the tandem binary to its end.
func tandemRun(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	r := startTandem(t, env, args...)
	code := r.wait(t, 2*time.Minute)
	return code, r.stderr.String()
}

// cleanEnv is the test's environment without anything the sidecar reads.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "BACKUP_") || strings.HasPrefix(kv, "DATABASE_") || strings.HasPrefix(kv, "AWS_") ||
			strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "MYSQL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// pgEnv is the sidecar's environment for database db in the shared PostgreSQL, backing up to the shared bucket
// under prefix, with dir as BACKUP_DIR. It does not verify (BACKUP_VERIFY=off): the verification tests append
// BACKUP_VERIFY=each, which wins.
func pgEnv(db, prefix, dir string) []string {
	return []string{"BACKUP_ENGINE=postgres", "DATABASE_HOST=127.0.0.1", "DATABASE_PORT=" + strconv.Itoa(pg.Port),
		"DATABASE_USER=postgres", "DATABASE_PASSWORD=" + pgPassword, "DATABASE_NAME=" + db,
		"BACKUP_LOCATION=s3://" + bucket + "/" + prefix, "BACKUP_DIR=" + dir, "BACKUP_INTERVAL=24h", "BACKUP_VERIFY=off"}
}

// mariaEnv is the sidecar's environment for the MariaDB database db, backing up to prefix in the test bucket,
// without verifying, as pgEnv.
func mariaEnv(db, prefix, dir string) []string {
	return []string{"BACKUP_ENGINE=mysql", "DATABASE_HOST=127.0.0.1", "DATABASE_PORT=" + itoa(maria.Port),
		"DATABASE_USER=" + mariaUser, "DATABASE_PASSWORD=" + mariaPassword, "DATABASE_NAME=" + db,
		"BACKUP_LOCATION=s3://" + bucket + "/" + prefix, "BACKUP_DIR=" + dir, "BACKUP_VERIFY=off"}
}

// prefixFor is a bucket prefix of the test's own.
func prefixFor(t *testing.T) string {
	return "tests/" + regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")
}

// dbFor is a database name of the test's own.
func dbFor(t *testing.T, suffix string) string {
	return strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "_")) + "_" + suffix
}

// mustSQL returns a function that passes on the output of a SQL helper and fails the test on its error.
func mustSQL(t *testing.T) func(string, error) string {
	return func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// dirFiles lists every file in dir, hidden ones included, sorted.
func dirFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// objects lists the backups under prefix in the shared bucket (not their manifests), from the S3 server's
// directory.
func objects(t testing.TB, s3 *backuptest.S3, prefix string) []string {
	t.Helper()
	var names []string
	for _, n := range allObjectsAt(t, s3, prefix) {
		if !strings.HasSuffix(n, manifestSuffix) {
			names = append(names, n)
		}
	}
	return names
}

// allObjectsAt returns every object under prefix in the test bucket, the backups' manifests included, sorted.
func allObjectsAt(t testing.TB, s3 *backuptest.S3, prefix string) []string {
	t.Helper()
	names, err := s3.Objects(bucket, prefix)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// withManifests returns the names of backups and of their manifests, sorted.
func withManifests(backups []string) []string {
	var out []string
	for _, b := range backups {
		out = append(out, b, b+manifestSuffix)
	}
	sort.Strings(out)
	return out
}

// backupFiles returns the backups (not markers) among names.
func backupFiles(names []string) []string {
	var out []string
	for _, n := range names {
		if _, ok := parseBackupName(n); ok {
			out = append(out, n)
		}
	}
	return out
}

// dumpText returns the uncompressed content of a backup file, by the codec its name ends with, failing on a
// damaged stream.
func dumpText(t *testing.T, path string) string {
	t.Helper()
	n, ok := parseBackupName(filepath.Base(path))
	if !ok {
		t.Fatalf("%s is not named like a backup", path)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := n.codec.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

// stored is the path of the object name under prefix in the test bucket, in the S3 server's directory.
func stored(prefix, name string) string { return filepath.Join(store.Root, bucket, prefix, name) }

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatalf("%s (%d bytes) and %s (%d bytes) differ", a, len(x), b, len(y))
	}
}

func wantFiles(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("after %s: %s", timeout, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
