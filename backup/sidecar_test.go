package backup

import (
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/backup/backuptest"
)

// TestSidecarLoop runs `tandem backup` as the sidecar does: a backup every interval, uploaded, the local copies
// pruned to BACKUP_KEEP, metrics and /healthz served, and SIGTERM a clean stop. Started again over the same
// directory (a container restart), it waits for the next backup to be due instead of dumping at once.
func TestSidecarLoop(t *testing.T) {
	must := mustSQL(t)
	db := dbFor(t, "db")
	must(pg.SQL("postgres", "CREATE DATABASE "+db))
	must(pg.SQL(db, pgSchema))
	port, err := backuptest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + itoa(port)
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv(db, prefix, dir), "BACKUP_INTERVAL=1s", "BACKUP_KEEP=1", "BACKUP_METRICS_BIND_ADDRESS="+addr)
	r := startTandem(t, env, "backup")
	eventually(t, 30*time.Second, "three backups land", func() bool { return len(objects(t, store, prefix)) >= 3 })
	get := func(path string) (int, string) { return httpGet(t, "http://"+addr+path) }
	if code, body := get("/healthz"); code != 200 {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{"tandem_backup_last_success_timestamp_seconds 1.", "tandem_backup_size_bytes ", `tandem_backup_failures_total{stage="dump"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	r.stop(t)
	local := backupFiles(dirFiles(t, dir))
	if len(local) != 1 {
		t.Fatalf("with BACKUP_KEEP=1 the directory holds %q", dirFiles(t, dir))
	}
	// The newest may have been stopped before it landed: then it is kept, not marked uploaded, for the next run.
	files := slices.DeleteFunc(dirFiles(t, dir), func(n string) bool { return n == local[0]+".uploaded" })
	wantFiles(t, "backups directory", files, []string{local[0], local[0] + manifestSuffix})
	landed := objects(t, store, prefix)

	// A restart within the interval does not dump again, also when its directory is new (a pod's emptyDir
	// survives a container's restart, not the pod's): the location says when the last backup was.
	env = append(pgEnv(db, prefix, t.TempDir()), "BACKUP_INTERVAL=1h")
	r = startTandem(t, env, "backup")
	eventually(t, 10*time.Second, "the restarted sidecar says it waits", func() bool {
		return strings.Contains(r.stderr.String(), "waiting until the next one is due")
	})
	time.Sleep(500 * time.Millisecond)
	r.stop(t)
	wantFiles(t, "bucket after the restart", objects(t, store, prefix), landed)
}

// TestSidecarBacksUpWhenItsMetricsPortIsTaken: two host-network replicas on one node share the node's ports. The
// second sidecar cannot bind its metrics port; it says so, backs up all the same, and serves /metrics once the
// port is free.
func TestSidecarBacksUpWhenItsMetricsPortIsTaken(t *testing.T) {
	must := mustSQL(t)
	db := dbFor(t, "db")
	must(pg.SQL("postgres", "CREATE DATABASE "+db))
	must(pg.SQL(db, pgSchema))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := taken.Addr().String()
	dir, prefix := t.TempDir(), prefixFor(t)
	r := startTandem(t, append(pgEnv(db, prefix, dir), "BACKUP_INTERVAL=1s", "BACKUP_METRICS_BIND_ADDRESS="+addr), "backup")
	eventually(t, 30*time.Second, "two backups land while the port is taken", func() bool { return len(objects(t, store, prefix)) >= 2 })
	if log := r.stderr.String(); !strings.Contains(log, "cannot serve /metrics and /healthz; backups go on") || !strings.Contains(log, "address already in use") {
		t.Errorf("the log does not say the metrics port is taken:\n%s", log)
	}
	taken.Close()
	eventually(t, 30*time.Second, "/healthz to answer once the port is free", func() bool {
		code, _, err := tryGet("http://" + addr + "/healthz")
		return err == nil && code == 200
	})
	if _, metrics := httpGet(t, "http://"+addr+"/metrics"); !strings.Contains(metrics, `tandem_backup_failures_total{stage="metrics"} `) ||
		strings.Contains(metrics, `tandem_backup_failures_total{stage="metrics"} 0`) {
		t.Errorf("/metrics does not count the failed binds:\n%s", metrics)
	}
	r.stop(t)
}

// TestSidecarWithABadConfigurationStaysUp: a configuration tandem backup cannot work with (a hand-written pod,
// a profile's env) is reported, not a crash loop.
func TestSidecarWithABadConfigurationStaysUp(t *testing.T) {
	dir, prefix := t.TempDir(), prefixFor(t)
	for _, tt := range []struct{ name, env, want string }{
		{"unknown engine", "BACKUP_ENGINE=oracle", `BACKUP_ENGINE (--engine): "oracle" is not postgres, mysql or mongodb`},
		{"unparsable setting", "BACKUP_KEEP=three", `BACKUP_KEEP=three: "three" is not a whole number`},
		{"missing directory", "BACKUP_DIR=" + filepath.Join(dir, "gone"), "BACKUP_DIR (--dir)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sidecarSurvives(t, append(pgEnv("postgres", prefix, dir), tt.env), tt.want)
		})
	}
	nothingLeft(t, dir, prefix)
}

// TestSidecarWaitsForItsDatabase: a native sidecar starts before the database's container. Its first dump waits
// until the database accepts connections, instead of failing, and counting a failure, while it starts.
func TestSidecarWaitsForItsDatabase(t *testing.T) {
	must := mustSQL(t)
	db := dbFor(t, "db")
	must(pg.SQL("postgres", "CREATE DATABASE "+db))
	must(pg.SQL(db, pgSchema))
	dbPort, err := backuptest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metricsPort, err := backuptest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metrics := "127.0.0.1:" + itoa(metricsPort)
	dir, prefix := t.TempDir(), prefixFor(t)
	env := append(pgEnv(db, prefix, dir), "DATABASE_PORT="+itoa(dbPort), "BACKUP_INTERVAL=1h", "BACKUP_METRICS_BIND_ADDRESS="+metrics)
	r := startTandem(t, env, "backup")
	eventually(t, 10*time.Second, "the sidecar says it waits for the database", func() bool {
		return strings.Contains(r.stderr.String(), "waiting for the database to accept connections")
	})
	time.Sleep(2 * time.Second) // the database is still starting
	if got := objects(t, store, prefix); len(got) != 0 {
		t.Fatalf("backups landed before the database was up: %q", got)
	}
	// The database comes up on its port: a proxy to the shared PostgreSQL.
	l, err := net.Listen("tcp", "127.0.0.1:"+itoa(dbPort))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go proxy(l, "127.0.0.1:"+itoa(pg.Port))
	eventually(t, 30*time.Second, "the first backup lands", func() bool { return len(objects(t, store, prefix)) == 1 })
	if _, m := httpGet(t, "http://"+metrics+"/metrics"); !strings.Contains(m, `tandem_backup_failures_total{stage="dump"} 0`) {
		t.Errorf("waiting for the database counted as a failed dump:\n%s", m)
	}
	r.stop(t)
}

// proxy forwards every connection l accepts to addr, until l is closed.
func proxy(l net.Listener, addr string) {
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			out, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer out.Close()
			go func() { _, _ = io.Copy(out, in) }()
			_, _ = io.Copy(in, out)
		}()
	}
}

// TestOnlyTheFirstMemberBacksUp: with BACKUP_MEMBERS=first, a StatefulSet's member 1 keeps an idle, healthy
// sidecar and writes nothing, while member 0 backs up under names that say it took them.
func TestOnlyTheFirstMemberBacksUp(t *testing.T) {
	must := mustSQL(t)
	db := dbFor(t, "db")
	must(pg.SQL("postgres", "CREATE DATABASE "+db))
	must(pg.SQL(db, pgSchema))
	prefix := prefixFor(t)
	member := func(index string) (*run, string) {
		port, err := backuptest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + itoa(port)
		env := append(pgEnv(db, prefix, t.TempDir()), "BACKUP_INTERVAL=1s", "BACKUP_METRICS_BIND_ADDRESS="+addr,
			"BACKUP_MEMBERS=first", "BACKUP_POD_INDEX="+index, "BACKUP_POD_NAME=orders-db-"+index)
		return startTandem(t, env, "backup"), addr
	}
	standby, standbyAddr := member("1")
	eventually(t, 10*time.Second, "member 1 to say it stays idle", func() bool {
		return strings.Contains(standby.stderr.String(), "only member 0 backs up")
	})
	primary, _ := member("0")
	eventually(t, 30*time.Second, "two backups of member 0", func() bool { return len(objects(t, store, prefix)) >= 2 })
	for _, o := range objects(t, store, prefix) {
		if !strings.HasSuffix(o, "-orders-db-0.sql.zst") {
			t.Errorf("backup %q is not named after member 0, which took it", o)
		}
	}
	if code, body := httpGet(t, "http://"+standbyAddr+"/healthz"); code != 200 {
		t.Errorf("the idle member's /healthz: %d %s", code, body)
	}
	if _, m := httpGet(t, "http://"+standbyAddr+"/metrics"); !strings.Contains(m, "tandem_backup_active 0") {
		t.Errorf("the idle member's /metrics do not say it is idle:\n%s", m)
	}
	primary.stop(t)
	standby.stop(t)
}
