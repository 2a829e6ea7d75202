package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkVerifyCost measures what `tandem verify` costs the database pod, next to the restore it proves: a
// PostgreSQL database of realistic rows (orders and customers: ids, amounts, timestamps, e-mail addresses, short
// notes, UUIDs; zstd makes 2.6x of its dump), made in the server with generate_series, is backed up once
// with `tandem backup --once`, restored with `tandem restore --from latest` into the emptied database (the
// floor), and verified with `tandem verify --from latest`, which reads the object once for its SHA-256, starts a
// throwaway server, restores into it at nice 10 and counts the rows. While verify runs, every ~100 ms, it samples
// the resident memory of the tandem process and all its descendants (psql, initdb, the postgres server and its
// backends), and the disk the throwaway server's directory (.tandem-verify-*) holds. It reports
//
//   - dump-MiB, object-MiB: the backup's SQL and its object (zstd);
//   - restore-s, verify-s, verify/restore: the wall times and their ratio;
//   - restore-cpu-s, verify-cpu-s: CPU seconds (user and system): of the restore's tandem and psql and of the
//     shared PostgreSQL server's processes while it ran; of verify's whole process tree;
//   - peak-rss-MiB: the highest sum of VmRSS over the tree (which counts shared pages once per process),
//     peak-pss-MiB the highest sum of Pss (shared pages divided among their processes), peak-anon-MiB of RssAnon;
//   - peak-disk-MiB: the most the throwaway server's directory held (blocks allocated, as du counts);
//   - verify-checksum-s, verify-server-s, verify-restore-s, verify-count-s, verify-teardown-s: where verify's
//     time went, from when its log lines arrived;
//   - cg-*: the same verification again, in a child memory cgroup (cgroup v1) limited to 512 MiB, the memory limit
//     of the built-in profiles' sidecar container: its time, the cgroup's memory.max_usage_in_bytes (page cache
//     included, which the kernel reclaims at the limit), the peak of its anonymous and shared memory (which it
//     cannot), memory.failcnt and the OOM kills. Skipped, saying why, where no such cgroup can be made.
//
// It does the work once, whatever b.N; ns/op is the unconstrained verification. Run it alone, with no test
// timeout at the full size:
//
//	TANDEM_BENCH_SQL_MIB=1024 go test ./backup/ -run '^$' -bench VerifyCost -benchtime 1x -timeout 0 -v
//
// TANDEM_BENCH_SQL_MIB sizes the dump (1024 when unset); TANDEM_BENCH_CGROUP_MIB the cgroup's limit (512), and
// TANDEM_BENCH_CGROUP=off skips that run.
func BenchmarkVerifyCost(b *testing.B) {
	sqlMiB := 1024.0
	if s := os.Getenv("TANDEM_BENCH_SQL_MIB"); s != "" {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || n <= 0 {
			b.Fatalf("TANDEM_BENCH_SQL_MIB=%s: want a positive number of MiB", s)
		}
		sqlMiB = n
	}
	cgMiB := 512.0
	if s := os.Getenv("TANDEM_BENCH_CGROUP_MIB"); s != "" {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || n <= 0 {
			b.Fatalf("TANDEM_BENCH_CGROUP_MIB=%s: want a positive number of MiB", s)
		}
		cgMiB = n
	}
	// Generous, but an end: a 1 GiB restore takes minutes on a busy machine with two cores.
	timeout := 10*time.Minute + time.Duration(sqlMiB*3)*time.Second
	b.Logf("load before: %s", loadavg())

	db := "bench_verifycost"
	dir, prefix := b.TempDir(), "bench/verifycost-"+strconv.FormatInt(time.Now().UnixNano(), 36)
	benchSQL(b, "postgres", "DROP DATABASE IF EXISTS "+db)
	benchSQL(b, "postgres", "CREATE DATABASE "+db)
	b.Cleanup(func() { _, _ = pgSQL(context.Background(), "postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	genStart := time.Now()
	orders, customers := fillVerifyCostDB(b, db, int64(sqlMiB*(1<<20)))
	b.Logf("made %d orders and %d customers in %s", orders, customers, time.Since(genStart).Round(time.Second))
	env := pgEnv(db, prefix, dir)

	// 1. One backup, not verified.
	bk := runBench(b, timeout, nil, env, "backup", "--once")
	if bk.code != 0 {
		b.Fatalf("backup --once exited %d:\n%s", bk.code, bk.log.String())
	}
	names := objects(b, store, prefix)
	if len(names) != 1 {
		b.Fatalf("backup --once left %q at %s", names, prefix)
	}
	m := readObjectManifest(b, prefix, names[0])
	var rows int64
	for _, t := range m.Tables {
		rows += t.Rows
	}
	dumpMiB, objectMiB := float64(m.DumpBytes)/(1<<20), float64(m.Bytes)/(1<<20)
	b.Logf("backup: %s, %.1f MiB of SQL, %.1f MiB zstd (%.2fx), %d tables, %d rows, in %s", m.Name, dumpMiB, objectMiB,
		dumpMiB/objectMiB, len(m.Tables), rows, bk.elapsed.Round(100*time.Millisecond))

	// 2. The floor: restore into the emptied database.
	benchSQL(b, "postgres", "DROP DATABASE "+db+" WITH (FORCE)")
	benchSQL(b, "postgres", "CREATE DATABASE "+db)
	b.Logf("load before the restore: %s", loadavg())
	postmaster := pgPostmaster(b)
	serverCPU0 := treeCPU(postmaster)
	rs := runBench(b, timeout, newTreeSampler(""), env, "restore", "--from", "latest")
	restoreServerCPU := treeCPU(postmaster) - serverCPU0
	if rs.code != 0 {
		b.Fatalf("restore --from latest exited %d:\n%s", rs.code, rs.log.String())
	}
	for _, t := range m.Tables {
		if got := benchSQL(b, db, "SELECT count(*) FROM "+t.Name); got != strconv.FormatInt(t.Rows, 10) {
			b.Fatalf("restored %s has %s rows, the manifest says %d", t.Name, got, t.Rows)
		}
	}
	b.Logf("restore: %s, CPU %.1f s in tandem and psql, %.1f s in the database server; the client's tree peaked at %.0f MiB RSS\n%s",
		rs.elapsed.Round(100*time.Millisecond), rs.cpu, restoreServerCPU, rs.sampler.peakRSS/(1<<20), rs.log.String())

	// 3. Verification, sampled.
	b.Logf("load before verify: %s", loadavg())
	b.ResetTimer() // ns/op is the verification; this also forgets metrics reported so far (none)
	vs := runBench(b, timeout, newTreeSampler(""), env, "verify", "--from", "latest")
	b.StopTimer()
	loadAfter := loadavg()
	if vs.code != 0 || !strings.Contains(vs.log.String(), `"msg":"verified"`) {
		b.Fatalf("verify --from latest exited %d:\n%s", vs.code, vs.log.String())
	}
	ph := verifyPhases(b, vs)
	b.Logf("verify: %s, CPU %.1f s, %d samples, peak %d processes; peak RSS by program: %s\n%s",
		vs.elapsed.Round(100*time.Millisecond), vs.cpu, vs.sampler.samples, vs.sampler.peakProcs, vs.sampler.byName(), vs.log.String())

	// 3b. The same in a memory cgroup of the sidecar's limit, where that can be had.
	var cg *benchRun
	var cgDir string
	var err error
	if os.Getenv("TANDEM_BENCH_CGROUP") == "off" {
		b.Logf("cgroup run skipped: TANDEM_BENCH_CGROUP=off")
	} else if cgDir, err = newMemCgroup(int64(cgMiB * (1 << 20))); err != nil {
		b.Logf("cgroup run skipped: %v", err)
	} else {
		b.Cleanup(func() { removeMemCgroup(b, cgDir) })
		cg = runBench(b, timeout, newTreeSampler(cgDir), env, "verify", "--from", "latest")
		cg.cgroupEnd = readCgroupEnd(cgDir)
		b.Logf("verify in a %.0f MiB memory cgroup (%s): exited %d in %s; memory.max_usage_in_bytes %.0f MiB, peak rss+shmem %.0f MiB "+
			"(peak cache %.0f MiB), failcnt %d, oom_kill %d, under_oom %d; peak RSS by program: %s\n%s",
			cgMiB, cgDir, cg.code, cg.elapsed.Round(100*time.Millisecond), cg.cgroupEnd.maxUsage/(1<<20), cg.sampler.peakCgUnreclaimable/(1<<20),
			cg.sampler.peakCgCache/(1<<20), cg.cgroupEnd.failcnt, cg.cgroupEnd.oomKills, cg.cgroupEnd.underOOM, cg.sampler.byName(), cg.log.String())
	}

	// 4. Report.
	ratio := vs.elapsed.Seconds() / rs.elapsed.Seconds()
	b.ReportMetric(dumpMiB, "dump-MiB")
	b.ReportMetric(objectMiB, "object-MiB")
	b.ReportMetric(rs.elapsed.Seconds(), "restore-s")
	b.ReportMetric(vs.elapsed.Seconds(), "verify-s")
	b.ReportMetric(ratio, "verify/restore")
	b.ReportMetric(rs.cpu+restoreServerCPU, "restore-cpu-s")
	b.ReportMetric(vs.cpu, "verify-cpu-s")
	b.ReportMetric(vs.sampler.peakRSS/(1<<20), "peak-rss-MiB")
	b.ReportMetric(vs.sampler.peakPSS/(1<<20), "peak-pss-MiB")
	b.ReportMetric(vs.sampler.peakAnon/(1<<20), "peak-anon-MiB")
	b.ReportMetric(vs.sampler.peakDisk/(1<<20), "peak-disk-MiB")
	for _, p := range ph {
		b.ReportMetric(p.d.Seconds(), "verify-"+p.name+"-s")
	}
	summary := fmt.Sprintf("%.0f MiB SQL, %.0f MiB zstd (%.2fx), %d rows in %d tables; restore %.1f s (%s), verify %.1f s = %.2fx (%s); CPU: restore %.1f s (%.1f in the server), verify %.1f s; "+
		"peak RSS %.0f MiB (PSS %.0f, anon %.0f), peak disk %.0f MiB",
		dumpMiB, objectMiB, dumpMiB/objectMiB, rows, len(m.Tables), rs.elapsed.Seconds(), phaseString(restorePhases(b, rs)), vs.elapsed.Seconds(), ratio, phaseString(ph), rs.cpu+restoreServerCPU, restoreServerCPU, vs.cpu,
		vs.sampler.peakRSS/(1<<20), vs.sampler.peakPSS/(1<<20), vs.sampler.peakAnon/(1<<20), vs.sampler.peakDisk/(1<<20))
	if cg != nil {
		ok := 0.0
		if cg.code == 0 {
			ok = 1
		}
		b.ReportMetric(cg.elapsed.Seconds(), "cg-verify-s")
		b.ReportMetric(ok, "cg-verify-ok")
		b.ReportMetric(cg.cgroupEnd.maxUsage/(1<<20), "cg-max-usage-MiB")
		b.ReportMetric(cg.sampler.peakCgUnreclaimable/(1<<20), "cg-peak-rss+shmem-MiB")
		b.ReportMetric(float64(cg.cgroupEnd.failcnt), "cg-failcnt")
		b.ReportMetric(float64(cg.cgroupEnd.oomKills), "cg-oom-kills")
		verdict := "passed"
		if cg.code != 0 {
			verdict = fmt.Sprintf("FAILED (exit %d)", cg.code)
		}
		summary += fmt.Sprintf("; in a %.0f MiB memory cgroup verify %s in %.1f s, max_usage %.0f MiB, peak rss+shmem %.0f MiB, failcnt %d, OOM kills %d",
			cgMiB, verdict, cg.elapsed.Seconds(), cg.cgroupEnd.maxUsage/(1<<20), cg.sampler.peakCgUnreclaimable/(1<<20), cg.cgroupEnd.failcnt, cg.cgroupEnd.oomKills)
	}
	b.Logf("verifycost: %s; load %s after verify, %s at the end", summary, loadAfter, loadavg())
}

// The vocabularies of the generated rows.
var (
	benchWords = strings.Fields("the a customer asked for delivery before noon please leave parcel at door gift wrap " +
		"fragile handle with care second attempt address changed call on arrival invoice requested express " +
		"standard return exchange size colour blue red green large small medium back office neighbour")
	benchFirst  = strings.Fields("Anna Ben Chloe David Emma Felix Grace Hugo Iris Jonas Katja Liam Maria Noah Olivia Paul Rosa Sam Tara Viktor")
	benchLast   = strings.Fields("Smith Müller Dubois Rossi García Nowak Jensen Silva Kowalski Novak Berg Schmidt Martin Costa Larsen")
	benchCities = strings.Fields("Berlin Paris Madrid Rome Lisbon Warsaw Prague Vienna Oslo Dublin Amsterdam Zurich Munich Lyon")
)

// fillVerifyCostDB makes the tables orders and customers in db, with rows whose dump (COPY text) comes to about
// sqlBytes, and their indexes; it returns the rows of each.
func fillVerifyCostDB(b *testing.B, db string, sqlBytes int64) (orders, customers int64) {
	benchSQL(b, db, `CREATE TABLE customers (id bigint NOT NULL, name text NOT NULL, email text NOT NULL, city text, country text,
		signed_up date, credit numeric(10,2), newsletter boolean);
	CREATE TABLE orders (id bigint NOT NULL, customer_id bigint NOT NULL, status text NOT NULL, amount numeric(12,2), currency text,
		created_at timestamptz NOT NULL, public_id uuid NOT NULL, note text);`)
	arr := func(words []string) string { return "'{" + strings.Join(words, ",") + "}'::text[]" }
	pick := func(array string, n int) string { return fmt.Sprintf("%s[1 + floor(random() * %d)::int]", array, n) }
	var noteWords []string
	for range 7 {
		noteWords = append(noteWords, pick("v.w", len(benchWords)))
	}
	insertOrders := func(lo, hi int64) string {
		return fmt.Sprintf(`INSERT INTO orders SELECT i, 1 + floor(random() * 250000)::bigint, %s,
			round((random() * random() * 2000)::numeric, 2), %s,
			timestamptz '2024-01-01 00:00:00+00' + i * interval '13 seconds' + floor(random() * 13) * interval '1 second',
			md5(i::text)::uuid,
			array_to_string((ARRAY[%s])[1:floor(random() * 8)::int], ' ')
			FROM generate_series(%d, %d) AS i, (SELECT %s AS w, %s AS s, %s AS c) AS v`,
			pick("v.s", 6), pick("v.c", 5), strings.Join(noteWords, ", "), lo, hi,
			arr(benchWords), arr(strings.Fields("pending paid shipped delivered cancelled refunded")), arr(strings.Fields("EUR USD GBP SEK CHF")))
	}
	insertCustomers := func(lo, hi int64) string {
		// The inner query's volatile target list keeps it from being pulled up: one pick of each name per row.
		return fmt.Sprintf(`INSERT INTO customers SELECT i, fn || ' ' || ln, lower(fn) || '.' || lower(ln) || i || '@example.com', city, cc,
			date '2015-01-01' + floor(random() * 3650)::int, round((random() * 500)::numeric, 2), random() < 0.3
			FROM (SELECT i, %s AS fn, %s AS ln, %s AS city, %s AS cc
				FROM generate_series(%d, %d) AS i, (SELECT %s AS f, %s AS l, %s AS t, %s AS k) AS v) AS r`,
			pick("v.f", len(benchFirst)), pick("v.l", len(benchLast)), pick("v.t", len(benchCities)), pick("v.k", 8), lo, hi,
			arr(benchFirst), arr(benchLast), arr(benchCities), arr(strings.Fields("DE FR ES IT PT PL CZ AT")))
	}
	lineBytes := func(table, cols string) float64 {
		out := benchSQL(b, db, fmt.Sprintf("SELECT avg(octet_length(concat_ws(E'\\t', %s)) + 1) FROM %s", cols, table))
		f, err := strconv.ParseFloat(out, 64)
		if err != nil {
			b.Fatalf("the line length of %s: %q", table, out)
		}
		return f
	}
	// A sample of each to learn the lines' length, then the rest, two statements at a time (two cores).
	const sample, perCustomer = 20000, 20
	benchSQL(b, db, insertOrders(1, sample))
	benchSQL(b, db, insertCustomers(1, sample/perCustomer))
	perOrder := lineBytes("orders", "id, customer_id, status, amount, currency, created_at, public_id, note") +
		lineBytes("customers", "id, name, email, city, country, signed_up, credit, newsletter")/perCustomer
	orders = max(sample, int64(float64(sqlBytes)/perOrder))
	customers = max(sample/perCustomer, orders/perCustomer)
	var jobs []string
	const chunk = 250000
	for lo := int64(sample + 1); lo <= orders; lo += chunk {
		jobs = append(jobs, insertOrders(lo, min(lo+chunk-1, orders)))
	}
	for lo := int64(sample/perCustomer + 1); lo <= customers; lo += chunk {
		jobs = append(jobs, insertCustomers(lo, min(lo+chunk-1, customers)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(jobs))
	next := make(chan string)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range next {
				if _, err := pgSQL(context.Background(), db, q); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, q := range jobs {
		next <- q
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	// Indexes, which the dump recreates after the rows and the restores build.
	benchSQL(b, db, `ALTER TABLE customers ADD PRIMARY KEY (id); ALTER TABLE orders ADD PRIMARY KEY (id);
		CREATE INDEX orders_customer_id ON orders (customer_id);`)
	benchSQL(b, db, "VACUUM ANALYZE")
	return orders, customers
}

// pgSQL runs sql in db of the shared PostgreSQL server, as pg.SQL does but without its one-minute limit.
func pgSQL(ctx context.Context, db, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(deps.PGBinDir, "psql"), "--no-psqlrc", "--host", "127.0.0.1",
		"--port", strconv.Itoa(pg.Port), "--username", "postgres", "--dbname", db, "--no-align", "--tuples-only",
		"--set", "ON_ERROR_STOP=1", "--command", sql)
	cmd.Env = append(cleanEnv(), "PGPASSWORD="+pg.Password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if len(sql) > 200 {
			sql = sql[:200] + "..."
		}
		return "", fmt.Errorf("psql %q: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func benchSQL(b *testing.B, db, sql string) string {
	b.Helper()
	out, err := pgSQL(context.Background(), db, sql)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// benchRun is one run of the tandem binary, timed, its log lines stamped as they arrived.
type benchRun struct {
	code      int
	elapsed   time.Duration
	cpu       float64 // user and system seconds of the process and the descendants it (and they) waited for
	log       *stampedLog
	sampler   *treeSampler
	cgroupEnd cgroupEnd
}

// runBench runs tandem with args and env (on top of what startCommand gives it, without the Go runtime's
// settings of the caller's shell), sampling its process tree with s (nil: none) every 100 ms; in s's cgroup when
// it has one, from before tandem's first instruction.
func runBench(b *testing.B, timeout time.Duration, s *treeSampler, env []string, args ...string) *benchRun {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var cmd *exec.Cmd
	if s != nil && s.cgroup != "" {
		script := `echo $$ > '` + filepath.Join(s.cgroup, "cgroup.procs") + `' && exec "$0" "$@"`
		cmd = exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script, tandemBin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, tandemBin, args...)
	}
	cmd.Env = append(cleanEnv(), "PATH="+deps.PGBinDir+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, store.Env()...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool {
		return strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GODEBUG=")
	})
	r := &benchRun{log: &stampedLog{}, sampler: s}
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if s != nil {
		r.log.onLine = func(fields map[string]any) {
			if d, ok := fields["dir"].(string); ok {
				s.addDir(d)
			}
		}
	}
	start := time.Now()
	r.log.start = start
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if s != nil {
		s.run(cmd.Process.Pid)
	}
	err := cmd.Wait()
	r.elapsed = time.Since(start)
	if s != nil {
		s.halt()
	}
	if ctx.Err() != nil {
		b.Fatalf("%s still running after %s:\n%s", strings.Join(args, " "), timeout, r.log.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		b.Fatal(err)
	}
	r.code = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return r
}

// stampedLog keeps a program's output, and when each of its lines arrived.
type stampedLog struct {
	mu     sync.Mutex
	start  time.Time
	all    bytes.Buffer
	part   []byte
	lines  []stampedLine
	onLine func(map[string]any)
}

type stampedLine struct {
	at     time.Duration
	fields map[string]any // the JSON log line's fields; nil for a line that is not one
}

func (l *stampedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := time.Since(l.start)
	l.all.Write(p)
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		var fields map[string]any
		if json.Unmarshal(l.part[:i], &fields) != nil {
			fields = nil
		}
		l.lines = append(l.lines, stampedLine{at, fields})
		if fields != nil && l.onLine != nil {
			l.onLine(fields)
		}
		l.part = l.part[i+1:]
	}
	return len(p), nil
}

func (l *stampedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// first is when the first line with message msg arrived; false when none did.
func (l *stampedLog) first(msg string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if line.fields["msg"] == msg {
			return line.at, true
		}
	}
	return 0, false
}

type phase struct {
	name string
	d    time.Duration
}

// verifyPhases splits a verification's time at its log lines: the checksum pass (the object read once), the
// throwaway server (initdb and its start), the restore into it, the row counts, and its removal (and the
// manifest's update).
func verifyPhases(tb testing.TB, r *benchRun) []phase {
	return phases(tb, r, "teardown", []mark{
		{"checksum", "verify: the backup matches its manifest"},
		{"server", "verify: throwaway server started"},
		{"restore", "verify: restored into a throwaway server"},
		{"count", "verified"},
	})
}

// restorePhases splits a restore's time likewise: the checksum pass, the restore, and the exit.
func restorePhases(tb testing.TB, r *benchRun) []phase {
	return phases(tb, r, "exit", []mark{{"checksum", "the backup matches its manifest"}, {"restore", "restored"}})
}

type mark struct{ name, msg string }

// phases splits r's time at the first lines of the marks' messages, in order; last is the rest's name. A mark
// whose message is not in the log (a log line reworded) is an error, not a phase silently left out.
func phases(tb testing.TB, r *benchRun, last string, marks []mark) []phase {
	tb.Helper()
	var out []phase
	var prev time.Duration
	for _, mk := range marks {
		at, ok := r.log.first(mk.msg)
		if !ok {
			tb.Errorf("no log line %q to end the %s phase at: the phases after %v are not measured", mk.msg, mk.name, out)
			return out
		}
		out = append(out, phase{mk.name, at - prev})
		prev = at
	}
	return append(out, phase{last, r.elapsed - prev})
}

func phaseString(ph []phase) string {
	var parts []string
	for _, p := range ph {
		parts = append(parts, fmt.Sprintf("%s %.1f s", p.name, p.d.Seconds()))
	}
	return strings.Join(parts, ", ")
}

// treeSampler samples a process tree's memory, the throwaway server's directories' disk and (with a cgroup) the
// cgroup's memory, keeping the peaks.
type treeSampler struct {
	cgroup string

	mu                         sync.Mutex
	dirs                       map[string]bool
	peakRSS, peakPSS, peakAnon float64
	peakByName                 map[string]float64
	peakProcs, samples         int
	peakDisk                   float64
	peakCgUsage, peakCgCache   float64
	peakCgUnreclaimable        float64
	stop, done                 chan struct{}
	// onSample, when set, is called with the root's pid at each sample.
	onSample func(root int)
}

func newTreeSampler(cgroup string) *treeSampler {
	return &treeSampler{cgroup: cgroup, dirs: map[string]bool{}, peakByName: map[string]float64{}}
}

func (s *treeSampler) addDir(d string) {
	if strings.HasPrefix(filepath.Base(d), ".tandem-verify-") {
		s.mu.Lock()
		s.dirs[d] = true
		s.mu.Unlock()
	}
}

func (s *treeSampler) run(root int) {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample(root)
			if s.onSample != nil {
				s.onSample(root)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
}

func (s *treeSampler) halt() {
	close(s.stop)
	<-s.done
}

func (s *treeSampler) sample(root int) {
	var rss, pss, anon float64
	byName := map[string]float64{}
	pids := processTree(root)
	for _, pid := range pids {
		st, name := readProcStatus(pid)
		if st == nil {
			continue
		}
		rss += st["VmRSS"]
		anon += st["RssAnon"]
		byName[name] += st["VmRSS"]
		pss += readPss(pid)
		// initdb --pgdata DIR/data, postgres -D DIR/data: the throwaway server's directory before its log says.
		args := readCmdline(pid)
		for i, a := range args {
			if (a == "-D" || a == "--pgdata") && i+1 < len(args) {
				s.addDir(filepath.Dir(args[i+1]))
			} else if v, ok := strings.CutPrefix(a, "--pgdata="); ok {
				s.addDir(filepath.Dir(v))
			}
		}
	}
	s.mu.Lock()
	dirs := make([]string, 0, len(s.dirs))
	for d := range s.dirs {
		dirs = append(dirs, d)
	}
	s.mu.Unlock()
	var disk float64
	for _, d := range dirs {
		disk += duBytes(d)
	}
	var cgUsage, cgCache, cgUnreclaimable float64
	if s.cgroup != "" {
		cgUsage = readNumber(filepath.Join(s.cgroup, "memory.usage_in_bytes"))
		st := readFlat(filepath.Join(s.cgroup, "memory.stat"))
		cgCache, cgUnreclaimable = st["cache"], st["rss"]+st["shmem"]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	s.peakRSS, s.peakPSS, s.peakAnon = max(s.peakRSS, rss), max(s.peakPSS, pss), max(s.peakAnon, anon)
	s.peakProcs = max(s.peakProcs, len(pids))
	for n, v := range byName {
		s.peakByName[n] = max(s.peakByName[n], v)
	}
	s.peakDisk = max(s.peakDisk, disk)
	s.peakCgUsage, s.peakCgCache = max(s.peakCgUsage, cgUsage), max(s.peakCgCache, cgCache)
	s.peakCgUnreclaimable = max(s.peakCgUnreclaimable, cgUnreclaimable)
}

// byName is the peak summed RSS of each program in the tree, largest first.
func (s *treeSampler) byName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.peakByName {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return s.peakByName[names[i]] > s.peakByName[names[j]] })
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.1f MiB", n, s.peakByName[n]/(1<<20)))
	}
	return strings.Join(parts, ", ")
}

// processTree is root and all its descendants, from /proc/PID/task/TID/children.
func processTree(root int) []int {
	seen := map[int]bool{root: true}
	queue, out := []int{root}, []int{}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, pid)
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, t := range tasks {
			raw, _ := os.ReadFile(t)
			for _, f := range strings.Fields(string(raw)) {
				if c, err := strconv.Atoi(f); err == nil && !seen[c] {
					seen[c] = true
					queue = append(queue, c)
				}
			}
		}
	}
	return out
}

// readProcStatus is the sizes (bytes) of /proc/pid/status and its program's name; nil when it has gone.
func readProcStatus(pid int) (map[string]float64, string) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, ""
	}
	st, name := map[string]float64{}, ""
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if k == "Name" {
			name = strings.TrimSpace(v)
		}
		if f := strings.Fields(v); len(f) == 2 && f[1] == "kB" {
			n, _ := strconv.ParseFloat(f[0], 64)
			st[k] = n * 1024
		}
	}
	return st, name
}

// readPss is the process's proportional set size (bytes), from /proc/pid/smaps_rollup; 0 when it has gone.
func readPss(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			if f := strings.Fields(v); len(f) == 2 {
				n, _ := strconv.ParseFloat(f[0], 64)
				return n * 1024
			}
		}
	}
	return 0
}

func readCmdline(pid int) []string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
}

// duBytes is what the files under dir occupy, in allocated blocks as du counts them; 0 when it has gone.
func duBytes(dir string) float64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone while walked
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			}
		}
		return nil
	})
	return float64(total)
}

func readNumber(path string) float64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		return math.NaN()
	}
	n, _ := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
	return n
}

// readFlat reads a cgroup file of "key value" lines.
func readFlat(path string) map[string]float64 {
	raw, _ := os.ReadFile(path)
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			n, _ := strconv.ParseFloat(f[1], 64)
			out[f[0]] = n
		}
	}
	return out
}

// newMemCgroup makes a child of this process's cgroup v1 memory cgroup, limited to limit bytes, or says why it
// cannot.
func newMemCgroup(limit int64) (string, error) {
	raw, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	var rel string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		// hierarchy-ID:controllers:path; cgroup v2's is 0::path
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && slices.Contains(strings.Split(f[1], ","), "memory") {
			rel = f[2]
		}
	}
	if rel == "" {
		return "", errors.New("no cgroup v1 memory controller in /proc/self/cgroup (cgroup v2 only is not handled)")
	}
	parent := filepath.Join("/sys/fs/cgroup/memory", rel)
	if _, err := os.Stat(filepath.Join(parent, "memory.limit_in_bytes")); err != nil {
		return "", fmt.Errorf("this process's memory cgroup %s is not at %s: %v", rel, parent, err)
	}
	dir := filepath.Join(parent, fmt.Sprintf("tandem-verifycost-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("making a child memory cgroup: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		_ = os.Remove(dir)
		return "", fmt.Errorf("setting the child memory cgroup's limit: %w", err)
	}
	if got := readNumber(filepath.Join(dir, "memory.limit_in_bytes")); got > float64(limit) || got < float64(limit)-4096 {
		_ = os.Remove(dir)
		return "", fmt.Errorf("the child memory cgroup's limit reads %.0f, not %d", got, limit)
	}
	return dir, nil
}

// removeMemCgroup removes the child cgroup once its processes are gone, emptying it first when it must.
func removeMemCgroup(b *testing.B, dir string) {
	for i := 0; i < 50; i++ {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return
		}
		if i == 10 {
			_ = os.WriteFile(filepath.Join(dir, "memory.force_empty"), []byte("0"), 0o200)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Logf("could not remove the memory cgroup %s", dir)
}

// cgroupEnd is what a memory cgroup recorded by the end of a run.
type cgroupEnd struct {
	maxUsage                    float64
	failcnt, oomKills, underOOM int64
}

func readCgroupEnd(dir string) cgroupEnd {
	oom := readFlat(filepath.Join(dir, "memory.oom_control"))
	return cgroupEnd{
		maxUsage: readNumber(filepath.Join(dir, "memory.max_usage_in_bytes")),
		failcnt:  int64(readNumber(filepath.Join(dir, "memory.failcnt"))),
		oomKills: int64(oom["oom_kill"]),
		underOOM: int64(oom["under_oom"]),
	}
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// pgPostmaster is the pid of the shared PostgreSQL server's postmaster: the postgres process started with -p and
// its port.
func pgPostmaster(b *testing.B) int {
	b.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		args := readCmdline(pid)
		if len(args) == 0 || filepath.Base(args[0]) != "postgres" {
			continue
		}
		for i, a := range args[:len(args)-1] {
			if a == "-p" && args[i+1] == strconv.Itoa(pg.Port) {
				return pid
			}
		}
	}
	b.Fatalf("no postgres process listens on port %d", pg.Port)
	return 0
}

// treeCPU is the CPU seconds (user and system) used so far by root and its descendants, those that have exited
// and were waited for included (they count in their parent's cutime and cstime).
func treeCPU(root int) float64 {
	var ticks float64
	for _, pid := range processTree(root) {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// After the command name in parentheses: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		if len(f) < 15 {
			continue
		}
		for _, i := range []int{11, 12, 13, 14} {
			n, _ := strconv.ParseFloat(f[i], 64)
			ticks += n
		}
	}
	return ticks / 100 // USER_HZ, 100 on Linux
}
