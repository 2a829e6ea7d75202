package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/backup/backuptest"
	"github.com/tandem-dev/tandem/backup/objstore"
	"github.com/tandem-dev/tandem/internal/contract"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, bucket, prefix, err string
	}{
		{in: "s3://backups", bucket: "backups"},
		{in: "s3://backups/", bucket: "backups"},
		{in: "s3://backups/team/orders/", bucket: "backups", prefix: "team/orders/"},
		{in: "s3://backups/p?region=eu-west-1&endpoint=https://minio.example:9000&use_path_style=false", bucket: "backups", prefix: "p/"},
		{in: "s3://backups?ssetype=aws:kms&kmskeyid=alias/backups", bucket: "backups"},
		{in: "file:///var/backups/", bucket: "/var/backups"},
		{in: "s3:///p", err: "names no bucket"},
		{in: "s3://b?prefix=x", err: "as the URL's path"},
		{in: "s3://b?regoin=x", err: `unknown query parameter "regoin"`},
		{in: "s3://b?use_path_style=yes", err: "want true or false"},
		{in: "s3://b?endpoint=minio:9000", err: "is not an http:// or https:// URL"},
		{in: "s3://b?kmskeyid=k", err: "kmskeyid needs ssetype"},
		{in: "s3://b?region=a&region=b", err: "given 2 times"},
		{in: "file:///", err: "names no directory"},
		{in: "file://host/dir", err: `names the host "host"`},
		{in: "file:///d?x=1", err: "take no query parameters"},
		{in: "gs://bucket", err: `scheme "gs" is not supported`},
		{in: "/var/backups", err: "is not a URL"},
	} {
		loc, err := contract.ParseLocation(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, want an error containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || loc.Bucket != tc.bucket || loc.Prefix != tc.prefix {
			t.Errorf("Parse(%q) = bucket %q prefix %q, %v; want %q %q", tc.in, loc.Bucket, loc.Prefix, err, tc.bucket, tc.prefix)
		}
	}
	loc, _ := contract.ParseLocation("s3://backups/orders/?region=eu-west-1")
	if got, want := loc.ObjectURL("orders-20260101T000000Z.sql.gz"), "s3://backups/orders/orders-20260101T000000Z.sql.gz?region=eu-west-1"; got != want {
		t.Errorf("ObjectURL = %q, want %q", got, want)
	}
}

// TestBucket runs the same contract against a directory and against versitygw, a real S3-compatible server.
func TestBucket(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		testBucket(t, "file://"+dir, func() []string { return listDir(t, dir) })
	})
	t.Run("s3", func(t *testing.T) {
		deps, err := backuptest.Provision()
		if err != nil {
			t.Fatal(err)
		}
		srv, err := backuptest.StartS3(deps, "backups")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		for _, kv := range srv.Env() {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		testBucket(t, "s3://backups/team/orders", func() []string {
			names, err := srv.Objects("backups", "team/orders")
			if err != nil {
				t.Fatal(err)
			}
			return names
		})
		// Nothing was left outside the prefix, and no multipart upload was left open.
		if names, _ := srv.Objects("backups", ""); len(names) != 0 {
			t.Errorf("objects outside the prefix: %v", names)
		}
	})
}

func testBucket(t *testing.T, url string, stored func() []string) {
	ctx := context.Background()
	loc, err := contract.ParseLocation(url)
	if err != nil {
		t.Fatal(err)
	}
	b, err := objstore.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	small := writeFile(t, 1000)
	large := writeFile(t, 70<<20) // above the multipart threshold: two parts
	for name, f := range map[string]*os.File{"a.sql.gz": small, "b.sql.gz": large} {
		st, _ := f.Stat()
		if err := b.Upload(ctx, name, f, st.Size()); err != nil {
			t.Fatalf("Upload %s: %v", name, err)
		}
	}
	if got := stored(); !slices.Equal(got, []string{"a.sql.gz", "b.sql.gz"}) {
		t.Errorf("stored objects = %v", got)
	}
	objs, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, o := range objs {
		sizes[o.Key] = o.Size
	}
	if len(sizes) != 2 || sizes["a.sql.gz"] != 1000 || sizes["b.sql.gz"] != 70<<20 {
		t.Errorf("List = %+v", objs)
	}
	if n, err := b.Size(ctx, "b.sql.gz"); err != nil || n != 70<<20 {
		t.Errorf("Size = %d, %v", n, err)
	}
	for _, f := range []*os.File{small, large} {
		name := map[*os.File]string{small: "a.sql.gz", large: "b.sql.gz"}[f]
		r, err := b.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		want, _ := os.ReadFile(f.Name())
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Open %s: %d bytes (%v), want the %d uploaded", name, len(got), err, len(want))
		}
	}
	if _, err := b.Size(ctx, "missing.sql.gz"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Size of a missing object: %v, want ErrNotFound", err)
	}
	if _, err := b.Open(ctx, "missing.sql.gz"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Open of a missing object: %v, want ErrNotFound", err)
	}
	if err := b.Upload(ctx, "../escape", small, 1000); err == nil {
		t.Error("Upload of ../escape succeeded")
	}
	// A cancelled upload leaves nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Upload(cctx, "c.sql.gz", large, 70<<20); err == nil {
		t.Error("cancelled Upload succeeded")
	}
	for _, name := range []string{"a.sql.gz", "missing.sql.gz"} {
		if err := b.Delete(ctx, name); err != nil {
			t.Errorf("Delete %s: %v", name, err)
		}
	}
	if got := stored(); !slices.Equal(got, []string{"b.sql.gz"}) {
		t.Errorf("after a cancelled upload and a delete, stored objects = %v", got)
	}
}

func writeFile(t *testing.T, size int) *os.File {
	t.Helper()
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(size)})
	r.Read(data)
	path := filepath.Join(t.TempDir(), "dump")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func listDir(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name()) // hidden temporary files too: none may be left
	}
	return names
}
