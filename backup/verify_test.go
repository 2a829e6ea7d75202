package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/tandem-dev/tandem/backup/backuptest"
)

// The verification tests back up real PostgreSQL and MariaDB databases, then restore them into the throwaway
// servers tandem starts itself.

// verifyCase is one engine's database, as a verification test makes it.
type verifyCase struct {
	name, engine string
	// all backs up every database (mysql without DATABASE_NAME).
	all bool
}

var verifyCases = []verifyCase{{"pg", "postgres", false}, {"maria", "mysql", false}, {"maria-all", "mysql", true}}

// digest is a summary of the items table of db that changes with any row.
func (c verifyCase) digest(t *testing.T, db string) string {
	t.Helper()
	if c.engine == "postgres" {
		return mustSQL(t)(pg.SQL(db, pgDigest))
	}
	return mustSQL(t)(maria.SQL(db, "SET SESSION group_concat_max_len = 100000000; "+mariaDigest))
}

// backedUp makes a database of the test's own for engine with schema (items and its rows, and what the schema
// adds) and takes one backup of it with tandem backup --once, into dir and the bucket's prefix; env is the
// sidecar's environment for it.
func backedUp(t *testing.T, engine, schema string) (db, dir, prefix string, env []string) {
	t.Helper()
	return verifyCase{engine: engine}.backedUp(t, schema)
}

func (c verifyCase) backedUp(t *testing.T, schema string) (db, dir, prefix string, env []string) {
	t.Helper()
	must := mustSQL(t)
	db, dir, prefix = dbFor(t, "db"), t.TempDir(), prefixFor(t)
	defer func() { env = append(env, "TMPDIR="+scratchTmp(t)) }()
	if c.engine == "postgres" {
		must(pg.SQL("postgres", "CREATE DATABASE "+db))
		must(pg.SQL(db, schema))
		env = pgEnv(db, prefix, dir)
	} else {
		must(maria.SQL("", "CREATE DATABASE "+db))
		must(maria.SQL(db, "SET SESSION max_recursive_iterations = 100000; "+schema))
		env = mariaEnv(db, prefix, dir)
		if c.all {
			env = append(env, "DATABASE_NAME=")
		}
	}
	if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
		t.Fatalf("backup --once exited %d", code)
	}
	return db, dir, prefix, env
}

// schema is the case's items table with 2000 rows, and a second table of two rows with a name that needs
// quoting.
func (c verifyCase) schema() string {
	if c.engine == "postgres" {
		return pgSchema + `; CREATE TABLE "Order Lines" (id int); INSERT INTO "Order Lines" VALUES (1), (2);`
	}
	return mariaSchema + "; CREATE TABLE `Order Lines` (id INT); INSERT INTO `Order Lines` VALUES (1), (2);"
}

// table is how the dump names table of db.
func (c verifyCase) table(db, table string) string {
	switch {
	case c.engine == "postgres" && table == "Order Lines":
		return `public."Order Lines"`
	case c.engine == "postgres":
		return "public." + table
	case c.all:
		return db + "." + table
	}
	return table
}

// TestVerifyRestoresIntoAThrowawayServer: tandem verify restores a real backup into a server of its own, checks
// every table's rows against the manifest and records that it passed in the manifest, leaving the database it
// backs up unchanged and no server or directory behind; a manifest whose row count the restored copy does not
// have fails it, saying which table, and the failure is recorded too.
func TestVerifyRestoresIntoAThrowawayServer(t *testing.T) {
	for _, c := range verifyCases {
		t.Run(c.name, func(t *testing.T) {
			db, _, prefix, env := c.backedUp(t, c.schema())
			before := c.digest(t, db)
			code, out := tandemRun(t, env, "verify", "--from", "latest")
			lines, _ := json.Marshal(c.table(db, "Order Lines"))
			if code != 0 || !strings.Contains(out, `"msg":"verified"`) || !strings.Contains(out, `"table":`+string(lines)+`,"rows":2`) {
				t.Fatalf("verify exited %d, or did not check %s:\n%s", code, lines, out)
			}
			if got := c.digest(t, db); got != before {
				t.Errorf("verify changed the database it backs up: %s, was %s", got, before)
			}
			noScratchLeft(t, env)
			name := objects(t, store, prefix)[0]
			m := readObjectManifest(t, prefix, name)
			if v := m.Verification; v == nil || v.Result != VerifyPassed || v.Rows < 2002 || v.Seconds <= 0 || v.By == "" {
				t.Fatalf("the manifest records %+v, want a verification that passed with at least 2002 rows", v)
			}

			// A manifest that records a row the backup does not hold, uploaded through the store as a tamperer
			// would.
			items := c.table(db, "items")
			for i := range m.Tables {
				if m.Tables[i].Name == items {
					m.Tables[i].Rows++
				}
			}
			m.Verification = nil
			putManifestObject(t, prefix, m)
			code, out = tandemRun(t, env, "verify", "--from", name)
			if want := fmt.Sprintf("table %s has 2000 rows, the manifest says 2001", items); code == 0 || !strings.Contains(out, want) {
				t.Fatalf("verify against a wrong manifest exited %d, want %q:\n%s", code, want, out)
			}
			if v := readObjectManifest(t, prefix, name).Verification; v == nil || v.Result != VerifyFailed || v.Reason != ReasonRows {
				t.Errorf("the manifest records %+v, want a failure for its rows", v)
			}
			noScratchLeft(t, env)
		})
	}
}

// TestAByteFlippedFailsVerificationAndRestore: one byte changed in the stored object, and verify fails saying
// so, restore --from latest refuses it, and the database is unchanged.
func TestAByteFlippedFailsVerificationAndRestore(t *testing.T) {
	for _, c := range verifyCases[:2] {
		t.Run(c.name, func(t *testing.T) {
			db, _, prefix, env := c.backedUp(t, c.schema())
			if c.engine == "postgres" {
				mustSQL(t)(pg.SQL(db, "DELETE FROM items WHERE id > 10"))
			} else {
				mustSQL(t)(maria.SQL(db, "DELETE FROM items WHERE id > 10"))
			}
			before := c.digest(t, db)
			name := objects(t, store, prefix)[0]
			data, err := os.ReadFile(filepath.Join(store.Root, bucket, prefix, name))
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0x01
			putObject(t, "s3://"+bucket+"/"+prefix, name, data)
			code, out := tandemRun(t, env, "verify", "--from", "latest")
			if code == 0 || !strings.Contains(out, "changed or was damaged") {
				t.Fatalf("verify of a changed backup exited %d:\n%s", code, out)
			}
			if v := readObjectManifest(t, prefix, name).Verification; v == nil || v.Result != VerifyFailed || v.Reason != ReasonChecksum {
				t.Errorf("the manifest records %+v, want a checksum failure", v)
			}
			// Failed, it is never the latest: there is nothing else to restore.
			code, out = tandemRun(t, env, "restore", "--from", "latest")
			if code == 0 || !strings.Contains(out, "failed verification") {
				t.Fatalf("restore --from latest of the only backup, which failed verification, exited %d:\n%s", code, out)
			}
			if code, out = tandemRun(t, env, "restore", "--from", name); code == 0 || !strings.Contains(out, "changed or was damaged") {
				t.Fatalf("restore --from %s exited %d:\n%s", name, code, out)
			}
			if got := c.digest(t, db); got != before {
				t.Fatalf("the refused restore changed the database: %s, was %s", got, before)
			}
			noScratchLeft(t, env)
		})
	}
}

// TestAFaultInVerificationFailsTheRowCheck: a table dropped from the restored copy (a fault injected into the
// verification, after the restore) fails it, naming the table.
func TestAFaultInVerificationFailsTheRowCheck(t *testing.T) {
	for _, c := range verifyCases[:2] {
		t.Run(c.name, func(t *testing.T) {
			db, _, _, env := c.backedUp(t, c.schema())
			drop := `DROP TABLE "Order Lines"`
			if c.engine == "mysql" {
				drop = "DROP TABLE `Order Lines`"
			}
			verifyFault = func(ctx context.Context, srv scratchServer, database string) error {
				_, err := srv.query(ctx, database, drop)
				return err
			}
			t.Cleanup(func() { verifyFault = nil })
			_, err := verifyInProcess(t, env)
			want := fmt.Sprintf("table %s is missing", c.table(db, "Order Lines"))
			var ve *VerifyError
			if err == nil || !strings.Contains(err.Error(), want) || !errors.As(err, &ve) || ve.Reason != ReasonRows {
				t.Fatalf("verify with a table dropped from the restored copy: %v, want %q", err, want)
			}
			noScratchLeft(t, env)
		})
	}
}

// TestTheUsersChecksMustHold: BACKUP_VERIFY_QUERIES run in the restored copy; one that is not true fails the
// verification, naming it.
func TestTheUsersChecksMustHold(t *testing.T) {
	for _, c := range verifyCases[:2] {
		t.Run(c.name, func(t *testing.T) {
			_, _, _, env := c.backedUp(t, c.schema())
			good, bad := "SELECT count(*) = 2000 FROM items", "SELECT max(id) > 5000 FROM items"
			code, out := tandemRun(t, append(env, "BACKUP_VERIFY_QUERIES="+good+"\n\n"+good), "verify", "--from", "latest")
			if code != 0 || !strings.Contains(out, `"checks":2`) {
				t.Fatalf("verify with true checks exited %d:\n%s", code, out)
			}
			code, out = tandemRun(t, append(env, "BACKUP_VERIFY_QUERIES="+good+"\n"+bad), "verify", "--from", "latest")
			if code == 0 || !strings.Contains(out, bad) || !strings.Contains(out, "not true") {
				t.Fatalf("verify with a false check exited %d:\n%s", code, out)
			}
		})
	}
}

// TestTheSidecarVerifiesEachBackup: the sidecar verifies each backup after it lands (its metrics and manifest say
// so); a tampered object at the location, named as if taken later, is caught by the next verification, shows in
// the metrics and /healthz, and is never the latest; the next backup that verifies makes /healthz healthy again.
func TestTheSidecarVerifiesEachBackup(t *testing.T) {
	c := verifyCases[0]
	db, dir, prefix := dbFor(t, "db"), t.TempDir(), prefixFor(t)
	mustSQL(t)(pg.SQL("postgres", "CREATE DATABASE "+db))
	mustSQL(t)(pg.SQL(db, c.schema()))
	addr := freeAddr(t)
	env := append(pgEnv(db, prefix, dir), "BACKUP_VERIFY=each", "BACKUP_INTERVAL=4s", "BACKUP_METRICS_BIND_ADDRESS="+addr, "TMPDIR="+scratchTmp(t))
	r := startTandem(t, env, "backup")
	metrics := func() string {
		_, body, _ := tryGet("http://" + addr + "/metrics")
		return body
	}
	eventually(t, time.Minute, "a verified backup in the metrics", func() bool {
		v, ok := metricValue(metrics(), "tandem_backup_last_verified_timestamp_seconds")
		return ok && v > 0
	})
	first := objects(t, store, prefix)[0]
	m := readObjectManifest(t, prefix, first)
	if !m.passed() {
		t.Fatalf("the first backup's manifest records %+v, want a verification that passed", m.Verification)
	}

	// A copy named an hour later with one byte changed, and a manifest of its own as a writer would leave it.
	n, _ := parseBackupName(first)
	tampered := backupName(n.base, n.pod, n.ext, n.time.Add(time.Hour))
	data, err := os.ReadFile(filepath.Join(store.Root, bucket, prefix, first))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	putObject(t, "s3://"+bucket+"/"+prefix, tampered, data)
	m.Name, m.Verification = tampered, nil
	putManifestObject(t, prefix, m)
	eventually(t, time.Minute, "the tampered backup caught by a verification", func() bool {
		v, _ := metricValue(metrics(), `tandem_backup_verification_failures_total{reason="checksum"}`)
		return v >= 1
	})
	if code, body := httpGet(t, "http://"+addr+"/healthz"); code != 503 || !strings.Contains(body, "did not pass verification") {
		t.Errorf("/healthz after a failed verification: %d %s", code, body)
	}
	if v := readObjectManifest(t, prefix, tampered).Verification; v == nil || v.Reason != ReasonChecksum {
		t.Errorf("the tampered backup's manifest records %+v, want a checksum failure", v)
	}
	eventually(t, time.Minute, "/healthz healthy once the next backup verified", func() bool {
		code, _, _ := tryGet("http://" + addr + "/healthz")
		return code == 200
	})
	r.stop(t)
	code, out := tandemRun(t, env, "restore", "--from", "latest")
	if code != 0 || strings.Contains(out, tampered) {
		t.Fatalf("restore --from latest exited %d, or took the tampered backup %s:\n%s", code, tampered, out)
	}
	noScratchLeft(t, env)
}

// TestVerifyStoppedHalfWayLeavesNothing: SIGTERM while tandem verify runs leaves no server process and no data
// directory behind.
func TestVerifyStoppedHalfWayLeavesNothing(t *testing.T) {
	for _, c := range verifyCases[:2] {
		t.Run(c.name, func(t *testing.T) {
			_, _, _, env := c.backedUp(t, c.schema())
			r := startTandem(t, env, "verify", "--from", "latest")
			eventually(t, time.Minute, "the throwaway server starts", func() bool {
				return strings.Contains(r.stderr.String(), "throwaway server started")
			})
			// The server is there to be stopped: the check below can fail.
			if len(scratchLeft(env)) == 0 {
				t.Fatal("no throwaway server's directory or process while it runs")
			}
			if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			r.wait(t, 30*time.Second)
			noScratchLeft(t, env)
		})
	}
}

// verifyInProcess runs Verify --from latest in the test's process with the sidecar's environment env, so that a
// test can inject a fault.
func verifyInProcess(t *testing.T, env []string) (*VerifyResult, error) {
	t.Helper()
	vars := map[string]string{}
	for _, kv := range append(store.Env(), env...) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} {
		if v, ok := vars[k]; ok {
			t.Setenv(k, v)
		}
	}
	t.Setenv("PATH", deps.PGBinDir+":"+os.Getenv("PATH"))
	t.Setenv("TMPDIR", vars["TMPDIR"])
	cfg := DefaultConfig()
	if err := cfg.ApplyEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	return Verify(context.Background(), cfg, RestoreOptions{From: Latest}, logr.Discard())
}

// putManifestObject uploads m as its backup's manifest through the store.
func putManifestObject(t *testing.T, prefix string, m Manifest) {
	t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	putObject(t, "s3://"+bucket+"/"+prefix, m.Name+manifestSuffix, data)
}

// scratchTmp is a temporary directory for the throwaway servers of one test's tandem runs, see scratchLeft. Run as
// root, tandem runs them as nobody, who must reach it.
func scratchTmp(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tandem-verify-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// scratchLeft lists the throwaway servers' directories and processes that the tandem runs with env left: in its
// BACKUP_DIR and its TMPDIR, which is the test's own, so that other tandem processes on the machine do not count.
func scratchLeft(env []string) []string {
	var dirs []string
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); (k == "BACKUP_DIR" || k == "TMPDIR") && v != "" {
			dirs = append(dirs, v)
		}
	}
	var left []string
	for _, d := range dirs {
		found, _ := filepath.Glob(filepath.Join(d, ".tandem-verify-*"))
		left = append(left, found...)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, d := range dirs {
			if strings.Contains(string(b), filepath.Join(d, ".tandem-verify-")) {
				left = append(left, "process: "+strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
	}
	return left
}

// noScratchLeft fails the test when a throwaway server's directory or process of the tandem run with env is
// left.
func noScratchLeft(t *testing.T, env []string) {
	t.Helper()
	if left := scratchLeft(env); len(left) > 0 {
		t.Errorf("the throwaway server left: %q", left)
	}
}

// freeAddr is a local address no one listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := backuptest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + itoa(port)
}

// metricValue reads the value of series (a name, with its labels when it has any) from a /metrics body.
func metricValue(body, series string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// TestLatestIsTheNewestVerifiedBackup: restore --from latest takes the newest backup that passed verification,
// passing over newer ones not verified yet and never taking one that failed or is suspect; with none verified, the
// newest that is not suspect and did not fail.
func TestLatestIsTheNewestVerifiedBackup(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	type planted struct {
		hour    int
		verdict string // passed, failed, suspect, or "" (not verified)
	}
	for _, tt := range []struct {
		name            string
		backups         []planted
		want            int // the hour of the latest; -1: an error
		wantUnverified  bool
		wantNewer       int // the hour of the newest passed over; -1: none
		wantErrContains string
	}{
		{name: "the newest verified, newer unverified passed over", backups: []planted{{0, "passed"}, {1, ""}, {2, ""}}, want: 0, wantNewer: 2},
		{name: "a failed and a suspect one are never taken", backups: []planted{{0, "passed"}, {1, "failed"}, {2, "suspect"}}, want: 0, wantNewer: -1},
		{name: "none verified: the newest that did not fail", backups: []planted{{0, ""}, {1, ""}, {2, "failed"}}, want: 1, wantUnverified: true, wantNewer: -1},
		{name: "all failed", backups: []planted{{0, "failed"}, {1, "failed"}}, want: -1, wantErrContains: "failed verification"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			b := openLocation(t, "file://"+dir)
			name := func(h int) string { return backupName("app", "app-0", "sql", t0.Add(time.Duration(h)*time.Hour)) }
			for _, p := range tt.backups {
				m := Manifest{Format: ManifestFormat, Name: name(p.hour), Engine: "postgres", SHA256: strings.Repeat("ab", 32)}
				switch p.verdict {
				case "suspect":
					m.Suspect = "small"
				case VerifyPassed, VerifyFailed:
					m.Verification = &Verification{Result: p.verdict}
				}
				data, err := json.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				for path, content := range map[string][]byte{m.Name: []byte("data"), m.Name + manifestSuffix: data} {
					if err := os.WriteFile(filepath.Join(dir, path), content, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, unverified, newer, err := latest(context.Background(), b, "app", "sql")
			if tt.want < 0 {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrContains) {
					t.Fatalf("latest: %q, %v; want an error containing %q", got, err, tt.wantErrContains)
				}
				return
			}
			wantNewer := ""
			if tt.wantNewer >= 0 {
				wantNewer = name(tt.wantNewer)
			}
			if err != nil || got != name(tt.want) || unverified != tt.wantUnverified || newer != wantNewer {
				t.Fatalf("latest: %q (unverified %v, newer %q), %v; want %q (unverified %v, newer %q)", got, unverified, newer, err,
					name(tt.want), tt.wantUnverified, wantNewer)
			}
		})
	}
}

// TestVerifyAsAUserWithoutAName: tandem verify run as a user ID that /etc/passwd does not name (as a platform that
// assigns user IDs runs containers) still starts its throwaway PostgreSQL, which needs a name, through
// nss_wrapper.
func TestVerifyAsAUserWithoutAName(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run tandem as another user")
	}
	const uid = 4242
	if _, err := user.LookupId(itoa(uid)); err == nil {
		t.Skipf("user ID %d has a name here", uid)
	}
	_, dir, _, env := backedUp(t, "postgres", pgSchema)
	tmp := scratchTmp(t)
	bin := filepath.Join(tmp, "tandem")
	data, err := os.ReadFile(tandemBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, tmp} {
		if err := os.Chown(d, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "verify", "--from", "latest")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	env = append(env, "TMPDIR="+tmp, "HOME="+tmp)
	r := startCommand(t, cmd, env)
	if code := r.wait(t, 2*time.Minute); code != 0 || !strings.Contains(r.stderr.String(), `"msg":"verified"`) {
		t.Fatalf("verify as user ID %d exited %d", uid, code)
	}
	noScratchLeft(t, env)
}

// TestBackupOnceVerifiesTheBackup: tandem backup --once (a CronJob's backup) verifies the backup it took, and
// exits non-zero when that backup does not verify, with the backup kept at the location and its failure recorded.
func TestBackupOnceVerifiesTheBackup(t *testing.T) {
	must := mustSQL(t)
	db, dir, prefix := dbFor(t, "db"), t.TempDir(), prefixFor(t)
	must(pg.SQL("postgres", "CREATE DATABASE "+db))
	must(pg.SQL(db, pgSchema))
	env := append(pgEnv(db, prefix, dir), "BACKUP_VERIFY=each", "TMPDIR="+scratchTmp(t))
	if code, out := tandemRun(t, env, "backup", "--once"); code != 0 || !strings.Contains(out, `"msg":"verified"`) {
		t.Fatalf("backup --once exited %d, or did not verify:\n%s", code, out)
	}
	first := objects(t, store, prefix)[0]
	if m := readObjectManifest(t, prefix, first); !m.passed() {
		t.Fatalf("the manifest records %+v, want a verification that passed", m.Verification)
	}
	time.Sleep(time.Second) // a backup name of its own
	code, out := tandemRun(t, append(env, "BACKUP_VERIFY_QUERIES=SELECT count(*) = 0 FROM items"), "backup", "--once")
	if code == 0 || !strings.Contains(out, "not true") {
		t.Fatalf("backup --once whose backup fails a check exited %d:\n%s", code, out)
	}
	names := objects(t, store, prefix)
	second := names[len(names)-1]
	if m := readObjectManifest(t, prefix, second); second == first || !m.failedVerification() || m.Verification.Reason != ReasonCheck {
		t.Fatalf("the second backup %s's manifest records %+v, want a failed check", second, m.Verification)
	}
	noScratchLeft(t, env)
}

// TestTheChecksumIsCheckedWhileTheBackupStreams: an object whose bytes changed between the check against the
// manifest and the restore fails at its end with errObjectChanged (a verification's reason "checksum"), and one
// that did not reads to its end.
func TestTheChecksumIsCheckedWhileTheBackupStreams(t *testing.T) {
	data := []byte("-- PostgreSQL database dump\n")
	sum := sha256.Sum256(data)
	for _, tt := range []struct {
		name, want string
		changed    bool
	}{
		{"unchanged", hex.EncodeToString(sum[:]), false},
		{"changed", strings.Repeat("0", 64), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := io.ReadAll(&checkedReader{r: bytes.NewReader(data), h: sha256.New(), want: tt.want})
			if tt.changed != errors.Is(err, errObjectChanged) || (!tt.changed && (err != nil || !bytes.Equal(got, data))) {
				t.Fatalf("read %q, %v; want changed=%v", got, err, tt.changed)
			}
		})
	}
}

// TestAVerificationThatWouldNotFitIsNotStarted: with BACKUP_DIR_SIZE_LIMIT too small for the throwaway server a
// backup needs, verify says so, naming the size to set, starts no server, and records nothing in the manifest
// (the backup is not at fault).
func TestAVerificationThatWouldNotFitIsNotStarted(t *testing.T) {
	c := verifyCases[0]
	_, _, prefix, env := c.backedUp(t, c.schema())
	code, out := tandemRun(t, append(env, "BACKUP_DIR_SIZE_LIMIT=50Mi"), "verify", "--from", "latest")
	if code == 0 || !strings.Contains(out, "so it was not started: raise the profile's dataSizeLimit to at least") {
		t.Fatalf("verify with too small a directory exited %d:\n%s", code, out)
	}
	noScratchLeft(t, env)
	if m := readObjectManifest(t, prefix, objects(t, store, prefix)[0]); m.Verification != nil {
		t.Fatalf("the manifest records %+v for a verification that could not start", m.Verification)
	}
	if code, out := tandemRun(t, append(env, "BACKUP_DIR_SIZE_LIMIT=1Gi"), "verify", "--from", "latest"); code != 0 {
		t.Fatalf("verify with room exited %d:\n%s", code, out)
	}
}

// TestTheSpaceWatchStopsAVerificationThatOutgrowsTheDirectory: the watch ends its context, saying why, once what
// the directory holds passes the limit less its margin, and not before.
func TestTheSpaceWatchStopsAVerificationThatOutgrowsTheDirectory(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, DirSizeLimit: 10 << 20}
	ctx, stop := cfg.watchSpace(context.Background())
	defer stop()
	write := func(name string, n int) {
		if err := os.WriteFile(filepath.Join(dir, name), bytes.Repeat([]byte{'x'}, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a", 8<<20) // under 9 MiB
	time.Sleep(2500 * time.Millisecond)
	if err := ctx.Err(); err != nil {
		t.Fatalf("8 MiB of a 10 MiB limit ended the watch: %v", context.Cause(ctx))
	}
	write("b", 2<<20)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("10 MiB of a 10 MiB limit did not end the watch")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, errOutgrew) || !strings.Contains(cause.Error(), "raise the profile's dataSizeLimit") {
		t.Fatalf("the watch ended with %v", cause)
	}
}
