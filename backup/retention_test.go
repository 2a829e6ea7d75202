package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/backup/backuptest"
	"github.com/tandem-dev/tandem/backup/objstore"
)

func TestExpired(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	day := func(n int) remoteBackup {
		return remoteBackup{key: backupName("app", "", "sql", now.Add(-time.Duration(n)*24*time.Hour)), time: now.Add(-time.Duration(n) * 24 * time.Hour)}
	}
	backups := []remoteBackup{day(0), day(1), day(2), day(5), day(10)} // newest first, as listRemote returns them
	keys := func(bs []remoteBackup) []string {
		var out []string
		for _, b := range bs {
			out = append(out, b.key)
		}
		return out
	}
	tests := []struct {
		name   string
		keep   int
		maxAge time.Duration
		now    time.Time
		want   []remoteBackup
	}{
		{name: "no limits delete nothing", want: nil},
		{name: "keep 3 deletes beyond the newest three", keep: 3, want: []remoteBackup{day(5), day(10)}},
		{name: "max age deletes what is older", maxAge: 72 * time.Hour, want: []remoteBackup{day(5), day(10)}},
		{name: "a backup exactly max age old stays", maxAge: 48 * time.Hour, want: []remoteBackup{day(5), day(10)}},
		{name: "both limits: either deletes", keep: 4, maxAge: 30 * time.Hour, want: []remoteBackup{day(2), day(5), day(10)}},
		{name: "keep 1 leaves only the newest", keep: 1, want: []remoteBackup{day(1), day(2), day(5), day(10)}},
		{name: "the newest stays even when every backup is too old", maxAge: time.Hour, now: now.Add(365 * 24 * time.Hour),
			want: []remoteBackup{day(1), day(2), day(5), day(10)}},
		{name: "a backup from the future is not old", maxAge: time.Hour, now: now.Add(-48 * time.Hour), want: []remoteBackup{day(5), day(10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := now
			if !tt.now.IsZero() {
				at = tt.now
			}
			wantFiles(t, "expired", keys(expired(backups, tt.keep, tt.maxAge, at)), keys(tt.want))
		})
	}
	// Suspect backups (much smaller than the one before) do not count towards keep, and the newest backup that
	// is not suspect stays whatever the settings.
	suspect := func(b remoteBackup) remoteBackup { b.suspect = true; return b }
	mixed := []remoteBackup{suspect(day(0)), suspect(day(1)), day(2), suspect(day(5)), day(10)}
	for _, tt := range []struct {
		name   string
		keep   int
		maxAge time.Duration
		want   []remoteBackup
	}{
		{name: "keep 1 keeps the newest good one and what is newer", keep: 1, want: []remoteBackup{day(5), day(10)}},
		{name: "keep 2 counts only the good ones", keep: 2, want: nil},
		{name: "max age spares the newest good one", maxAge: time.Hour, want: []remoteBackup{day(1), day(5), day(10)}},
	} {
		t.Run("suspect/"+tt.name, func(t *testing.T) {
			wantFiles(t, "expired", keys(expired(mixed, tt.keep, tt.maxAge, now)), keys(tt.want))
		})
	}
	// The newest verified backup stays too, even when newer unverified ones fill keep; a backup that failed
	// verification counts as suspect (readVerdicts marks it so).
	verified := func(b remoteBackup) remoteBackup { b.verified = true; return b }
	withVerified := []remoteBackup{day(0), day(1), verified(day(2)), day(5), verified(day(10))}
	for _, tt := range []struct {
		name   string
		keep   int
		maxAge time.Duration
		want   []remoteBackup
	}{
		{name: "keep 1 keeps the newest and the newest verified", keep: 1, want: []remoteBackup{day(1), day(5), day(10)}},
		{name: "max age spares the newest verified", maxAge: time.Hour, want: []remoteBackup{day(1), day(5), day(10)}},
		{name: "keep 3 has the newest verified among them", keep: 3, want: []remoteBackup{day(5), day(10)}},
	} {
		t.Run("verified/"+tt.name, func(t *testing.T) {
			wantFiles(t, "expired", keys(expired(withVerified, tt.keep, tt.maxAge, now)), keys(tt.want))
		})
	}
	if got := expired(nil, 1, time.Hour, now); got != nil {
		t.Fatalf("expired of no backups: %v", got)
	}
}

// openLocation opens a backup location from the test process, with the S3 server's credentials.
func openLocation(t *testing.T, location string) objstore.Bucket {
	t.Helper()
	for _, kv := range store.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	loc, err := ParseLocation(location)
	if err != nil {
		t.Fatal(err)
	}
	b, err := objstore.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// putObjects writes an object for each key at location, through the store's API; a key with a "/" goes into
// that sub-folder.
func putObjects(t *testing.T, location string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		at, name := location, k
		if i := strings.LastIndex(k, "/"); i >= 0 {
			at, name = strings.TrimSuffix(location, "/")+"/"+k[:i], k[i+1:]
			if dir, ok := strings.CutPrefix(at, "file://"); ok {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
		putObject(t, at, name, []byte("planted "+k))
	}
}

// putObject uploads data as the object name at location, through the store's API.
func putObject(t *testing.T, location, name string, data []byte) {
	t.Helper()
	if _, err := objstore.Put(context.Background(), openLocation(t, location), name, bytes.NewReader(data), objstore.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// allObjects lists every key at location, in sub-folders too, sorted, from the directory that holds them: the
// file:// directory, or the S3 server's directory of the bucket.
func allObjects(t *testing.T, location string) []string {
	t.Helper()
	loc, err := ParseLocation(location)
	if err != nil {
		t.Fatal(err)
	}
	dir := loc.Bucket
	if loc.Scheme == "s3" {
		dir = filepath.Join(store.Root, loc.Bucket, loc.Prefix)
	}
	var keys []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != dir {
			if d.IsDir() {
				return filepath.SkipDir // the server's own bookkeeping
			}
			return nil
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, path)
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	sort.Strings(keys)
	return keys
}

// retentionBackups are backups of database app, 1, 2, 5 and 10 days old, and objects retention must never touch:
// another database's, another engine's, names this sidecar does not give, and a backup in a sub-folder.
func retentionBackups(now time.Time) (backups map[int]string, others []string) {
	ago := func(days int) time.Time { return now.Add(-time.Duration(days) * 24 * time.Hour) }
	backups = map[int]string{}
	for _, d := range []int{1, 2, 5, 10} {
		backups[d] = backupName("app", "", "sql", ago(d))
	}
	others = []string{
		backupName("other", "", "sql", ago(10)),   // another database
		backupName("app-2", "", "sql", ago(10)),   // another database whose name starts with this one's
		backupName("app", "", "archive", ago(10)), // another engine
		"app-latest.sql.gz",                       // not a name tandem gives
		"app-20260101T000000Z.sql.gz.bak",         // nor this
		"notes.txt",
		"nested/" + backupName("app", "", "sql", ago(10)), // below the prefix, not at it
	}
	return backups, others
}

// TestRemoteRetention runs `tandem backup --once` with BACKUP_REMOTE_KEEP and BACKUP_REMOTE_MAX_AGE against a
// location holding older backups and strangers, on S3 and on file://, and checks what is left: the new backup,
// the older ones the settings keep, and every object that is not a backup of this database.
func TestRemoteRetention(t *testing.T) {
	tests := []struct {
		name     string
		settings []string
		keepDays []int // which planted backups stay, besides the new one
	}{
		{name: "no settings keep everything", keepDays: []int{1, 2, 5, 10}},
		{name: "BACKUP_REMOTE_KEEP=3 keeps the newest three", settings: []string{"BACKUP_REMOTE_KEEP=3"}, keepDays: []int{1, 2}},
		{name: "BACKUP_REMOTE_MAX_AGE=150h deletes the older", settings: []string{"BACKUP_REMOTE_MAX_AGE=150h"}, keepDays: []int{1, 2, 5}},
		{name: "both: whichever deletes more", settings: []string{"BACKUP_REMOTE_KEEP=4", "BACKUP_REMOTE_MAX_AGE=30h"}, keepDays: []int{1}},
		{name: "BACKUP_REMOTE_KEEP=1 keeps only the new backup", settings: []string{"BACKUP_REMOTE_KEEP=1"}},
	}
	for _, scheme := range []string{"s3", "file"} {
		for _, tt := range tests {
			t.Run(scheme+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				location := "s3://" + bucket + "/" + prefixFor(t)
				if scheme == "file" {
					location = "file://" + t.TempDir()
				}
				planted, others := retentionBackups(time.Now())
				for _, k := range planted {
					putObjects(t, location, k)
				}
				putObjects(t, location, others...)
				env := append(pgEnv("app", "", dir), "BACKUP_LOCATION="+location, "BACKUP_KEEP=1") // the local copy names the new backup
				env = append(append(env, tt.settings...), fakeDump(t, wholeFakeDump)...)
				if code, _ := tandemRun(t, env, "backup", "--once"); code != 0 {
					t.Fatalf("backup --once exited %d", code)
				}
				want := append(withManifests(backupFiles(dirFiles(t, dir))), others...)
				for _, d := range tt.keepDays {
					want = append(want, planted[d])
				}
				sort.Strings(want)
				wantFiles(t, "location", allObjects(t, location), want)
			})
		}
	}
}

// TestRemoteRetentionDeleteFails: a delete the store refuses is logged and counted in
// tandem_backup_failures_total{stage="retention"}; the other old backups are deleted, the backup counts as a
// success, and the refused one stays.
func TestRemoteRetentionDeleteFails(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	location := "s3://" + bucket + "/" + prefix
	planted, _ := retentionBackups(time.Now())
	for _, k := range planted {
		putObjects(t, location, k)
	}
	proxy := refusingProxy(t, func(r *http.Request) bool {
		return r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/"+planted[5])
	})
	port, err := backuptest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + itoa(port)
	env := append(pgEnv("app", prefix, dir), "AWS_ENDPOINT_URL="+proxy, "BACKUP_REMOTE_KEEP=2", "BACKUP_INTERVAL=1h",
		"BACKUP_METRICS_BIND_ADDRESS="+addr, "BACKUP_KEEP=1")
	env = append(env, fakeDump(t, wholeFakeDump)...)
	r := startTandem(t, env, "backup")
	var m string
	eventually(t, 30*time.Second, "the refused delete is counted", func() bool {
		_, m, _ = tryGet("http://" + addr + "/metrics") // the server may not be listening yet
		return strings.Contains(m, `tandem_backup_failures_total{stage="retention"} 1`)
	})
	r.stop(t)
	if !strings.Contains(m, "tandem_backup_last_success_timestamp_seconds 1.") {
		t.Errorf("the backup is not counted a success although it landed:\n%s", m)
	}
	if out := r.stderr.String(); !strings.Contains(out, "remote retention: delete failed") || !strings.Contains(out, planted[5]) {
		t.Errorf("the log does not name the refused delete")
	}
	want := append(backupFiles(dirFiles(t, dir)), planted[1], planted[5])
	sort.Strings(want)
	wantFiles(t, "bucket", objects(t, store, prefix), want)
}

// refusingProxy is the URL of a proxy to the S3 server that answers AccessDenied to the requests refuse picks.
func refusingProxy(t *testing.T, refuse func(*http.Request) bool) string {
	t.Helper()
	target, _ := url.Parse("http://" + store.Addr())
	upstream := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse(r) {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
			return
		}
		upstream.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	return proxy.URL
}

// TestRemoteRetentionOnlyAfterAnUpload: a run whose upload failed deletes nothing at the location, however old
// what is there.
func TestRemoteRetentionOnlyAfterAnUpload(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	location := "s3://" + bucket + "/" + prefix
	planted, _ := retentionBackups(time.Now())
	var want []string
	for _, k := range planted {
		putObjects(t, location, k)
		want = append(want, k)
	}
	sort.Strings(want)
	proxy := refusingProxy(t, func(r *http.Request) bool { return r.Method == http.MethodPut })
	env := append(pgEnv("app", prefix, dir), "AWS_ENDPOINT_URL="+proxy, "BACKUP_REMOTE_KEEP=1", "BACKUP_REMOTE_MAX_AGE=1h",
		"BACKUP_UPLOAD_RETRY_FOR=0s")
	env = append(env, fakeDump(t, wholeFakeDump)...)
	if code, _ := tandemRun(t, env, "backup", "--once"); code == 0 {
		t.Fatal("backup --once exited 0 although its upload was refused")
	}
	wantFiles(t, "bucket", objects(t, store, prefix), want)
}
