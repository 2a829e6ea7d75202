package backup

import (
	"encoding/json"
	"github.com/tandem-dev/tandem/backup/backuptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPasswordFileRotation: with DATABASE_PASSWORD_FILE the sidecar reads the password at every backup, so a
// password rotated in the database and in the mounted Secret is used from the next backup on, without a
// restart; tandem restore reads it too.
func TestPasswordFileRotation(t *testing.T) {
	must := mustSQL(t)
	db, role := dbFor(t, "db"), dbFor(t, "role")
	must(pg.SQL("postgres", "CREATE ROLE "+role+" LOGIN SUPERUSER PASSWORD 'first-password'"))
	must(pg.SQL("postgres", "CREATE DATABASE "+db+" OWNER "+role))
	must(pg.SQL(db, pgSchema))
	want := must(pg.SQL(db, pgDigest))
	secret := filepath.Join(t.TempDir(), "database-password")
	writeSecret := func(pw string) {
		t.Helper()
		// As the kubelet updates a Secret volume: a new file renamed over the old one.
		tmp := secret + ".new"
		if err := os.WriteFile(tmp, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, secret); err != nil {
			t.Fatal(err)
		}
	}
	writeSecret("first-password")
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(withoutPassword(pgEnv(db, prefix, dir)), "DATABASE_USER="+role, "DATABASE_PASSWORD_FILE="+secret,
		"BACKUP_INTERVAL=1s", "BACKUP_KEEP=100")
	r := startTandem(t, env, "backup")
	eventually(t, 30*time.Second, "a backup lands with the first password", func() bool { return len(objects(t, store, prefix)) >= 1 })

	must(pg.SQL("postgres", "ALTER ROLE "+role+" PASSWORD 'second-password'"))
	writeSecret("second-password")
	rotated := time.Now()
	eventually(t, 30*time.Second, "a backup taken after the rotation lands", func() bool {
		for _, n := range objects(t, store, prefix) {
			if p, ok := parseBackupName(n); ok && p.time.After(rotated.Add(time.Second)) {
				return true
			}
		}
		return false
	})
	r.stop(t)
	if strings.Contains(r.stderr.String(), "-password") {
		t.Fatal("a password appears in the log")
	}

	must(pg.SQL(db, "DROP TABLE items"))
	if code, _ := tandemRun(t, env, "restore", "--from", "latest"); code != 0 {
		t.Fatalf("restore --from latest with the rotated password file exited %d", code)
	}
	if got := must(pg.SQL(db, pgDigest)); got != want {
		t.Fatalf("restored: %s, want %s", got, want)
	}
}

// TestPasswordFileErrors: a password file that cannot be read, or one set beside DATABASE_PASSWORD, stops
// tandem backup --once and tandem restore before anything else, naming the setting; the sidecar (tandem backup)
// says the same on /healthz and in its log, and keeps running until SIGTERM. Nothing is written.
func TestPasswordFileErrors(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	missing := filepath.Join(t.TempDir(), "database-password")
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{name: "missing file", env: append(withoutPassword(pgEnv("postgres", prefix, dir)), "DATABASE_PASSWORD_FILE="+missing),
			want: "DATABASE_PASSWORD_FILE (--password-file): open " + missing + ": no such file or directory"},
		{name: "a directory", env: append(withoutPassword(pgEnv("postgres", prefix, dir)), "DATABASE_PASSWORD_FILE="+dir),
			want: "DATABASE_PASSWORD_FILE (--password-file): read " + dir + ": is a directory"},
		{name: "both", env: append(pgEnv("postgres", prefix, dir), "DATABASE_PASSWORD_FILE="+missing),
			want: "DATABASE_PASSWORD (--password) and DATABASE_PASSWORD_FILE (--password-file) are both set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, args := range [][]string{{"backup", "--once"}, {"restore", "--from", "latest"}} {
				code, out := tandemRun(t, tt.env, args...)
				if code == 0 || !strings.Contains(out, tt.want) {
					t.Fatalf("tandem %s exited %d; want a failure saying %q", strings.Join(args, " "), code, tt.want)
				}
			}
			sidecarSurvives(t, tt.env, tt.want)
			nothingLeft(t, dir, prefix)
		})
	}
}

// sidecarSurvives starts tandem backup with env, which it cannot back up with, and checks that it stays up (a
// sidecar that exits crash-loops and takes its pod's readiness with it): /healthz answers 503 saying want, the
// failure is counted, the log says it, and SIGTERM ends it with 0.
func sidecarSurvives(t *testing.T, env []string, want string) {
	t.Helper()
	port, err := backuptest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + itoa(port)
	r := startTandem(t, append(env, "BACKUP_METRICS_BIND_ADDRESS="+addr), "backup")
	var body string
	eventually(t, 10*time.Second, "/healthz to answer 503", func() bool {
		code, b, err := tryGet("http://" + addr + "/healthz")
		body = b
		return err == nil && code == 503
	})
	if !strings.Contains(body, want) {
		t.Errorf("/healthz says %q, want the reason %q", body, want)
	}
	if _, metrics := httpGet(t, "http://"+addr+"/metrics"); !strings.Contains(metrics, `tandem_backup_failures_total{stage="start"} 1`) {
		t.Errorf("/metrics does not count the failure to start:\n%s", metrics)
	}
	time.Sleep(time.Second)
	select {
	case <-r.done:
		t.Fatalf("the sidecar exited %d; it must keep running:\n%s", r.code, r.stderr.String())
	default:
	}
	quoted, _ := json.Marshal(want) // the log is JSON
	if log := r.stderr.String(); !strings.Contains(log, strings.Trim(string(quoted), `"`)) || !strings.Contains(log, "keeps running") {
		t.Errorf("the log does not say why the sidecar cannot back up:\n%s", log)
	}
	r.stop(t)
}

// withoutPassword is env without DATABASE_PASSWORD.
func withoutPassword(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "DATABASE_PASSWORD=") {
			out = append(out, kv)
		}
	}
	return out
}
