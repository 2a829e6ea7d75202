package contract

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Schemes are the URL schemes of the backup locations tandem uploads to.
var Schemes = []string{"s3", "file"}

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

// ParseLocation reads a backup location, a bucket URL: s3://bucket/prefix[?region=R&endpoint=URL&use_path_style=true|false&ssetype=T&kmskeyid=K]
// or file:///directory. Each mistake is an error that names it.
func ParseLocation(s string) (Location, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Location{}, fmt.Errorf("%q is not a URL: %s", s, locationForm)
	}
	if u.User != nil {
		return Location{}, fmt.Errorf("%q carries credentials in the URL: put them in a Secret (tandem.dev/backup-credentials) instead", s)
	}
	if u.Fragment != "" || strings.HasSuffix(s, "#") {
		return Location{}, fmt.Errorf("%q has a fragment (#...): %s", s, locationForm)
	}
	loc := Location{Scheme: u.Scheme, display: strings.TrimSuffix(s, "/")}
	q := u.Query()
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return Location{}, fmt.Errorf("%q names no bucket: want s3://bucket/prefix", s)
		}
		if errs := validation.IsDNS1123Subdomain(u.Host); len(errs) > 0 {
			return Location{}, fmt.Errorf("%q: %q is not a valid bucket name: %s", s, u.Host, strings.Join(errs, "; "))
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
		return Location{}, fmt.Errorf("%q is not a URL: %s", s, locationForm)
	default:
		return Location{}, fmt.Errorf("%q: scheme %q is not supported: %s", s, u.Scheme, locationForm)
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

// locationForm is what a location looks like, for the messages of ParseLocation.
const locationForm = "use s3://bucket/prefix (AWS S3 and S3-compatible stores; Google Cloud Storage through its S3 interoperability) or file:///path/to/dir"

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

// CheckOutside refuses a file:// location at or under dir, the sidecar's BACKUP_DIR: that directory (the
// backup-data emptyDir, BackupMountPath in a pod) holds the sidecar's local copies and verification's throwaway
// server, and is deleted with the pod, backups and all.
func CheckOutside(l Location, dir string) error {
	if l.Scheme != "file" || dir == "" {
		return nil
	}
	p, d := path.Clean(l.Bucket), path.Clean(dir)
	if p == d || strings.HasPrefix(p, d+"/") {
		return fmt.Errorf("%s is inside the sidecar's own directory %s, which holds its local copies and verification's throwaway server "+
			"and is deleted with the pod: back up to a volume mounted elsewhere, or to s3://", l, dir)
	}
	return nil
}
