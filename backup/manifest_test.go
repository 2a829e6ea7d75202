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
func readObjectManifest(t testing.TB, prefix, name string) Manifest {
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
			name := objects(t, store, prefix)[0]
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

// TestADumpCutShortIsNotABackup: a dump program that exits 0 after writing part of a dump (no completion comment)
// leaves no backup, uploads nothing, and says why: a fake pg_dump, and the real mariadb-dump of a real database
// with its last lines cut off.
func TestADumpCutShortIsNotABackup(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		dir, prefix := t.TempDir(), prefixFor(t)
		env := append(pgEnv("postgres", prefix, dir),
			fakeDump(t, `printf -- '--\n-- PostgreSQL database dump\n--\nCOPY public.items (id) FROM stdin;\n1\n2\n'`)...)
		code, out := tandemRun(t, env, "backup", "--once")
		if code == 0 || !strings.Contains(out, "cut short") {
			t.Fatalf("backup --once of a dump cut short exited %d:\n%s", code, out)
		}
		wantFiles(t, "backups directory", dirFiles(t, dir), nil)
		wantFiles(t, "bucket", allObjectsAt(t, store, prefix), nil)
	})
	t.Run("mysql", func(t *testing.T) {
		db, dir, prefix := dbFor(t, "db"), t.TempDir(), prefixFor(t)
		mustSQL(t)(maria.SQL("", "CREATE DATABASE "+db))
		mustSQL(t)(maria.SQL(db, "SET SESSION max_recursive_iterations = 100000; "+mariaSchema))
		real := filepath.Join(deps.MariaDBBinDir, "mariadb-dump")
		cut := `"` + real + `" "$@" | head -n -3` // the pipeline's status is head's: 0
		env := append(mariaEnv(db, prefix, dir), fakeTools(t, map[string]string{"mysqldump": cut, "mariadb-dump": cut})...)
		code, out := tandemRun(t, env, "backup", "--once")
		if code == 0 || !strings.Contains(out, "cut short") || !strings.Contains(out, "Dump completed") {
			t.Fatalf("backup --once of a dump cut short exited %d:\n%s", code, out)
		}
		wantFiles(t, "backups directory", dirFiles(t, dir), nil)
		wantFiles(t, "bucket", allObjectsAt(t, store, prefix), nil)
	})
}

// TestRestoreRefusesABackupThatDoesNotMatchItsManifest: one byte changed in the stored object, and restore
// refuses it with the database unchanged, saying what to do; latest skips a backup object whose manifest never
// landed.
func TestRestoreRefusesABackupThatDoesNotMatchItsManifest(t *testing.T) {
	must := mustSQL(t)
	db, _, prefix, env := backedUp(t, "postgres", pgSchema)
	name := objects(t, store, prefix)[0]
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

// TestASuspectDumpIsKeptButNeverTheLatest: a whole dump far smaller than the one before it is kept and uploaded,
// its manifest says why it is suspect, restore --from latest takes the one before, and BACKUP_REMOTE_KEEP=1 does
// not delete the one before for it.
func TestASuspectDumpIsKeptButNeverTheLatest(t *testing.T) {
	dir, prefix, work := t.TempDir(), prefixFor(t), t.TempDir()
	size, restored := filepath.Join(work, "size"), filepath.Join(work, "restored")
	tools := fakeTools(t, map[string]string{
		"pg_dump": `printf -- '--\n'; head -c "$(cat ` + size + `)" /dev/zero | tr '\0' x; printf '\n--\n-- PostgreSQL database dump complete\n--\n'`,
		"psql":    `cat > ` + restored,
	})
	env := append(append(pgEnv("app", prefix, dir), "BACKUP_REMOTE_KEEP=1"), tools...)
	var names []string
	for _, n := range []string{"100000", "1000"} {
		if err := os.WriteFile(size, []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out := tandemRun(t, env, "backup", "--once")
		if code != 0 {
			t.Fatalf("backup --once of %s bytes exited %d", n, code)
		}
		if n == "1000" && !strings.Contains(out, "the dump is suspect") {
			t.Errorf("the small dump was not reported suspect:\n%s", out)
		}
		names = objects(t, store, prefix)
	}
	good, small := names[0], names[1] // sorted by name: oldest first
	if m := readObjectManifest(t, prefix, small); !strings.Contains(m.Suspect, "the backup before it") || !strings.Contains(m.Suspect, good) {
		t.Errorf("the small dump's manifest: suspect %q", m.Suspect)
	}
	if m := readObjectManifest(t, prefix, good); m.Suspect != "" {
		t.Errorf("the first dump is suspect: %q", m.Suspect)
	}
	wantFiles(t, "bucket", objects(t, store, prefix), []string{good, small})
	if code, out := tandemRun(t, env, "restore", "--from", "latest"); code != 0 || !strings.Contains(out, good) {
		t.Fatalf("restore --from latest exited %d, or did not take %s:\n%s", code, good, out)
	}
	if st, err := os.Stat(restored); err != nil || st.Size() < 100000 {
		t.Errorf("restored %v bytes (%v), want the 100000-byte dump", st, err)
	}
}
