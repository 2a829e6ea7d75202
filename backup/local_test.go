package backup

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/backup/codec"
)

func TestBackupName(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	name := backupName("app", "", "sql", at)
	if name != "app-20260102T020405Z.sql.zst" {
		t.Fatalf("name %q, want the UTC timestamp", name)
	}
	n, ok := parseBackupName(name)
	if !ok || n.base != "app" || !n.time.Equal(at) || n.ext != "sql" || n.pod != "" || n.codec != codec.Zstd {
		t.Fatalf("parsed %+v %v", n, ok)
	}
	// Backups written before zstd are gzip's.
	if n, ok := parseBackupName("app-20260102T020405Z-db-0.sql.gz"); !ok || n.pod != "db-0" || n.ext != "sql" || n.codec != codec.Gzip {
		t.Fatalf("a gzip backup's name parsed as %+v %v", n, ok)
	}
	// Two replicas of a StatefulSet in the same second: their backups differ by the pod, which the name says.
	a, b := backupName("my-app", "orders-db-0", "sql", at), backupName("my-app", "orders-db-1", "sql", at)
	if a == b || a != "my-app-20260102T020405Z-orders-db-0.sql.zst" {
		t.Fatalf("names %q and %q", a, b)
	}
	if n, ok := parseBackupName(b); !ok || n.base != "my-app" || n.pod != "orders-db-1" || n.ext != "sql" || !n.time.Equal(at) {
		t.Fatalf("parsed %+v %v", n, ok)
	}
	if n, ok := parseBackupName(backupName("app", "db.example-0", "archive", at)); !ok || n.pod != "db.example-0" || n.ext != "archive" {
		t.Fatalf("a pod name with dots: %+v %v", n, ok)
	}
	if n, ok := parseBackupName("my-app-20260102T020405Z.sql.gz"); !ok || n.base != "my-app" {
		t.Fatalf("a database name with dashes: %+v %v", n, ok)
	}
	for _, n := range []string{".app-20260102T020405Z.sql.gz.partial", "app-20260102T020405Z.sql.gz.uploaded", "app.sql.gz", "app-2026.sql.gz",
		"app-20260102T020405Z-.sql.gz", "app-20260102T020405Z-Pod.sql.gz", "app-20260102T020405Z.sql.bz2", "app-20260102T020405Z.sql.zst.partial"} {
		if _, ok := parseBackupName(n); ok {
			t.Errorf("%q parsed as a backup", n)
		}
	}
}

func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	b := func(day int) string {
		return backupName("app", "", "sql", time.Date(2026, 1, day, 0, 0, 0, 0, time.UTC))
	}
	// Days 1-6; 2 and 5 not uploaded; a marker whose backup is gone; a stranger's file.
	touch(t, dir, b(1), b(1)+".uploaded", b(2), b(3), b(3)+".uploaded", b(4), b(4)+".uploaded", b(5), b(6), b(6)+".uploaded",
		b(9)+".uploaded", "notes.txt")
	removed, err := prune(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles(t, "removed", removed, []string{b(3), b(1)})
	wantFiles(t, "left", dirFiles(t, dir), []string{b(2), b(4), b(4) + ".uploaded", b(5), b(6), b(6) + ".uploaded", "notes.txt"})

	removed, err = prune(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles(t, "removed with keep 0", removed, []string{b(6), b(4)})
	wantFiles(t, "left with keep 0: only what did not land", dirFiles(t, dir), []string{b(2), b(5), "notes.txt"})
}

func TestRemovePartials(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, ".app-20260102T020405Z.sql.gz.partial", "app-20260102T020405Z.sql.gz", "x.partial")
	removed, err := removePartials(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles(t, "removed", removed, []string{".app-20260102T020405Z.sql.gz.partial"})
	wantFiles(t, "left", dirFiles(t, dir), []string{"app-20260102T020405Z.sql.gz", "x.partial"})
}

func TestHealthz(t *testing.T) {
	m := NewMetrics(time.Hour)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func(path string) (int, string) { return httpGet(t, srv.URL+path) }
	if code, body := get("/healthz"); code != 200 {
		t.Fatalf("a fresh sidecar is unhealthy: %d %s", code, body)
	}
	m.started = time.Now().Add(-3 * time.Hour)
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "no successful backup since the start") {
		t.Fatalf("no success in three intervals: %d %s", code, body)
	}
	m.dumped("app-x.sql.gz", time.Now().Add(-2*time.Second), 0, 1234)
	m.uploaded("app-x.sql.gz")
	if code, body := get("/healthz"); code != 200 {
		t.Fatalf("after a success: %d %s", code, body)
	}
	m.success = time.Now().Add(-121 * time.Minute)
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "the last successful backup was") {
		t.Fatalf("last success 2h1m ago with a 1h interval: %d %s", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{"tandem_backup_size_bytes 1234", "tandem_backup_last_success_timestamp_seconds 1.", "tandem_backup_duration_seconds 2.",
		`tandem_backup_failures_total{stage="dump"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
}
