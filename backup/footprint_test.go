package backup

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSidecarFootprint measures what `tandem backup` costs in every database pod: the binary,
// built as the image builds it (CGO_ENABLED=0), runs as the sidecar against the S3 server, with a pg_dump that
// writes realistic, compressible SQL. It reports
//
//   - idle-RssAnon-MiB: anonymous memory while waiting for the timer, after two small backups;
//   - idle-cpu-s: CPU seconds (user and system) used in 10 s of that wait;
//   - peak-RssAnon-MiB: the highest anonymous memory sampled (every 10 ms) during a backup of a 1 GB dump;
//   - peak-VmHWM-MiB: the process's peak resident memory (anonymous and file-backed) over its whole life;
//   - init-heap-KiB: heap allocated by package initialisers (GODEBUG=inittrace=1), the five largest logged.
//
// Run it alone: go test ./backup/ -run '^$' -bench Footprint -benchtime 1x. TANDEM_FOOTPRINT_BINARY measures
// another build instead (a leaner main, say); TANDEM_FOOTPRINT_DUMP_BYTES sets the big dump's size.
func BenchmarkSidecarFootprint(b *testing.B) {
	bin := os.Getenv("TANDEM_FOOTPRINT_BINARY")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "tandem")
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command(goTool(), "build", "-o", bin, "./cmd/tandem")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("building tandem: %v\n%s", err, out)
		}
	}
	bigDump := int64(1 << 30)
	if s := os.Getenv("TANDEM_FOOTPRINT_DUMP_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatalf("TANDEM_FOOTPRINT_DUMP_BYTES=%s: %v", s, err)
		}
		bigDump = n
	}
	var binSize float64
	if st, err := os.Stat(bin); err == nil {
		binSize = float64(st.Size())
	}
	initBytes := initHeap(b, bin)

	// pg_dump is this test binary (see testMain), writing as many bytes of SQL as the file size names.
	tools := b.TempDir()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(tools, "pg_dump")); err != nil {
		b.Fatal(err)
	}
	size := filepath.Join(tools, "size")
	setSize := func(n int64) {
		if err := os.WriteFile(size, []byte(strconv.FormatInt(n, 10)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	setSize(1 << 20)

	// Backups at 0 s and 15 s (small), the wait measured from the second one, the big dump at 30 s.
	const interval = 15 * time.Second
	dir, prefix := b.TempDir(), "bench/footprint-"+strconv.FormatInt(time.Now().UnixNano(), 36)
	cmd := exec.Command(bin, "backup")
	cmd.Env = append(cleanEnv(), store.Env()...)
	cmd.Env = append(cmd.Env, "PATH="+tools+":"+os.Getenv("PATH"), "TANDEM_FAKE_DUMP_SIZE_FILE="+size,
		// A socket directory for a host: the fake pg_dump needs no server, and the sidecar waits for none.
		"BACKUP_ENGINE=postgres", "DATABASE_HOST="+tools, "DATABASE_NAME=app", "BACKUP_LOCATION=s3://"+bucket+"/"+prefix, "BACKUP_DIR="+dir,
		"BACKUP_INTERVAL="+interval.String(), "BACKUP_KEEP=1", "BACKUP_METRICS_BIND_ADDRESS=127.0.0.1:0")
	cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool {
		return strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GODEBUG=")
	})
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	pid := cmd.Process.Pid
	landed := func() int { // backups, not their manifests
		n, _ := store.Objects(bucket, prefix)
		return len(backupFiles(n))
	}
	waitFor := func(what string, timeout time.Duration, cond func() bool) {
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				b.Fatalf("after %s: %s\n%s", timeout, what, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.ResetTimer() // which also forgets the metrics reported so far
	b.ReportMetric(binSize/(1<<20), "binary-MiB")
	b.ReportMetric(initBytes/(1<<10), "init-heap-KiB")

	waitFor("two small backups land", 2*interval+10*time.Second, func() bool { return landed() >= 2 })
	time.Sleep(500 * time.Millisecond)
	cpu0 := procCPU(b, pid)
	time.Sleep(10 * time.Second)
	idleCPU := procCPU(b, pid) - cpu0
	idle := procStatus(b, pid)
	b.ReportMetric(idle["RssAnon"]/(1<<20), "idle-RssAnon-MiB")
	b.ReportMetric(idle["RssFile"]/(1<<20), "idle-RssFile-MiB")
	b.ReportMetric(idleCPU, "idle-cpu-s")

	setSize(bigDump)
	// The dump phase is while the partial file exists; the upload phase after it.
	var peakDump, peakUpload float64
	dumping := func() bool {
		for _, n := range dirFiles(b, dir) {
			if strings.HasSuffix(n, partialSuffix) {
				return true
			}
		}
		return false
	}
	start := time.Now()
	var dumpStart, uploadStart time.Time
	waitFor("the big backup lands", 10*time.Minute, func() bool {
		d := dumping()
		anon := procStatus(b, pid)["RssAnon"]
		switch {
		case d:
			if dumpStart.IsZero() {
				dumpStart = time.Now()
			}
			peakDump = max(peakDump, anon)
		case !dumpStart.IsZero():
			if uploadStart.IsZero() {
				uploadStart = time.Now()
			}
			peakUpload = max(peakUpload, anon)
		}
		return landed() >= 3
	})
	b.ReportMetric(max(peakDump, peakUpload)/(1<<20), "peak-RssAnon-MiB")
	b.ReportMetric(peakDump/(1<<20), "peak-dump-RssAnon-MiB")
	b.ReportMetric(peakUpload/(1<<20), "peak-upload-RssAnon-MiB")
	b.ReportMetric(procStatus(b, pid)["VmHWM"]/(1<<20), "peak-VmHWM-MiB")
	names := backupFiles(dirFiles(b, dir))
	if st, err := os.Stat(filepath.Join(dir, names[len(names)-1])); err == nil {
		b.ReportMetric(float64(bigDump)/float64(st.Size()), "compression-ratio")
	}
	if !dumpStart.IsZero() && !uploadStart.IsZero() {
		b.ReportMetric(uploadStart.Sub(dumpStart).Seconds(), "dump-s")
		b.ReportMetric(time.Since(uploadStart).Seconds(), "upload-s")
	}
	b.Logf("the big dump started %s after its size was set", dumpStart.Sub(start).Round(time.Second))
	b.StopTimer()
}

// initHeap runs bin with GODEBUG=inittrace=1 and returns the bytes its package initialisers allocated, logging
// the five largest.
func initHeap(b *testing.B, bin string) float64 {
	cmd := exec.Command(bin, "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	trace, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%s version: %v\n%s", bin, err, trace)
	}
	type pkg struct {
		name  string
		bytes float64
	}
	var pkgs []pkg
	var total float64
	for _, line := range strings.Split(string(trace), "\n") {
		// init crypto/tls @1.2 ms, 0.010 ms clock, 2208 bytes, 27 allocs
		f := strings.Fields(line)
		if len(f) < 11 || f[0] != "init" || f[8] != "bytes," {
			continue
		}
		n, _ := strconv.ParseFloat(f[7], 64)
		pkgs = append(pkgs, pkg{f[1], n})
		total += n
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].bytes > pkgs[j].bytes })
	var top []string
	for _, p := range pkgs[:min(5, len(pkgs))] {
		top = append(top, fmt.Sprintf("%s %.0f KiB", p.name, p.bytes/1024))
	}
	b.Logf("package initialisers: %d, %.0f KiB in all; the largest: %s", len(pkgs), total/1024, strings.Join(top, ", "))
	return total
}

// procStatus reads the sizes (in bytes) of /proc/pid/status.
func procStatus(b *testing.B, pid int) map[string]float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	st := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			n, _ := strconv.ParseFloat(f[0], 64)
			st[k] = n * 1024
		}
	}
	return st
}

// procCPU is the user and system CPU seconds pid has used, from /proc/pid/stat.
func procCPU(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which is in parentheses and may hold spaces: state is field 3, utime 14.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ, 100 on Linux
}

// fakePGDump writes pg_dump-like plain SQL to standard output: a COPY of an orders table whose rows vary as real
// ones do (ids, e-mail addresses, amounts, timestamps, short notes), as many bytes as the file named by
// TANDEM_FAKE_DUMP_SIZE_FILE says. It is the footprint benchmark's dump program.
func fakePGDump() int {
	raw, err := os.ReadFile(os.Getenv("TANDEM_FAKE_DUMP_SIZE_FILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg_dump (fake):", err)
		return 1
	}
	limit, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg_dump (fake):", err)
		return 1
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	header := "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.orders (id bigint PRIMARY KEY, customer_id bigint, email text, " +
		"status text, amount numeric(12,2), created_at timestamptz, note text);\n\nCOPY public.orders (id, customer_id, email, status, amount, created_at, note) FROM stdin;\n"
	footer := "\\.\n\n--\n-- PostgreSQL database dump complete\n--\n"
	written, _ := w.WriteString(header)
	words := strings.Fields("the a customer asked for delivery before noon please leave parcel at door gift wrap " +
		"fragile handle with care second attempt address changed call on arrival invoice requested express " +
		"standard return exchange size colour blue red green large small medium")
	statuses := []string{"pending", "paid", "shipped", "delivered", "cancelled", "refunded"}
	x := uint64(88172645463325252)
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	var line []byte
	for id := int64(1); int64(written)+int64(len(footer)) < limit; id++ {
		r := next()
		cust := int64(r % 250000)
		line = strconv.AppendInt(line[:0], id, 10)
		line = append(line, '\t')
		line = strconv.AppendInt(line, cust, 10)
		line = append(line, "\tcustomer"...)
		line = strconv.AppendInt(line, cust, 10)
		line = append(line, "@example.com\t"...)
		line = append(line, statuses[r>>20%uint64(len(statuses))]...)
		line = append(line, '\t')
		line = strconv.AppendInt(line, int64(r>>24%100000), 10)
		line = append(line, '.')
		line = strconv.AppendInt(line, int64(10+r>>40%90), 10)
		line = append(line, '\t')
		line = time.Unix(base+int64(id)*13+int64(r>>48%13), 0).UTC().AppendFormat(line, "2006-01-02 15:04:05+00")
		line = append(line, '\t')
		for i, n := 0, int(r>>56%8); i < n; i++ {
			if i > 0 {
				line = append(line, ' ')
			}
			line = append(line, words[next()%uint64(len(words))]...)
		}
		if n := int64(written) + int64(len(line)) + 1 + int64(len(footer)); n > limit {
			break
		}
		line = append(line, '\n')
		n, err := w.Write(line)
		written += n
		if err != nil {
			return 1
		}
	}
	w.WriteString(footer)
	if err := w.Flush(); err != nil {
		return 1
	}
	return 0
}
