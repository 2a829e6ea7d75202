package backup

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pg17Header is how pg_dump 17 starts a plain dump.
const pg17Header = `--
-- PostgreSQL database dump
--

\restrict abc123

-- Dumped from database version 15.14
-- Dumped by pg_dump version 17.12

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SELECT pg_catalog.set_config('search_path', '', false);
`

func TestPostgresRestoreInputGuardsTransactionTimeout(t *testing.T) {
	body := "CREATE TABLE t (note text);\nINSERT INTO t VALUES ('SET transaction_timeout = 0;');\nSET transaction_timeout = 0;\n"
	got, err := io.ReadAll(postgresRestoreInput(strings.NewReader(pg17Header + body)))
	if err != nil {
		t.Fatal(err)
	}
	want := transactionTimeoutIf + strings.Replace(pg17Header, "SET transaction_timeout = 0;\n", "", 1) + body
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// A dump without the line (pg_dump before 17), and input that ends inside the header, pass unchanged.
	for _, in := range []string{strings.Replace(pg17Header, "SET transaction_timeout = 0;\n", "", 1) + body, "--\n-- only a comment", ""} {
		if got, err := io.ReadAll(postgresRestoreInput(strings.NewReader(in))); err != nil || string(got) != in {
			t.Errorf("input %q came out as %q (%v)", in, got, err)
		}
	}
}

// TestRestoreOfAPostgres17DumpIntoAnOlderServer restores a dump in pg_dump 17's form into the test's real
// PostgreSQL (15): the setting it does not know is skipped, the data arrives.
func TestRestoreOfAPostgres17DumpIntoAnOlderServer(t *testing.T) {
	must := mustSQL(t)
	db := dbFor(t, "db")
	must(pg.SQL("postgres", "CREATE DATABASE "+db))
	target := t.TempDir()
	f, err := os.Create(filepath.Join(target, db+"-20260101T000000Z.sql.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	io.WriteString(zw, pg17Header+"CREATE TABLE public.notes (note text);\nINSERT INTO public.notes VALUES ('from a pg_dump 17 dump');\n")
	zw.Close()
	f.Close()
	env := append(pgEnv(db, "", t.TempDir()), "BACKUP_LOCATION=file://"+target)
	// Written by hand, it has no manifest: a backup of before manifests, restored by name.
	if code, out := tandemRun(t, env, "restore", "--from", db+"-20260101T000000Z.sql.gz"); code != 0 {
		t.Fatalf("restore exited %d: %s", code, out)
	}
	if got := strings.TrimSpace(must(pg.SQL(db, "SELECT note FROM notes"))); got != "from a pg_dump 17 dump" {
		t.Fatalf("restored: %q", got)
	}
}
