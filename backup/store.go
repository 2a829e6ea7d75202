package backup

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/tandem-dev/tandem/backup/objstore"
	"github.com/tandem-dev/tandem/internal/contract"
)

// Location is a parsed BACKUP_LOCATION: the bucket and the prefix of the keys inside it.
type Location = contract.Location

// ParseLocation reads a backup location: s3://bucket/prefix (with ?region=, ?endpoint=, ?use_path_style=,
// ?ssetype=, ?kmskeyid=) or file:///directory. (gs:// and azblob:// are not supported: Google Cloud Storage is
// reachable through s3:// and its S3-compatible XML API with HMAC keys.)
//
// For s3://, an endpoint set in AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3 (an S3-compatible store such as MinIO
// or Ceph) turns on path-style requests, which those stores expect, unless the URL sets use_path_style. For
// file://, objects are written through a temporary file next to the final one (not in /tmp, which is usually
// another volume) and renamed.
func ParseLocation(s string) (Location, error) { return contract.ParseLocation(s) }

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
		return Location{}, "", fmt.Errorf("%q: objects directly in / are not supported", s)
	}
	loc, err := ParseLocation(u.String())
	return loc, name, err
}

// upload copies the local file path to the bucket as name, streaming, and checks that the object that landed
// has the file's size. A failed or cancelled upload publishes nothing.
func upload(ctx context.Context, b objstore.Bucket, path, name string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	n, err := objstore.Put(ctx, b, name, f, objstore.CreateOptions{ContentType: contentType(name), SizeHint: st.Size()})
	if err != nil {
		return 0, err
	}
	if n != st.Size() {
		return 0, fmt.Errorf("uploaded %d bytes of the %d in %s", n, st.Size(), path)
	}
	return n, nil
}

// contentType is the media type of the object name: a backup's codec's, or JSON for a manifest.
func contentType(name string) string {
	if strings.HasSuffix(name, manifestSuffix) {
		return "application/json"
	}
	if n, ok := parseBackupName(name); ok {
		return n.codec.ContentType
	}
	return ""
}

// errNotStored is a backup that could not be stored at the location.
var errNotStored = errors.New("the backup could not be stored")

func isNotFound(err error) bool {
	return errors.Is(err, objstore.ErrNotFound) || errors.Is(err, os.ErrNotExist)
}
