package backup

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkBackupAtScale measures the sidecar against its floor, the database and its own client, in one run on
// one machine, for PostgreSQL and MariaDB databases of realistic rows (orders and customers: ids, amounts,
// timestamps, e-mail addresses, short notes, UUIDs) of each size in TANDEM_BENCH_SIZES (MiB of SQL, "1024" when
// unset; "256,1024,4096" draws the curve). For each engine and size it times, in turn:
//
//   - dump-floor-s: the engine's dump client, run exactly as tandem runs it, writing to /dev/null;
//   - backup-s: `tandem backup --once` (no verification, no local copy) streaming into the S3 server, and
//     backup/floor, the ratio;
//   - restore-floor-s: the engine's restore client, run as tandem runs it, replaying the uncompressed dump from
//     local disk into the emptied database;
//   - restore-s: `tandem restore --from latest` into the emptied database (the object's SHA-256 checked first,
//     then streamed through zstd into the client), and restore/floor;
//   - peak-rss-MiB: the most resident memory the tandem process had in either (its VmHWM; the dump and restore
//     clients are processes of their own), and peak-dir-MiB, the most its BACKUP_DIR held while it backed up;
//   - sql-MiB, object-MiB: the dump and its compressed object.
//
// The clients' commands are tandem's own (engine.client), so the floor and tandem differ only in what tandem adds:
// compression, the SHA-256, the upload, and on restore the download and decompression. It does the work once,
// whatever b.N. Run it alone, with no test timeout:
//
//	TANDEM_BENCH_SIZES=256,1024,4096 go test ./backup/ -run '^$' -bench BackupAtScale -benchtime 1x -timeout 0 -v
//
// TANDEM_BENCH_ENGINES picks the engines (postgres,mysql).
func BenchmarkBackupAtScale(b *testing.B) {
	sizes := []float64{1024}
	if s := os.Getenv("TANDEM_BENCH_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || n <= 0 {
				b.Fatalf("TANDEM_BENCH_SIZES=%s: want MiB of SQL, comma-separated", s)
			}
			sizes = append(sizes, n)
		}
	}
	engineNames := []string{"postgres", "mysql"}
	if s := os.Getenv("TANDEM_BENCH_ENGINES"); s != "" {
		engineNames = strings.Split(s, ",")
	}
	for _, engine := range engineNames {
		for _, size := range sizes {
			b.Run(fmt.Sprintf("%s-%gMiB", engine, size), func(b *testing.B) { benchScale(b, engine, size) })
		}
	}
}

func benchScale(b *testing.B, engine string, sqlMiB float64) {
	timeout := 10*time.Minute + time.Duration(sqlMiB*3)*time.Second
	db := "bench_scale"
	dir, prefix := b.TempDir(), "bench/scale-"+strconv.FormatInt(time.Now().UnixNano(), 36)
	var env []string
	var empty func()
	genStart := time.Now()
	switch engine {
	case "postgres":
		empty = func() {
			benchSQL(b, "postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			benchSQL(b, "postgres", "CREATE DATABASE "+db)
		}
		empty()
		b.Cleanup(func() { _, _ = pgSQL(context.Background(), "postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
		orders, customers := fillVerifyCostDB(b, db, int64(sqlMiB*(1<<20)))
		b.Logf("made %d orders and %d customers in %s", orders, customers, time.Since(genStart).Round(time.Second))
		env = pgEnv(db, prefix, dir)
	case "mysql":
		empty = func() { mariaBench(b, "", "DROP DATABASE IF EXISTS "+db+"; CREATE DATABASE "+db) }
		empty()
		b.Cleanup(func() { _, _ = maria.SQL("", "DROP DATABASE IF EXISTS "+db) })
		orders := fillMariaDB(b, db, int64(sqlMiB*(1<<20)))
		b.Logf("made %d orders in %s", orders, time.Since(genStart).Round(time.Second))
		env = mariaEnv(db, prefix, dir)
	default:
		b.Fatalf("TANDEM_BENCH_ENGINES: %q is not postgres or mysql", engine)
	}
	cfg := DefaultConfig()
	if err := cfg.ApplyEnv(lookupIn(envMap(env))); err != nil {
		b.Fatal(err)
	}
	eng := engines[engine]

	// 1. The dump floor and tandem backup --once, streaming, in turn, TANDEM_BENCH_REPEAT times (the medians are
	// reported); then the plain dump the restore floor replays, kept on local disk.
	repeat := 1
	if s := os.Getenv("TANDEM_BENCH_REPEAT"); s != "" {
		var err error
		if repeat, err = strconv.Atoi(s); err != nil || repeat < 1 {
			b.Fatalf("TANDEM_BENCH_REPEAT=%s: want a positive whole number", s)
		}
	}
	var floors, backups []time.Duration
	var bk *benchRun
	var bkRSS int64
	var peakDir atomic.Int64
	// The CPU seconds of the database server (all its processes) and of the S3 server, in each phase: on this one
	// machine they share its cores with the dump and with tandem.
	server := serverPID("postgres", "-p "+strconv.Itoa(pg.Port))
	if engine == "mysql" {
		server = serverPID("mariadbd", "--port="+strconv.Itoa(maria.Port))
	}
	s3pid := serverPID("versitygw", store.Addr())
	for i := range repeat {
		b.Logf("load before the dump floor: %s", loadavg())
		db0 := treeCPU(server)
		var floorCPU float64
		floors = append(floors, runClientCPU(b, eng, &cfg, &floorCPU))
		floorServer := treeCPU(server) - db0
		b.Logf("load before the backup: %s", loadavg())
		stopDir := sampleDir(dir, &peakDir)
		var rss int64
		db0, s30 := treeCPU(server), treeCPU(s3pid)
		bk, rss = runBenchRSS(b, timeout, env, "backup", "--once")
		backupServer, backupStore := treeCPU(server)-db0, treeCPU(s3pid)-s30
		stopDir()
		if bk.code != 0 {
			b.Fatalf("backup --once exited %d:\n%s", bk.code, bk.log.String())
		}
		bkRSS = max(bkRSS, rss)
		backups = append(backups, bk.elapsed)
		b.Logf("run %d: dump floor %.2f s (CPU: client %.1f s, database %.1f s); backup %.2f s (CPU: tandem and the client %.1f s, database %.1f s, S3 server %.1f s)",
			i+1, floors[i].Seconds(), floorCPU, floorServer, bk.elapsed.Seconds(), bk.cpu, backupServer, backupStore)
	}
	dumpFloor, backupTime := median(floors), median(backups)
	plain := filepath.Join(b.TempDir(), "dump.sql")
	f, err := os.Create(plain)
	if err != nil {
		b.Fatal(err)
	}
	runClient(b, eng, &cfg, false, "", f)
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}

	names := objects(b, store, prefix)
	if len(names) != repeat {
		b.Fatalf("%d runs of backup --once left %q at %s", repeat, names, prefix)
	}
	m := readObjectManifest(b, prefix, names[len(names)-1])
	st, _ := os.Stat(plain)
	if m.DumpBytes != st.Size() && engine == "postgres" {
		b.Logf("note: tandem's dump has %d bytes, the floor's %d", m.DumpBytes, st.Size())
	}

	// 3. The restore floor, then tandem restore --from latest, each into the emptied database.
	empty()
	b.Logf("load before the restore floor: %s", loadavg())
	in, err := os.Open(plain)
	if err != nil {
		b.Fatal(err)
	}
	restoreFloor := runClientFrom(b, eng, &cfg, m.Name, in)
	in.Close()
	empty()
	b.Logf("load before the restore: %s", loadavg())
	rs, rsRSS := runBenchRSS(b, timeout, env, "restore", "--from", "latest")
	if rs.code != 0 {
		b.Fatalf("restore --from latest exited %d:\n%s", rs.code, rs.log.String())
	}
	for _, t := range m.Tables {
		if got := countRows(b, engine, db, t.Name); got != t.Rows {
			b.Fatalf("restored %s has %d rows, the manifest says %d", t.Name, got, t.Rows)
		}
	}

	sqlOut, objMiB := float64(m.DumpBytes)/(1<<20), float64(m.Bytes)/(1<<20)
	b.ReportMetric(sqlOut, "sql-MiB")
	b.ReportMetric(objMiB, "object-MiB")
	b.ReportMetric(dumpFloor.Seconds(), "dump-floor-s")
	b.ReportMetric(backupTime.Seconds(), "backup-s")
	b.ReportMetric(backupTime.Seconds()/dumpFloor.Seconds(), "backup/floor")
	b.ReportMetric(restoreFloor.Seconds(), "restore-floor-s")
	b.ReportMetric(rs.elapsed.Seconds(), "restore-s")
	b.ReportMetric(rs.elapsed.Seconds()/restoreFloor.Seconds(), "restore/floor")
	b.ReportMetric(float64(max(bkRSS, rsRSS))/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(peakDir.Load())/(1<<20), "peak-dir-MiB")
	b.Logf("%s %.0f MiB of SQL, %.0f MiB zstd (%.2fx): dump floor %.1f s, backup %.1f s (%.2fx); restore floor %.1f s, restore %.1f s (%.2fx); "+
		"peak RSS %.0f MiB (backup) %.0f MiB (restore); BACKUP_DIR peak %d bytes; load after: %s",
		engine, sqlOut, objMiB, sqlOut/objMiB, dumpFloor.Seconds(), backupTime.Seconds(), backupTime.Seconds()/dumpFloor.Seconds(),
		restoreFloor.Seconds(), rs.elapsed.Seconds(), rs.elapsed.Seconds()/restoreFloor.Seconds(),
		float64(bkRSS)/(1<<20), float64(rsRSS)/(1<<20), peakDir.Load(), loadavg())
}

// serverPID is the pid of the test's process whose program is prog and whose arguments hold arg (a port), or 0.
func serverPID(prog, arg string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		args := readCmdline(pid)
		if len(args) > 0 && filepath.Base(args[0]) == prog && strings.Contains(strings.Join(args, " "), arg) {
			return pid
		}
	}
	return 0
}

// median is the middle of ds (the mean of the two in the middle, for an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// runClient runs engine's dump client (restore false) for cfg as tandem runs it, its output into out, and
// returns how long it took.
func runClient(b *testing.B, eng *engine, cfg *Config, restore bool, backup string, out io.Writer) time.Duration {
	b.Helper()
	cl, err := eng.client(cfg, restore, backup)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.cleanup()
	cmd := exec.Command(clientPath(cl.prog), cl.args...)
	cmd.Env = cl.env
	w := bufio.NewWriterSize(out, 256<<10)
	cmd.Stdout = w
	var stderr tailBuffer
	stderr.max = 4 << 10
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v: %s", cl.prog, err, stderr.String())
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// runClientCPU is runClient into /dev/null, adding the client's CPU seconds to cpu.
func runClientCPU(b *testing.B, eng *engine, cfg *Config, cpu *float64) time.Duration {
	b.Helper()
	cl, err := eng.client(cfg, false, "")
	if err != nil {
		b.Fatal(err)
	}
	defer cl.cleanup()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	cmd := exec.Command(clientPath(cl.prog), cl.args...)
	cmd.Env, cmd.Stdout = cl.env, devnull // a file: the client writes to /dev/null itself, as a shell's > /dev/null does
	var stderr tailBuffer
	stderr.max = 4 << 10
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v: %s", cl.prog, err, stderr.String())
	}
	elapsed := time.Since(start)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		*cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return elapsed
}

// runClientFrom runs engine's restore client for cfg as tandem runs it, reading in, and returns how long it
// took.
func runClientFrom(b *testing.B, eng *engine, cfg *Config, backup string, in io.Reader) time.Duration {
	b.Helper()
	cl, err := eng.client(cfg, true, backup)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.cleanup()
	cmd := exec.Command(clientPath(cl.prog), cl.args...)
	cmd.Env = cl.env
	cmd.Stdin = in
	var stderr tailBuffer
	stderr.max = 4 << 10
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v: %s", cl.prog, err, stderr.String())
	}
	return time.Since(start)
}

// clientPath is where the tests' PostgreSQL (or MariaDB) keeps the program prog, which tandem finds on the PATH
// the tests give it.
func clientPath(prog string) string {
	for _, d := range []string{deps.PGBinDir, deps.MariaDBBinDir} {
		if p := filepath.Join(d, filepath.Base(prog)); !filepath.IsAbs(prog) {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	return prog
}

// runBenchRSS is runBench, sampling the tandem process's VmHWM every 20 ms; it returns the last one read, in
// bytes.
func runBenchRSS(b *testing.B, timeout time.Duration, env []string, args ...string) (*benchRun, int64) {
	b.Helper()
	s := newTreeSampler("")
	var peak, anon, file atomic.Int64
	s.onSample = func(root int) {
		for _, p := range []struct {
			field string
			v     *atomic.Int64
		}{{"VmHWM", &peak}, {"RssAnon", &anon}, {"RssFile", &file}} {
			if v := statusValue(root, p.field); v > p.v.Load() {
				p.v.Store(v)
			}
		}
	}
	r := runBench(b, timeout, s, env, args...)
	b.Logf("tandem %s: peak RSS %.1f MiB (sampled: anonymous %.1f MiB, file %.1f MiB)", args[0], float64(peak.Load())/(1<<20),
		float64(anon.Load())/(1<<20), float64(file.Load())/(1<<20))
	return r, peak.Load()
}

// statusValue is a "kB" field of /proc/pid/status, in bytes; 0 when it cannot be read.
func statusValue(pid int, field string) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// sampleDir records in peak the most dir holds, every 100 ms, until the returned stop is called.
func sampleDir(dir string, peak *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if u := usage(dir); u > peak.Load() {
				peak.Store(u)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

func countRows(b *testing.B, engine, db, table string) int64 {
	b.Helper()
	var out string
	if engine == "postgres" {
		out = benchSQL(b, db, "SELECT count(*) FROM "+table)
	} else {
		out = mariaBench(b, db, "SELECT count(*) FROM "+table)
	}
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		b.Fatalf("counting %s: %q", table, out)
	}
	return n
}

func mariaBench(b *testing.B, db, sql string) string {
	b.Helper()
	out, err := maria.SQL(db, sql)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// fillMariaDB makes the table orders in the MariaDB database db, with rows like those of fillVerifyCostDB whose
// dump (mariadb-dump's INSERT tuples) comes to about sqlBytes, and returns how many.
func fillMariaDB(b *testing.B, db string, sqlBytes int64) int64 {
	quoted := func(words []string) string { return "'" + strings.Join(words, "','") + "'" }
	pick := func(words []string) string {
		return fmt.Sprintf("ELT(1 + FLOOR(RAND() * %d), %s)", len(words), quoted(words))
	}
	// A note of 0 to 7 words, and a public id as random as PostgreSQL's md5 uuid (MariaDB's UUID() is time-based,
	// and would compress far better than real ids do).
	note := make([]string, 7)
	for i := range note {
		note[i] = pick(benchWords)
	}
	const publicID = "INSERT(INSERT(INSERT(INSERT(MD5(seq), 9, 0, '-'), 14, 0, '-'), 19, 0, '-'), 24, 0, '-')"
	mariaBench(b, db, `CREATE TABLE orders (id BIGINT NOT NULL PRIMARY KEY, customer_id BIGINT NOT NULL, status VARCHAR(16) NOT NULL,
		amount DECIMAL(12,2), currency CHAR(3), created_at DATETIME NOT NULL, public_id CHAR(36) NOT NULL, email VARCHAR(80), note TEXT)`)
	insert := func(lo, hi int64) string {
		return fmt.Sprintf(`INSERT INTO orders SELECT seq, 1 + FLOOR(RAND() * 250000), %s, ROUND(RAND() * RAND() * 2000, 2), %s,
			TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq * 13 + FLOOR(RAND() * 13) SECOND, %s,
			CONCAT(LOWER(%s), '.', LOWER(%s), seq MOD 250000, '@example.com'),
			SUBSTRING_INDEX(CONCAT_WS(' ', %s), ' ', FLOOR(RAND() * 8))
			FROM seq_%d_to_%d`, pick(strings.Fields("pending paid shipped delivered cancelled refunded")), pick(strings.Fields("EUR USD GBP SEK CHF")),
			publicID, pick(benchFirst), pick(benchLast), strings.Join(note, ", "), lo, hi)
	}
	const sample = 20000
	mariaBench(b, db, insert(1, sample))
	// What a row costs in the dump: mariadb-dump's own count of the sample.
	cfg := DefaultConfig()
	if err := cfg.ApplyEnv(lookupIn(envMap(mariaEnv(db, "x", b.TempDir())))); err != nil {
		b.Fatal(err)
	}
	var n countWriter
	runClient(b, engines["mysql"], &cfg, false, "", &n)
	rows := max(sample, sqlBytes*sample/int64(n))
	const chunk = 250000
	for lo := int64(sample + 1); lo <= rows; lo += chunk {
		mariaBench(b, db, insert(lo, min(lo+chunk-1, rows)))
	}
	return rows
}

// envMap is a list of NAME=value as a map.
func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
