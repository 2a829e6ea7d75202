package config_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/webhook/config"
)

// TestScriptProfileFixesTheExampleBugs runs the example script profile (examples/config/script-profile.yaml)
// with bash, against a fake pg_dump
// and a fake aws that follow a scripted list of outcomes, and checks the bugs of the original example's script
// are gone: a failed dump leaves no backup, each backup is uploaded once (and a failed upload again on the next
// pass), old local backups are pruned, and SIGTERM stops it at once without leaving a partial file.
func TestScriptProfileFixesTheExampleBugs(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed to run the example backup script: ", err)
	}
	root := t.TempDir()
	bin, backups, bucket := filepath.Join(root, "bin"), filepath.Join(root, "backups"), filepath.Join(root, "bucket")
	for _, d := range []string{bin, backups, bucket} {
		must(t, os.Mkdir(d, 0o755))
	}
	// Each fake pops its next outcome from a file: pass 1's dump fails, pass 2's upload fails.
	must(t, os.WriteFile(filepath.Join(root, "dumps"), []byte("fail\nok\nok\nok\nok\nok\nok\nok\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "uploads"), []byte("fail\nok\nok\nok\nok\nok\nok\nok\nok\n"), 0o644))
	pop := `next=$(head -n1 "$ROOT/$1"); sed -i 1d "$ROOT/$1"; [ "$next" = ok ]`
	must(t, os.WriteFile(filepath.Join(bin, "pg_dump"), []byte("#!/bin/bash\necho \"-- dump of $*\"\n"+strings.ReplaceAll(pop, "$1", "dumps")+"\n"), 0o755))
	must(t, os.WriteFile(filepath.Join(bin, "aws"), []byte("#!/bin/bash\necho \"$*\" >> \"$ROOT/aws.log\"\n"+strings.ReplaceAll(pop, "$1", "uploads")+
		" && cp \"$4\" \"$ROOT/bucket/\"\n"), 0o755))

	c, err := config.Load(filepath.Join("..", "..", "examples", "config", "script-profile.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Profiles["postgres-script"]
	cmd := exec.Command(bash, "-c", p.Args[0])
	cmd.Env = append(os.Environ(), "ROOT="+root, "PATH="+bin+":"+os.Getenv("PATH"), "BACKUP_DIR="+backups,
		"BACKUP_LOCATION=s3://bucket/prefix", "BACKUP_INTERVAL_SECONDS=1", "BACKUP_KEEP=2", "DATABASE_NAME=orders")
	for _, e := range p.Env {
		if e.Name != "BACKUP_KEEP" && e.Name != "HOME" {
			cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
		}
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()

	// Pass 1: no backup. Passes 2 to 5: four backups, the first uploaded only on pass 3; each pass ends pruning.
	deadline := time.Now().Add(60 * time.Second)
	for len(list(t, bucket, "*.gz")) < 4 || len(list(t, backups, "*.gz")) > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("four backups never reached the bucket; bucket %v, output:\n%s", list(t, bucket, "*"), out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not stop the loop")
	}

	uploaded := list(t, bucket, "*.gz")
	log, _ := os.ReadFile(filepath.Join(root, "aws.log"))
	for _, f := range uploaded {
		if !strings.HasPrefix(f, "orders-") || !strings.HasSuffix(f, ".sql.gz") {
			t.Errorf("backup named %q, want orders-<UTC time>.sql.gz", f)
		}
		// Uploaded once, except the first, whose first upload failed.
		want := 1
		if f == uploaded[0] {
			want = 2
		}
		if n := strings.Count(string(log), "/"+f+" "); n != want {
			t.Errorf("%s sent to aws %d times, want %d; aws calls:\n%s", f, n, want, log)
		}
	}
	local := list(t, backups, "*.gz")
	if len(local) > 2 || len(local) == 0 || local[len(local)-1] != uploaded[len(uploaded)-1] {
		t.Errorf("local backups %v: want at most the newest 2, the newest kept", local)
	}
	if partial := list(t, backups, ".*partial"); len(partial) > 0 {
		t.Errorf("partial files left behind: %v", partial)
	}
	if !strings.Contains(out.String(), "dump failed; no backup written") {
		t.Errorf("the failed dump was not reported:\n%s", out.String())
	}
}

func list(t *testing.T, dir, pattern string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = filepath.Base(m)
	}
	sort.Strings(names)
	return names
}
