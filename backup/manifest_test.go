package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readObjectManifest reads the manifest of the backup name from the test bucket's directory.
func readObjectManifest(t *testing.T, prefix, name string) Manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(store.Root, bucket, prefix, name+manifestSuffix))
	if err != nil {
		t.Fatalf("the backup %s has no manifest at the location: %v", name, err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sha256File(t *testing.T, path string) (string, int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), int64(len(data))
}

// TestTheManifestSaysWhatTheBackupHolds: a backup of real PostgreSQL and MariaDB databases lands with a manifest
// that names the engine, the versions, the tables with the rows each holds, the sizes and the SHA-256 of the
// object as stored.
func TestTheManifestSaysWhatTheBackupHolds(t *testing.T) {
	must := mustSQL(t)
	for _, engine := range []string{"postgres", "mysql"} {
		t.Run(engine, func(t *testing.T) {
			db, dir, prefix := dbFor(t, "db"), t.TempDir(), prefixFor(t)
			env := pgEnv(db, prefix, dir)
			table := "public.items"
			if engine == "postgres" {
				must(pg.SQL("postgres", "CREATE DATABASE "+db))
				must(pg.SQL(db, pgSchema+"; CREATE TABLE empty (id int);"))
			} else {
				must(maria.SQL("", "CREATE DATABASE "+db))
				must(maria.SQL(db, "SET SESSION max_recursive_iterations = 100000; "+mariaSchema+"; CREATE TABLE empty (id INT);"))
				env = mariaEnv(db, prefix, dir)
				table = "items"
			}
			if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
				t.Fatalf("backup --once exited %d", code)
			}
			name := backupFiles(dirFiles(t, dir))[0]
			m := readObjectManifest(t, prefix, name)
			sum, size := sha256File(t, filepath.Join(store.Root, bucket, prefix, name))
			empty := strings.Replace(table, "items", "empty", 1)
			wantTables := []tableRows{{empty, 0}, {table, 2000}}
			if m.Format != ManifestFormat || m.Name != name || m.Engine != engine || m.SHA256 != sum || m.Bytes != size ||
				m.DumpBytes <= size || !slices.Equal(m.Databases, []string{db}) || m.ServerVersion == "" || m.ClientVersion == "" ||
				!m.Finished.After(m.Started) || !strings.HasPrefix(m.TandemVersion, "tandem ") || !slices.Equal(m.Tables, wantTables) {
				t.Errorf("manifest %+v; want the object's SHA-256 %s and %d bytes, tables %v", m, sum, size, wantTables)
			}
		})
	}
}

// TestADumpCutShortIsNotABackup: a dump program that exits 0 after writing half a dump (no completion comment)
// leaves no backup, uploads nothing, and says why.
func TestADumpCutShortIsNotABackup(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv("postgres", prefix, dir),
		fakeDump(t, `printf -- '--\n-- PostgreSQL database dump\n--\nCOPY public.items (id) FROM stdin;\n1\n2\n'`)...)
	code, out := tandemRun(t, env, "backup", "--once")
	if code == 0 || !strings.Contains(out, "cut short") {
		t.Fatalf("backup --once of a dump cut short exited %d:\n%s", code, out)
	}
	wantFiles(t, "backups directory", dirFiles(t, dir), nil)
	wantFiles(t, "bucket", allObjectsAt(t, store, prefix), nil)
}

// TestRestoreRefusesABackupThatDoesNotMatchItsManifest: one byte changed in the stored object, and restore
// refuses it with the database unchanged, saying what to do; latest skips a backup object whose manifest never
// landed.
func TestRestoreRefusesABackupThatDoesNotMatchItsManifest(t *testing.T) {
	must := mustSQL(t)
	db, dir, prefix := dbFor(t, "db"), t.TempDir(), prefixFor(t)
	must(pg.SQL("postgres", "CREATE DATABASE "+db))
	must(pg.SQL(db, pgSchema))
	env := pgEnv(db, prefix, dir)
	if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
		t.Fatalf("backup --once exited %d", code)
	}
	name := backupFiles(dirFiles(t, dir))[0]
	must(pg.SQL(db, "DELETE FROM items WHERE id > 10"))
	before := must(pg.SQL(db, pgDigest))

	// A newer object without a manifest (an upload that did not finish) is not the latest.
	n, _ := parseBackupName(name)
	newer := backupName(n.base, "", n.ext, n.time.Add(3600e9))
	stored := filepath.Join(store.Root, bucket, prefix, name)
	data, err := os.ReadFile(stored)
	if err != nil {
		t.Fatal(err)
	}
	location := "s3://" + bucket + "/" + prefix
	putObject(t, location, newer, data[:len(data)/2])
	// One byte of the real one changed, written through the store's API, as whoever changed it would.
	data[len(data)/2] ^= 0x01
	putObject(t, location, name, data)
	code, out := tandemRun(t, env, "restore", "--from", "latest")
	if code == 0 || !strings.Contains(out, name+": its ") || !strings.Contains(out, "changed or was damaged") || !strings.Contains(out, "--unverified") {
		t.Fatalf("restore of a changed backup exited %d:\n%s", code, out)
	}
	if got := must(pg.SQL(db, pgDigest)); got != before {
		t.Fatalf("the refused restore changed the database: %s, was %s", got, before)
	}
	// Knowingly: the damaged object is restored as far as it goes, and postgres's one transaction changes nothing.
	if code, out := tandemRun(t, env, "restore", "--from", name, "--unverified"); code == 0 || !strings.Contains(out, "as --unverified says") {
		t.Fatalf("restore --unverified of a damaged backup exited %d:\n%s", code, out)
	}
	if got := must(pg.SQL(db, pgDigest)); got != before {
		t.Fatalf("the failed restore changed the database: %s, was %s", got, before)
	}
}
