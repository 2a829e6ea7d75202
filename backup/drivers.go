package backup

// The object stores BACKUP_LOCATION can name.
import (
	_ "gocloud.dev/blob/fileblob" // file:///dir
	_ "gocloud.dev/blob/s3blob"   // s3://bucket/prefix, AWS S3 and S3-compatible stores
)
