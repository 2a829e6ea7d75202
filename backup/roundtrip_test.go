package backup

import (
	"path/filepath"
	"strings"
	"testing"
)

const pgSchema = `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[], created timestamptz);
INSERT INTO items SELECT i, 'item ' || i || E' with ''quotes'', a tab\t, a newline\n and ünïcødé', i * 1.25,
  ARRAY['a' || i, 'b'], timestamptz '2026-01-02 03:04:05+00' + i * interval '1 minute' FROM generate_series(1, 2000) AS i;`

const pgDigest = `SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id)) FROM items t`

// TestPostgresRoundTrip backs up a PostgreSQL database to the S3 server with `tandem backup --once`, restores
// the object into a fresh database with `tandem restore --from URL`, and compares the rows; then takes a second
// backup of changed rows (the local copy of the first is pruned with BACKUP_KEEP=1, both stay in the bucket) and
// restores `latest` over the original after dropping its table.
func TestPostgresRoundTrip(t *testing.T) {
	must := mustSQL(t)
	src, dst := dbFor(t, "src"), dbFor(t, "dst")
	must(pg.SQL("postgres", "CREATE DATABASE "+src))
	must(pg.SQL("postgres", "CREATE DATABASE "+dst))
	must(pg.SQL(src, pgSchema))
	want := must(pg.SQL(src, pgDigest))
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv(src, prefix, dir), "BACKUP_KEEP=1")

	if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
		t.Fatalf("backup --once exited %d", code)
	}
	files := dirFiles(t, dir)
	first := backupFiles(files)
	if len(first) != 1 || !strings.HasPrefix(first[0], src+"-") || !strings.HasSuffix(first[0], ".sql.zst") {
		t.Fatalf("backups directory holds %q, want one %s-<timestamp>.sql.zst", files, src)
	}
	wantFiles(t, "backups directory", files, []string{first[0], first[0] + manifestSuffix, first[0] + ".uploaded"})
	wantFiles(t, "bucket", allObjectsAt(t, store, prefix), withManifests(first))
	sameFile(t, filepath.Join(dir, first[0]), filepath.Join(store.Root, bucket, prefix, first[0]))
	if sql := dumpText(t, filepath.Join(dir, first[0])); !strings.Contains(sql, "PostgreSQL database dump complete") {
		t.Fatalf("the backup is not a whole pg_dump:\n%.500s", sql)
	}

	url := "s3://" + bucket + "/" + prefix + "/" + first[0]
	if code, _ := tandemRun(t, pgEnv(dst, prefix, dir), "restore", "--from", url); code != 0 {
		t.Fatalf("restore --from %s exited %d", url, code)
	}
	if got := must(pg.SQL(dst, pgDigest)); got != want {
		t.Fatalf("restored into %s: %s, want %s", dst, got, want)
	}

	must(pg.SQL(src, "DELETE FROM items WHERE id % 3 = 0; UPDATE items SET name = 'renamed' WHERE id < 10"))
	want2 := must(pg.SQL(src, pgDigest))
	if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
		t.Fatalf("second backup --once exited %d", code)
	}
	second := backupFiles(dirFiles(t, dir))
	if len(second) != 1 || second[0] == first[0] {
		t.Fatalf("after the second backup with BACKUP_KEEP=1 the directory holds %q, want only the new backup", dirFiles(t, dir))
	}
	wantFiles(t, "bucket", objects(t, store, prefix), []string{first[0], second[0]})

	must(pg.SQL(src, "DROP TABLE items"))
	if code, _ := tandemRun(t, env, "restore", "--from", "latest"); code != 0 {
		t.Fatalf("restore --from latest exited %d", code)
	}
	if got := must(pg.SQL(src, pgDigest)); got != want2 {
		t.Fatalf("restored latest: %s, want %s (the second backup)", got, want2)
	}
	// The dump drops what it creates: restoring over the live table replaces it.
	must(pg.SQL(src, "INSERT INTO items (id, name) VALUES (100000, 'added after the backup')"))
	if code, _ := tandemRun(t, env, "restore", "--from", second[0]); code != 0 {
		t.Fatalf("restore --from %s exited %d", second[0], code)
	}
	if got := must(pg.SQL(src, pgDigest)); got != want2 {
		t.Fatalf("restored over the live table: %s, want %s", got, want2)
	}
}

const mariaSchema = `CREATE TABLE items (id INT PRIMARY KEY, name TEXT NOT NULL, price DECIMAL(10,2), data BLOB, created DATETIME);
INSERT INTO items WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 2000)
  SELECT i, CONCAT('item ', i, ' with ''quotes'', a tab\t, a newline\n and ünïcødé'), i * 1.25, UNHEX(MD5(i)),
  TIMESTAMP '2026-01-02 03:04:05' + INTERVAL i MINUTE FROM seq;`

const mariaDigest = `SELECT CONCAT(COUNT(*), ' ', MD5(GROUP_CONCAT(CONCAT_WS(',', id, name, price, HEX(data), created) ORDER BY id SEPARATOR '|'))) FROM items`

// TestMariaDBRoundTrip backs up a MariaDB database with mariadb-dump (or mysqldump), streamed to the bucket with
// no local copy (the default), and restores it into a fresh database with the mariadb client.
func TestMariaDBRoundTrip(t *testing.T) {
	must := mustSQL(t)
	src, dst := dbFor(t, "src"), dbFor(t, "dst")
	must(maria.SQL("", "CREATE DATABASE "+src+"; CREATE DATABASE "+dst))
	must(maria.SQL(src, "SET SESSION max_recursive_iterations = 100000; "+mariaSchema))
	digest := "SET SESSION group_concat_max_len = 100000000; " + mariaDigest
	want := must(maria.SQL(src, digest))
	dir, prefix := t.TempDir(), prefixFor(t)
	env := func(db string) []string { return mariaEnv(db, prefix, dir) }
	if code, _ := tandemRun(t, env(src), "backup", "--once"); code != 0 {
		t.Fatalf("backup --once exited %d", code)
	}
	wantFiles(t, "backups directory", dirFiles(t, dir), nil)
	got := objects(t, store, prefix)
	if len(got) != 1 || !strings.HasPrefix(got[0], src+"-") || !strings.HasSuffix(got[0], ".sql.zst") {
		t.Fatalf("the bucket holds %q, want one %s-<timestamp>.sql.zst", got, src)
	}
	wantFiles(t, "bucket", allObjectsAt(t, store, prefix), withManifests(got))
	if sql := dumpText(t, stored(prefix, got[0])); !strings.Contains(sql, "Dump completed") {
		t.Fatalf("the backup is not a whole dump:\n%.500s", sql)
	}
	url := "s3://" + bucket + "/" + prefix + "/" + got[0]
	if code, _ := tandemRun(t, env(dst), "restore", "--from", url); code != 0 {
		t.Fatalf("restore exited %d", code)
	}
	if got := must(maria.SQL(dst, digest)); got != want {
		t.Fatalf("restored into %s: %s, want %s", dst, got, want)
	}
}

// TestFileLocation backs up to a file:// location (a mounted volume) and restores the latest from it: the
// location holds the backup and its manifest and nothing else (no .attrs files, no temporary files), the backups
// directory nothing.
func TestFileLocation(t *testing.T) {
	must := mustSQL(t)
	db := dbFor(t, "db")
	must(pg.SQL("postgres", "CREATE DATABASE "+db))
	must(pg.SQL(db, pgSchema))
	want := must(pg.SQL(db, pgDigest))
	dir, target := t.TempDir(), t.TempDir()
	env := append(pgEnv(db, "", dir), "BACKUP_LOCATION=file://"+target)
	if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
		t.Fatalf("backup --once exited %d", code)
	}
	wantFiles(t, "backups directory", dirFiles(t, dir), nil)
	backups := backupFiles(dirFiles(t, target))
	if len(backups) != 1 {
		t.Fatalf("the location holds %q, want one backup", dirFiles(t, target))
	}
	wantFiles(t, "location", dirFiles(t, target), withManifests(backups))
	if sql := dumpText(t, filepath.Join(target, backups[0])); !strings.Contains(sql, "PostgreSQL database dump complete") {
		t.Fatalf("the backup is not a whole pg_dump:\n%.500s", sql)
	}
	must(pg.SQL(db, "DROP TABLE items"))
	if code, _ := tandemRun(t, env, "restore", "--from", "latest"); code != 0 {
		t.Fatalf("restore --from latest exited %d", code)
	}
	if got := must(pg.SQL(db, pgDigest)); got != want {
		t.Fatalf("restored: %s, want %s", got, want)
	}
}
