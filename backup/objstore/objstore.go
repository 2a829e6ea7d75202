// Package objstore is the object storage the backup sidecar uploads to: a bucket URL (s3://bucket/prefix or
// file:///dir) opened as the handful of operations the sidecar needs. S3 goes through the AWS SDK for Go v2
// (AWS S3 and S3-compatible stores); file:// through the os package.
//
// Why not gocloud.dev/blob: its portable API pulls gRPC, the OpenTelemetry SDK and Google's API client
// packages into every binary that links it, even for s3:// and file:// only. In tandem's one binary that cost
// every webhook process and every sidecar 11-13 MiB of resident memory and 30 MB of binary (measured: idle
// RssFile 33 MiB against 20 MiB without it), and Google Cloud Storage and Azure were not linked anyway (their
// drivers add 30 MB and 4.5 MB). The AWS SDK on its own adds 0.3 MiB.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tandem-dev/tandem/internal/contract"
)

// ErrNotFound is returned (wrapped) for an object that does not exist.
var ErrNotFound = errors.New("object not found")

// Object is one object in a bucket, its key relative to the location's prefix.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Bucket is a backup location opened: keys are relative to its prefix and hold no "/".
type Bucket interface {
	// Create starts writing the object key. What is written goes to the store as it comes (S3: in parts, a
	// bounded number of them in flight), but the object appears, whole, only when Commit succeeds: Abort, a
	// Write or Commit that failed, or ctx ending leave no object and no part behind.
	Create(ctx context.Context, key string, opts CreateOptions) (Writer, error)
	// Uploads lists the objects being written under the prefix that were neither committed nor aborted: S3's open
	// multipart uploads, a directory's hidden temporary files. A writer that was killed leaves one.
	Uploads(ctx context.Context) ([]Upload, error)
	// AbortUpload discards an upload that Uploads listed.
	AbortUpload(ctx context.Context, u Upload) error
	// Size is the size of the object key, or an error wrapping ErrNotFound.
	Size(ctx context.Context, key string) (int64, error)
	// List lists the objects directly under the prefix (not in deeper "directories").
	List(ctx context.Context) ([]Object, error)
	// Open opens the object key for reading, or returns an error wrapping ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete deletes the object key; deleting an object that does not exist is no error.
	Delete(ctx context.Context, key string) error
}

// Upload is an object being written, not committed.
type Upload struct {
	Key string
	// ID is the store's name for it: S3's upload ID, or the temporary file's name.
	ID        string
	Initiated time.Time
}

// CreateOptions describe an object being written.
type CreateOptions struct {
	// ContentType is the object's media type (S3's Content-Type); empty: application/octet-stream.
	ContentType string
	// SizeHint is about how large the object will be (0: not known), for S3's part size: an object may grow
	// past it, at the cost of larger parts.
	SizeHint int64
}

// Writer is an object being written, from Bucket.Create. It is not safe for concurrent use.
type Writer interface {
	// Write adds p to the object. After an error, every Write fails, and only Abort is left to call.
	Write(p []byte) (int, error)
	// Commit ends the object and makes it appear under its key, checking that the store holds every byte
	// written; it returns how many that was. When it fails, nothing appears.
	Commit() (int64, error)
	// Abort discards what was written, and says when the store could not be told to (S3: its parts stay until a
	// lifecycle rule removes them; no object appears either way). It may be called after Commit, or twice, to
	// no effect.
	Abort() error
}

// Put stores what r holds as key, streaming it.
func Put(ctx context.Context, b Bucket, key string, r io.Reader, opts CreateOptions) (int64, error) {
	w, err := b.Create(ctx, key, opts)
	if err != nil {
		return 0, err
	}
	defer func() { _ = w.Abort() }()
	if _, err := io.Copy(w, r); err != nil {
		return 0, err
	}
	return w.Commit()
}

// Location is a parsed backup location (the contract's grammar, which the webhook checks at admission).
type Location = contract.Location

// Open opens the location. For s3:// it reads the AWS configuration (credentials, region, endpoint) from the
// environment the way the AWS CLI does; it does not reach the network.
func Open(ctx context.Context, l Location) (Bucket, error) {
	switch l.Scheme {
	case "s3":
		return openS3(ctx, l)
	case "file":
		return openDir(l.Bucket)
	}
	return nil, fmt.Errorf("location %q was not made by Parse", l)
}

// validKey refuses keys that would escape the prefix or the directory.
func validKey(key string) error {
	if key == "" || key == "." || key == ".." || strings.ContainsAny(key, "/\\\x00") {
		return fmt.Errorf("object name %q is not a plain file name", key)
	}
	return nil
}
