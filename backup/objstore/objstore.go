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
	"net/url"
	"os"
	"strings"
	"time"
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
	// Upload stores the file f, of the given size, as key, streaming it; a failed or cancelled upload leaves
	// no object behind.
	Upload(ctx context.Context, key string, f *os.File, size int64) error
	// Size is the size of the object key, or an error wrapping ErrNotFound.
	Size(ctx context.Context, key string) (int64, error)
	// List lists the objects directly under the prefix (not in deeper "directories").
	List(ctx context.Context) ([]Object, error)
	// Open opens the object key for reading, or returns an error wrapping ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete deletes the object key; deleting an object that does not exist is no error.
	Delete(ctx context.Context, key string) error
}

// Location is a parsed bucket URL.
type Location struct {
	// Scheme is "s3" or "file".
	Scheme string
	// Bucket is the S3 bucket, or the directory of a file:// location.
	Bucket string
	// Prefix is prepended to every key: empty, or ending in "/". Always empty for file://.
	Prefix string
	// S3 holds the s3:// query parameters.
	S3 S3Options
	// display is the URL as given, without a trailing "/".
	display string
}

// S3Options are the query parameters an s3:// location may carry.
type S3Options struct {
	// Region overrides AWS_REGION (?region=).
	Region string
	// Endpoint overrides AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_S3 (?endpoint=).
	Endpoint string
	// PathStyle forces path-style (true) or virtual-hosted-style (false) requests (?use_path_style=); nil:
	// path style when a custom endpoint is set, which is what MinIO, Ceph and the like expect.
	PathStyle *bool
	// SSE is the server-side encryption to ask for (?ssetype=AES256, aws:kms or aws:kms:dsse), and KMSKeyID
	// the KMS key for it (?kmskeyid=).
	SSE, KMSKeyID string
}

// Parse reads a bucket URL: s3://bucket/prefix[?region=R&endpoint=URL&use_path_style=true|false&ssetype=T&kmskeyid=K]
// or file:///directory. Each mistake is an error that names it.
func Parse(s string) (Location, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Location{}, err
	}
	loc := Location{Scheme: u.Scheme, display: strings.TrimSuffix(s, "/")}
	q := u.Query()
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return Location{}, fmt.Errorf("%q names no bucket: want s3://bucket/prefix", s)
		}
		loc.Bucket = u.Host
		if p := strings.Trim(u.Path, "/"); p != "" {
			loc.Prefix = p + "/"
		}
		if err := loc.S3.parse(q); err != nil {
			return Location{}, fmt.Errorf("%q: %w", s, err)
		}
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, fmt.Errorf("%q names the host %q: want file:///path/to/dir", s, u.Host)
		}
		if u.Path == "" || u.Path == "/" {
			return Location{}, fmt.Errorf("%q names no directory: want file:///path/to/dir", s)
		}
		if len(q) > 0 {
			return Location{}, fmt.Errorf("%q: file:// locations take no query parameters", s)
		}
		loc.Bucket = strings.TrimSuffix(u.Path, "/")
	case "":
		return Location{}, fmt.Errorf("%q is not a URL: want s3://bucket/prefix or file:///dir", s)
	default:
		return Location{}, fmt.Errorf("scheme %q is not supported: want s3:// (AWS S3 and S3-compatible stores, Google Cloud Storage through its S3 interoperability) or file://", u.Scheme)
	}
	return loc, nil
}

func (o *S3Options) parse(q url.Values) error {
	for k, vs := range q {
		if len(vs) != 1 {
			return fmt.Errorf("query parameter %q is given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "region":
			o.Region = v
		case "endpoint":
			e, err := url.Parse(v)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return fmt.Errorf("endpoint %q is not an http:// or https:// URL", v)
			}
			o.Endpoint = v
		case "use_path_style":
			switch v {
			case "true":
				o.PathStyle = new(true)
			case "false":
				o.PathStyle = new(false)
			default:
				return fmt.Errorf("use_path_style is %q: want true or false", v)
			}
		case "ssetype":
			switch strings.ToLower(v) {
			case "aes256":
				o.SSE = "AES256"
			case "aws:kms", "aws:kms:dsse":
				o.SSE = strings.ToLower(v)
			default:
				return fmt.Errorf("ssetype is %q: want AES256, aws:kms or aws:kms:dsse", v)
			}
		case "kmskeyid":
			o.KMSKeyID = v
		case "prefix":
			return fmt.Errorf("give the prefix as the URL's path (s3://bucket/prefix), not as ?prefix=")
		default:
			return fmt.Errorf("unknown query parameter %q (known: region, endpoint, use_path_style, ssetype, kmskeyid)", k)
		}
	}
	if o.KMSKeyID != "" && !strings.HasPrefix(o.SSE, "aws:kms") {
		return fmt.Errorf("kmskeyid needs ssetype=aws:kms or aws:kms:dsse")
	}
	return nil
}

// String is the location as the user wrote it, without a trailing "/".
func (l Location) String() string { return l.display }

// ObjectURL is the URL of the object key at this location, for messages and for restore --from.
func (l Location) ObjectURL(key string) string {
	u, err := url.Parse(l.display)
	if err != nil {
		return l.display + "/" + key
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + key
	u.RawPath = ""
	return u.String()
}

// Open opens the location. For s3:// it reads the AWS configuration (credentials, region, endpoint) from the
// environment the way the AWS CLI does; it does not reach the network.
func (l Location) Open(ctx context.Context) (Bucket, error) {
	switch l.Scheme {
	case "s3":
		return openS3(ctx, l)
	case "file":
		return openDir(l.Bucket)
	}
	return nil, fmt.Errorf("location %q was not made by Parse", l.display)
}

// validKey refuses keys that would escape the prefix or the directory.
func validKey(key string) error {
	if key == "" || key == "." || key == ".." || strings.ContainsAny(key, "/\\\x00") {
		return fmt.Errorf("object name %q is not a plain file name", key)
	}
	return nil
}
