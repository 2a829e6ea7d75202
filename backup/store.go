package backup

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Location is a parsed BACKUP_LOCATION: the bucket, as gocloud.dev/blob opens it, and the prefix of the keys
// inside it.
type Location struct {
	// BucketURL is the URL blob.OpenBucket opens, with tandem's defaults for the scheme added.
	BucketURL string
	// Prefix is prepended to every key: empty, or ending in "/".
	Prefix string
	// display is the location as the user wrote it, for messages.
	display string
}

// ParseLocation reads a backup location: s3://bucket/prefix or file:///directory, each with the query parameters
// of its gocloud.dev/blob driver. (gs:// and azblob:// are not linked in: gocloud.dev's drivers for them would
// add 30 MB and 4.5 MB to the binary. Google Cloud Storage is reachable through s3:// and its S3-compatible XML
// API with HMAC keys.)
//
// For s3://, an endpoint set in AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3 (an S3-compatible store such as MinIO
// or Ceph) turns on path-style requests, which those stores expect, unless the URL sets use_path_style. For
// file://, objects are written through a temporary file next to the final one (not in /tmp, which is usually
// another volume) and no .attrs files are written, unless the URL says otherwise.
func ParseLocation(s string) (Location, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Location{}, err
	}
	q := u.Query()
	if q.Has("prefix") {
		return Location{}, fmt.Errorf("give the prefix as the URL's path (s3://bucket/prefix), not as ?prefix=")
	}
	loc := Location{display: strings.TrimSuffix(s, "/")}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return Location{}, fmt.Errorf("%q names no bucket: want %s://bucket/prefix", s, u.Scheme)
		}
		if p := strings.Trim(u.Path, "/"); p != "" {
			loc.Prefix = p + "/"
		}
		u.Path, u.RawPath = "", ""
		if !q.Has("use_path_style") && !q.Has("s3ForcePathStyle") &&
			(os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("AWS_ENDPOINT_URL_S3") != "") {
			q.Set("use_path_style", "true")
		}
	case "file":
		if u.Path == "" || u.Path == "/" {
			return Location{}, fmt.Errorf("%q names no directory: want file:///path/to/dir", s)
		}
		if !q.Has("no_tmp_dir") {
			q.Set("no_tmp_dir", "true")
		}
		if !q.Has("metadata") {
			q.Set("metadata", "skip")
		}
	case "":
		return Location{}, fmt.Errorf("%q is not a URL: want s3://bucket/prefix or file:///dir", s)
	default:
		return Location{}, fmt.Errorf("scheme %q is not supported: want s3:// (AWS S3 and S3-compatible stores, Google Cloud Storage through its S3 interoperability) or file://", u.Scheme)
	}
	u.RawQuery = q.Encode()
	loc.BucketURL = u.String()
	return loc, nil
}

// String is the location as the user wrote it.
func (l Location) String() string { return l.display }

// ObjectURL is the URL of the object name at this location, for messages and for restore --from.
func (l Location) ObjectURL(name string) string {
	u, _ := url.Parse(l.display)
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + name
	return u.String()
}

// Open opens the bucket, with the prefix applied.
func (l Location) Open(ctx context.Context) (*blob.Bucket, error) {
	b, err := blob.OpenBucket(ctx, l.BucketURL)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l, err)
	}
	if l.Prefix != "" {
		b = blob.PrefixedBucket(b, l.Prefix)
	}
	return b, nil
}

// SplitObjectURL splits the URL of one object into its location and its name, the last path element.
func SplitObjectURL(s string) (Location, string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Location{}, "", err
	}
	i := strings.LastIndex(u.Path, "/")
	name := u.Path[i+1:]
	if i < 0 || name == "" {
		return Location{}, "", fmt.Errorf("%q names no object", s)
	}
	u.Path = u.Path[:i]
	u.RawPath = ""
	if u.Scheme == "file" && u.Path == "" {
		u.Path = "/"
	}
	loc, err := ParseLocation(u.String())
	if err != nil && u.Scheme == "file" && u.Path == "/" {
		return Location{}, "", fmt.Errorf("%q: objects directly in / are not supported", s)
	}
	return loc, name, err
}

// upload copies the local file path to the bucket as name, streaming, and checks that the object that landed
// has the file's size.
func upload(ctx context.Context, b *blob.Bucket, path, name string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	// Upload hands the file itself to the driver: S3's transfer manager reads each part from it, rather than
	// from a pipe it would have to buffer. A failed or cancelled upload publishes nothing.
	err = b.Upload(ctx, name, f, &blob.WriterOptions{
		ContentType: "application/gzip",
		// One part in flight, sized so that even a large dump stays within S3's 10,000 parts.
		BufferSize:     partSize(st.Size()),
		MaxConcurrency: 1,
	})
	if err != nil {
		return 0, err
	}
	n := st.Size()
	attrs, err := b.Attributes(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("uploaded, but reading it back: %w", err)
	}
	if attrs.Size != n {
		return 0, fmt.Errorf("uploaded %d bytes, but the object has %d", n, attrs.Size)
	}
	return n, nil
}

func partSize(size int64) int {
	const minPart, maxParts = 5 << 20, 9000
	if p := size / maxParts; p > minPart {
		return int(p + 1)
	}
	return minPart
}

func isNotFound(err error) bool {
	return gcerrors.Code(err) == gcerrors.NotFound || errors.Is(err, os.ErrNotExist)
}
