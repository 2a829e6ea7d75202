package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
		testBucket(t, "file://"+dir, func() []string { return listDir(t, dir) }, func() []string { return nil })
	})
	t.Run("s3", func(t *testing.T) {
		srv := startS3(t)
		uploads := func() []string {
			keys, err := srv.Uploads("backups")
			if err != nil {
				t.Fatal(err)
			}
			return keys
		}
		testBucket(t, "s3://backups/team/orders", func() []string {
			names, err := srv.Objects("backups", "team/orders")
			if err != nil {
				t.Fatal(err)
			}
			return names
		}, uploads)
		if names, _ := srv.Objects("backups", ""); len(names) != 0 {
			t.Errorf("objects outside the prefix: %v", names)
		}
	})
}

// testBucket checks a bucket: stored lists the objects the store holds, uploads the multipart uploads it holds
// open.
func testBucket(t *testing.T, url string, stored, uploads func() []string) {
	ctx := context.Background()
	loc, err := contract.ParseLocation(url)
	if err != nil {
		t.Fatal(err)
	}
	b, err := objstore.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	small := randomBytes(1000)     // one PUT
	large := randomBytes(37 << 20) // eight parts of 5 MiB, the last smaller, two in flight
	// Written in pieces of an odd size, as a compressor's output arrives, with no hint.
	w, err := b.Create(ctx, "b.sql.zst", objstore.CreateOptions{ContentType: "application/zstd"})
	if err != nil {
		t.Fatal(err)
	}
	for rest := large; len(rest) > 0; {
		n := min(len(rest), 100_003)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		rest = rest[n:]
		if len(rest) == len(large)/2 {
			if got := stored(); slices.Contains(got, "b.sql.zst") {
				t.Errorf("half written, the object is already visible: %v", got)
			}
		}
	}
	if got := stored(); slices.Contains(got, "b.sql.zst") {
		t.Errorf("before Commit, the object is visible: %v", got)
	}
	if n, err := w.Commit(); err != nil || n != int64(len(large)) {
		t.Fatalf("Commit = %d, %v; want %d", n, err, len(large))
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if n, err := objstore.Put(ctx, b, "a.sql.gz", bytes.NewReader(small), objstore.CreateOptions{}); err != nil || n != 1000 {
		t.Fatalf("Put a.sql.gz = %d, %v", n, err)
	}
	if got := stored(); !slices.Equal(got, []string{"a.sql.gz", "b.sql.zst"}) {
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
	if len(sizes) != 2 || sizes["a.sql.gz"] != 1000 || sizes["b.sql.zst"] != 37<<20 {
		t.Errorf("List = %+v", objs)
	}
	if n, err := b.Size(ctx, "b.sql.zst"); err != nil || n != 37<<20 {
		t.Errorf("Size = %d, %v", n, err)
	}
	for name, want := range map[string][]byte{"a.sql.gz": small, "b.sql.zst": large} {
		r, err := b.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Open %s: %d bytes (%v), want the %d written", name, len(got), err, len(want))
		}
	}
	if _, err := b.Size(ctx, "missing.sql.gz"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Size of a missing object: %v, want ErrNotFound", err)
	}
	if _, err := b.Open(ctx, "missing.sql.gz"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Open of a missing object: %v, want ErrNotFound", err)
	}
	if _, err := b.Create(ctx, "../escape", objstore.CreateOptions{}); err == nil {
		t.Error("Create of ../escape succeeded")
	}

	// An upload left open, as a writer that was killed leaves it, is listed, and AbortUpload ends it.
	w, err = b.Create(ctx, "left.sql.zst", objstore.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(large[:20<<20]); err != nil {
		t.Fatal(err)
	}
	open, err := b.Uploads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Key != "left.sql.zst" || open[0].ID == "" || time.Since(open[0].Initiated) > time.Hour {
		t.Fatalf("Uploads = %+v, want the one being written", open)
	}
	if err := b.AbortUpload(ctx, open[0]); err != nil {
		t.Fatalf("AbortUpload: %v", err)
	}
	_ = w.Abort() // its upload is gone already
	if open, err := b.Uploads(ctx); err != nil || len(open) != 0 {
		t.Fatalf("after AbortUpload, Uploads = %+v, %v", open, err)
	}

	// An object aborted after three parts went, one cancelled in the middle of its parts, and one whose
	// Commit comes after its context ended: none appears, and no part is left behind.
	w, err = b.Create(ctx, "aborted.sql.zst", objstore.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(large[:30<<20]); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort: %v", err)
	}
	if _, err := w.Write(small); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	w, err = b.Create(cctx, "cancelled.sql.zst", objstore.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Write(large[:20<<20])
	cancel()
	if err == nil {
		_, err = w.Write(large[20<<20:])
	}
	if err == nil {
		t.Error("Write after the context ended succeeded")
	}
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after the context ended succeeded")
	}
	dctx, cancel := context.WithCancel(ctx)
	w, err = b.Create(dctx, "late.sql.gz", objstore.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(small); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after the context ended succeeded")
	}
	for _, name := range []string{"a.sql.gz", "missing.sql.gz"} {
		if err := b.Delete(ctx, name); err != nil {
			t.Errorf("Delete %s: %v", name, err)
		}
	}
	if got := stored(); !slices.Equal(got, []string{"b.sql.zst"}) {
		t.Errorf("after aborted and cancelled objects and a delete, stored objects = %v", got)
	}
	if got := uploads(); len(got) != 0 {
		t.Errorf("multipart uploads left open: %v", got)
	}
}

func randomBytes(size int) []byte {
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(size)})
	r.Read(data)
	return data
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

// startS3 starts versitygw with a bucket "backups", stopped when t ends, and points the AWS SDK at it.
func startS3(t *testing.T) *backuptest.S3 {
	t.Helper()
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
	return srv
}

// Parts are sent with their CRC32 signed and their bodies unsigned: a part damaged on the way is refused by the
// store (BadDigest), and the backup is not stored. A proxy in front of versitygw flips one byte of the second
// part's body.
func TestS3RefusesAPartDamagedOnTheWay(t *testing.T) {
	srv := startS3(t)
	target, _ := url.Parse("http://" + srv.Addr())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var flipped atomic.Int32
	var sent atomic.Value // the second part's request headers
	next := proxy.Director
	proxy.Director = func(r *http.Request) {
		next(r)
		if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "2" {
			sent.Store(r.Header.Clone())
			r.Body = &flipReader{r: r.Body, at: 1 << 20}
			flipped.Add(1)
		}
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	t.Setenv("AWS_ENDPOINT_URL", front.URL)

	ctx := context.Background()
	loc, err := contract.ParseLocation("s3://backups/damaged")
	if err != nil {
		t.Fatal(err)
	}
	b, err := objstore.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	w, err := b.Create(ctx, "b.sql.zst", objstore.CreateOptions{ContentType: "application/zstd"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Write(randomBytes(12 << 20))
	if err == nil {
		_, err = w.Commit()
	}
	if err == nil || flipped.Load() == 0 {
		t.Fatalf("a part damaged on the way was stored (%d parts damaged): %v", flipped.Load(), err)
	}
	_ = w.Abort()
	t.Logf("refused: %v", err)
	// What guarded it: the CRC32 in a signed header, and no SHA-256 of the body (a pass over every part on each
	// side, over plain HTTP).
	h, _ := sent.Load().(http.Header)
	if h.Get("X-Amz-Checksum-Crc32") == "" || !strings.Contains(h.Get("Authorization"), "x-amz-checksum-crc32") ||
		h.Get("X-Amz-Content-Sha256") != "UNSIGNED-PAYLOAD" {
		t.Errorf("the part was not sent with a signed CRC32 and an unsigned body: %v", h)
	}
	if names, err := srv.Objects("backups", "damaged"); err != nil || len(names) != 0 {
		t.Errorf("objects after the refused upload: %v (%v)", names, err)
	}
}

// flipReader flips the byte at offset at of what r reads.
type flipReader struct {
	r     io.ReadCloser
	at, n int
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if i := f.at - f.n; i >= 0 && i < n {
		p[i] ^= 0xff
	}
	f.n += n
	return n, err
}

func (f *flipReader) Close() error { return f.r.Close() }
