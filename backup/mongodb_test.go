package backup

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// Neither Debian bookworm nor the Go module proxy has MongoDB's database tools (mongodump, mongorestore), so the
// mongodb engine is tested through fake tools that record what they were given: their arguments, environment
// and --config file, and (mongorestore) their standard input. The arguments are checked against what
// mongodump and mongorestore 100.x document.

// mongoPassword has every character that could break the YAML file the password is passed in.
const mongoPassword = `p@ss: "wörd" #1 \n'x'`

// fakeMongoTools installs a mongodump that records its arguments, environment and --config file (content and
// mode) in rec and writes archive to standard output, and a mongorestore that records the same and its
// standard input.
func fakeMongoTools(t *testing.T, rec, archive string) []string {
	t.Helper()
	record := func(tool string) string {
		return `printf '%s\n' "$@" > ` + rec + `/` + tool + `.args
env > ` + rec + `/` + tool + `.env
for a; do
	case $a in --config=*)
		cp "${a#--config=}" ` + rec + `/` + tool + `.config
		stat -c %a "${a#--config=}" > ` + rec + `/` + tool + `.mode
		echo "${a#--config=}" > ` + rec + `/` + tool + `.configpath;;
	esac
done`
	}
	return fakeTools(t, map[string]string{
		"mongodump":    record("dump") + "\ncat " + archive,
		"mongorestore": record("restore") + "\ncat > " + rec + "/restore.stdin",
	})
}

// mongoEnv is the sidecar's environment for a mongodb database db (empty: all databases) at
// 127.0.0.1:27018, logging in as root when password is not empty.
func mongoEnv(db, password, prefix, dir string) []string {
	env := []string{"BACKUP_ENGINE=mongodb", "DATABASE_HOST=127.0.0.1", "DATABASE_PORT=27018", "DATABASE_NAME=" + db,
		"BACKUP_LOCATION=s3://" + bucket + "/" + prefix, "BACKUP_DIR=" + dir}
	if password != "" {
		env = append(env, "DATABASE_USER=root", "DATABASE_PASSWORD="+password)
	}
	return env
}

// recorded is what a fake tool recorded: its arguments, with the --config path replaced by CONFIG, and the
// file's content, mode and path.
type recorded struct {
	args                     []string
	env, config, mode, cpath string
}

func readRecord(t *testing.T, rec, tool string) recorded {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(rec, tool+"."+name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}
	r := recorded{env: read("env"), config: read("config"), mode: strings.TrimSpace(read("mode")), cpath: strings.TrimSpace(read("configpath"))}
	for _, a := range strings.Split(strings.TrimSuffix(read("args"), "\n"), "\n") {
		if strings.HasPrefix(a, "--config=") {
			a = "--config=CONFIG"
		}
		r.args = append(r.args, a)
	}
	return r
}

// checkSecret asserts that the password reached the tool only through its --config file: a YAML file that
// only the sidecar's user could read, removed once the tool exited, and nowhere in its arguments or
// environment.
func (r recorded) checkSecret(t *testing.T, tool, password string) {
	t.Helper()
	var cfg struct {
		Password string `json:"password"`
	}
	if err := yaml.UnmarshalStrict([]byte(r.config), &cfg); err != nil || cfg.Password != password {
		t.Errorf("%s's --config file %q reads as password %q (%v), want %q", tool, r.config, cfg.Password, err, password)
	}
	if r.mode != "600" {
		t.Errorf("%s's --config file had mode %s, want 600", tool, r.mode)
	}
	if _, err := os.Stat(r.cpath); !os.IsNotExist(err) {
		t.Errorf("%s's --config file %s is still there: %v", tool, r.cpath, err)
	}
	if strings.Contains(strings.Join(r.args, " "), password) || strings.Contains(r.env, password) {
		t.Errorf("the password is in %s's arguments or environment", tool)
	}
}

// TestMongoDBRoundTrip: `tandem backup --once` streams mongodump --archive to <db>-<timestamp>.archive.zst in
// the bucket; `tandem restore` streams it into mongorestore --archive --drop, restricted to the database's
// namespaces, and renamed when restoring into another database.
func TestMongoDBRoundTrip(t *testing.T) {
	dir, prefix, rec := t.TempDir(), prefixFor(t), t.TempDir()
	archive := filepath.Join(rec, "archive")
	// The frame of a mongodump archive (its magic number first, a terminator last) around made-up content.
	content := "\x6d\xe2\x99\x81mongodump archive\x00" + strings.Repeat("{\"_id\": 1, \"name\": \"ünïcødé\"}\n", 5000) + "\xff\xff\xff\xff"
	if err := os.WriteFile(archive, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tools := fakeMongoTools(t, rec, archive)
	env := append(mongoEnv("app", mongoPassword, prefix, dir), tools...)

	if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
		t.Fatalf("backup --once exited %d", code)
	}
	names := objects(t, store, prefix)
	if len(names) != 1 || !strings.HasPrefix(names[0], "app-") || !strings.HasSuffix(names[0], ".archive.zst") {
		t.Fatalf("the bucket holds %q, want one app-<timestamp>.archive.zst", names)
	}
	if got := dumpText(t, stored(prefix, names[0])); got != content {
		t.Fatalf("the backup holds %d bytes, not mongodump's %d-byte archive", len(got), len(content))
	}
	dump := readRecord(t, rec, "dump")
	wantFiles(t, "mongodump's arguments", dump.args, []string{"--host=127.0.0.1", "--port=27018", "--username=root",
		"--authenticationDatabase=admin", "--archive", "--db=app", "--config=CONFIG"})
	dump.checkSecret(t, "mongodump", mongoPassword)

	if code, _ := tandemRun(t, env, "restore", "--from", "latest"); code != 0 {
		t.Fatalf("restore --from latest exited %d", code)
	}
	restore := readRecord(t, rec, "restore")
	wantFiles(t, "mongorestore's arguments", restore.args, []string{"--host=127.0.0.1", "--port=27018", "--username=root",
		"--authenticationDatabase=admin", "--archive", "--drop", "--nsInclude=app.*", "--config=CONFIG"})
	restore.checkSecret(t, "mongorestore", mongoPassword)
	if b, _ := os.ReadFile(filepath.Join(rec, "restore.stdin")); string(b) != content {
		t.Fatalf("mongorestore read %d bytes, not the %d-byte archive", len(b), len(content))
	}

	// Into another database: the archive's app.* namespaces become copy.*.
	url := "s3://" + bucket + "/" + prefix + "/" + names[0]
	if code, _ := tandemRun(t, append(mongoEnv("copy", mongoPassword, prefix, dir), tools...), "restore", "--from", url); code != 0 {
		t.Fatalf("restore --from %s exited %d", url, code)
	}
	restore = readRecord(t, rec, "restore")
	if want := []string{"--nsInclude=app.*", "--nsFrom=app.*", "--nsTo=copy.*"}; !containsInOrder(restore.args, want) {
		t.Fatalf("mongorestore's arguments %q, want %q", restore.args, want)
	}
}

// TestMongoDBWithoutAccessControl: no user, no password, no database: every database is dumped into
// all-<timestamp>.archive.zst, and no credentials are passed at all.
func TestMongoDBWithoutAccessControl(t *testing.T) {
	dir, prefix, rec := t.TempDir(), prefixFor(t), t.TempDir()
	archive := filepath.Join(rec, "archive")
	if err := os.WriteFile(archive, []byte("\x6d\xe2\x99\x81archive\xff\xff\xff\xff"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(mongoEnv("", "", prefix, dir), fakeMongoTools(t, rec, archive)...)
	if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
		t.Fatalf("backup --once exited %d", code)
	}
	names := objects(t, store, prefix)
	if len(names) != 1 || !strings.HasPrefix(names[0], "all-") || !strings.HasSuffix(names[0], ".archive.zst") {
		t.Fatalf("the bucket holds %q, want one all-<timestamp>.archive.zst", names)
	}
	wantFiles(t, "mongodump's arguments", readRecord(t, rec, "dump").args, []string{"--host=127.0.0.1", "--port=27018", "--archive"})
	if code, _ := tandemRun(t, env, "restore", "--from", "latest"); code != 0 {
		t.Fatalf("restore --from latest exited %d", code)
	}
	wantFiles(t, "mongorestore's arguments", readRecord(t, rec, "restore").args, []string{"--host=127.0.0.1", "--port=27018", "--archive", "--drop"})

	// One database out of the backup of all of them.
	if code, _ := tandemRun(t, append(env, "DATABASE_NAME=app"), "restore", "--from", names[0]); code != 0 {
		t.Fatalf("restore --from %s exited %d", names[0], code)
	}
	wantFiles(t, "mongorestore's arguments", readRecord(t, rec, "restore").args, []string{"--host=127.0.0.1", "--port=27018", "--archive", "--drop", "--nsInclude=app.*"})
}

// containsInOrder reports whether want appears in got as a contiguous run.
func containsInOrder(got, want []string) bool {
	for i := range got {
		if len(got)-i >= len(want) && slices.Equal(got[i:i+len(want)], want) {
			return true
		}
	}
	return false
}
