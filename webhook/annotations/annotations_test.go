package annotations_test

import (
	"testing"

	"github.com/tandem-dev/tandem/webhook/annotations"
)

func TestValidators(t *testing.T) {
	tests := []struct {
		key, value string
		ok         bool
	}{
		{annotations.Backup, "postgres", true},
		{annotations.Backup, "true", true},
		{annotations.Backup, "", false},
		{annotations.Backup, "Postgres", false},
		{annotations.BackupLocation, "s3://my-bucket/my-backups", true},
		{annotations.BackupLocation, "s3://my-bucket", true},
		{annotations.BackupLocation, "s3://my-bucket/p?region=eu-west-1&endpoint=http://minio:9000", true},
		{annotations.BackupLocation, "gs://bucket/prefix", false},
		{annotations.BackupLocation, "azblob://container/prefix", false},
		{annotations.BackupLocation, "file:///var/backups", true},
		{annotations.BackupLocation, "file://relative/path", false},
		{annotations.BackupLocation, "my-bucket/backups", false},
		{annotations.BackupLocation, "http://my-bucket/backups", false},
		{annotations.BackupLocation, "s3:///no-bucket", false},
		{annotations.BackupLocation, "s3://Bad_Bucket/x", false},
		{annotations.BackupLocation, "s3://key:secret@bucket/x", false},
		{annotations.BackupInterval, "24h", true},
		{annotations.BackupInterval, "1s", true},
		{annotations.BackupInterval, "500ms", false},
		{annotations.BackupInterval, "-1h", false},
		{annotations.BackupInterval, "1 day", false},
		{annotations.DatabaseSecret, "db-secrets", true},
		{annotations.DatabaseSecret, "db.secrets", true},
		{annotations.DatabaseSecret, "DB_SECRETS", false},
		{annotations.DatabaseSecretKey, "database-password", true},
		{annotations.DatabaseSecretKey, "pass/word", false},
		{annotations.Database, "orders", true},
		{annotations.Database, "my db", false},
		{annotations.Database, "", false},
		{annotations.BackupCredentials, "s3-creds", true},
		{annotations.BackupCredentials, "s3 creds", false},
		{annotations.Defaults, "false", true},
		{annotations.Defaults, "no", false},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			a, ok := annotations.Lookup(tt.key)
			if !ok || a.Validate == nil {
				t.Fatalf("%s has no validator", tt.key)
			}
			err := a.Validate(tt.value)
			if (err == nil) != tt.ok {
				t.Errorf("Validate(%q) = %v, want ok=%v", tt.value, err, tt.ok)
			}
		})
	}
}

func TestEveryUserKeyIsDocumentedAndChecked(t *testing.T) {
	for _, a := range annotations.All {
		if a.Description == "" {
			t.Errorf("%s has no description", a.Key)
		}
		if !a.SetByTandem && (a.Validate == nil || a.Default == "") {
			t.Errorf("%s is set by users but has no validator or no documented default", a.Key)
		}
	}
}
