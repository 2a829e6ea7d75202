package backup

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestConfigEnvAndFlags(t *testing.T) {
	base := map[string]string{"BACKUP_ENGINE": "postgres", "BACKUP_LOCATION": "s3://b/p", "DATABASE_NAME": "app"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name  string
		env   map[string]string
		flags []string
		check func(c Config) bool
		err   string
	}{
		{name: "defaults when the environment says nothing else", env: base,
			check: func(c Config) bool {
				return c.Interval == 24*time.Hour && c.Dir == "/backups" && c.Host == "localhost" && c.Keep == 0 && c.port() == 5432 && c.user() == "postgres"
			}},
		{name: "BACKUP_INTERVAL is a Go duration", env: with("BACKUP_INTERVAL", "90m"),
			check: func(c Config) bool { return c.Interval == 90*time.Minute }},
		{name: "BACKUP_INTERVAL_SECONDS is read when BACKUP_INTERVAL is unset", env: with("BACKUP_INTERVAL_SECONDS", "5400"),
			check: func(c Config) bool { return c.Interval == 90*time.Minute }},
		{name: "BACKUP_INTERVAL wins over BACKUP_INTERVAL_SECONDS", env: with("BACKUP_INTERVAL", "1h", "BACKUP_INTERVAL_SECONDS", "60"),
			check: func(c Config) bool { return c.Interval == time.Hour }},
		{name: "a flag overrides the environment", env: with("DATABASE_PORT", "5433", "BACKUP_KEEP", "5"), flags: []string{"--port=6543", "--interval=2h", "--database=other"},
			check: func(c Config) bool {
				return c.Port == 6543 && c.Keep == 5 && c.Interval == 2*time.Hour && c.Database == "other"
			}},
		{name: "mysql defaults to port 3306 and root", env: with("BACKUP_ENGINE", "mysql", "DATABASE_NAME", ""),
			check: func(c Config) bool { return c.port() == 3306 && c.user() == "root" && c.baseName() == "all" }},
		{name: "an unparsable value names its variable", env: with("BACKUP_KEEP", "three"), err: `BACKUP_KEEP=three: "three" is not a whole number`},
		{name: "bad seconds name their variable", env: with("BACKUP_INTERVAL_SECONDS", "soon"), err: "BACKUP_INTERVAL_SECONDS"},
		{name: "an engine is required", env: with("BACKUP_ENGINE", ""), err: "BACKUP_ENGINE (--engine): required"},
		{name: "mongodb defaults to port 27017, no user, all databases", env: with("BACKUP_ENGINE", "mongodb", "DATABASE_NAME", ""),
			check: func(c Config) bool { return c.port() == 27017 && c.user() == "" && c.baseName() == "all" }},
		{name: "an unknown engine is named", env: with("BACKUP_ENGINE", "oracle"), err: `BACKUP_ENGINE (--engine): "oracle" is not postgres, mysql or mongodb`},
		{name: "a mongodb password needs a user", env: with("BACKUP_ENGINE", "mongodb", "DATABASE_PASSWORD", "pw"), err: "DATABASE_USER (--user): required for mongodb when a password is set"},
		{name: "verification is after each backup unless set", env: base,
			check: func(c Config) bool { p, on := c.verifyPeriod(); return on && p == 0 && len(c.VerifyQueries) == 0 }},
		{name: "BACKUP_VERIFY takes a period, or off", env: with("BACKUP_VERIFY", "24h"), flags: []string{},
			check: func(c Config) bool { p, on := c.verifyPeriod(); return on && p == 24*time.Hour }},
		{name: "BACKUP_VERIFY off", env: with("BACKUP_VERIFY", "off"),
			check: func(c Config) bool { _, on := c.verifyPeriod(); return !on }},
		{name: "a bad BACKUP_VERIFY names the values it takes", env: with("BACKUP_VERIFY", "daily"), err: `BACKUP_VERIFY (--verify): "daily" is not each, off, or a positive Go duration`},
		{name: "BACKUP_VERIFY_QUERIES are one per line, blank lines left out", env: with("BACKUP_VERIFY_QUERIES", "SELECT true\n\n  SELECT 1 = 1  \n"),
			check: func(c Config) bool { return len(c.VerifyQueries) == 2 && c.VerifyQueries[1] == "SELECT 1 = 1" }},
		{name: "remote retention is off unless set", env: base,
			check: func(c Config) bool { return c.RemoteKeep == 0 && c.RemoteMaxAge == 0 }},
		{name: "remote retention from the environment and flags", env: with("BACKUP_REMOTE_KEEP", "7", "BACKUP_REMOTE_MAX_AGE", "720h"), flags: []string{"--remote-keep=5"},
			check: func(c Config) bool { return c.RemoteKeep == 5 && c.RemoteMaxAge == 720*time.Hour }},
		{name: "a bad remote max age names its variable", env: with("BACKUP_REMOTE_MAX_AGE", "30d"), err: `BACKUP_REMOTE_MAX_AGE=30d: "30d" is not a duration`},
		{name: "a negative remote keep is refused", env: with("BACKUP_REMOTE_KEEP", "-1"), err: "BACKUP_REMOTE_KEEP (--remote-keep): must not be negative"},
		{name: "a negative remote max age is refused", env: with("BACKUP_REMOTE_MAX_AGE", "-1h"), err: "BACKUP_REMOTE_MAX_AGE (--remote-max-age): must not be negative"},
		{name: "a password file from the environment", env: with("DATABASE_PASSWORD_FILE", "/secrets/database-password"),
			check: func(c Config) bool { return c.PasswordFile == "/secrets/database-password" && c.Password == "" }},
		{name: "a password and a password file are one too many", env: with("DATABASE_PASSWORD", "pw"), flags: []string{"--password-file=/secrets/pw"},
			err: "DATABASE_PASSWORD (--password) and DATABASE_PASSWORD_FILE (--password-file) are both set"},
		{name: "postgres needs a database", env: with("DATABASE_NAME", ""), err: "DATABASE_NAME (--database): required for postgres"},
		{name: "a location is required", env: with("BACKUP_LOCATION", ""), err: "BACKUP_LOCATION (--location): required"},
		{name: "an unsupported scheme is named", env: with("BACKUP_LOCATION", "ftp://x/y"), err: `scheme "ftp" is not supported`},
		{name: "a negative keep is refused", env: with("BACKUP_KEEP", "-1"), err: "BACKUP_KEEP (--keep)"},
		{name: "a database name that is not a file name is refused", env: with("DATABASE_NAME", "../etc"), err: "cannot be part of a file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			err := c.ApplyEnv(lookupIn(tt.env))
			if err == nil {
				fs := flag.NewFlagSet("test", flag.ContinueOnError)
				c.BindFlags(fs)
				if err := fs.Parse(tt.flags); err != nil {
					t.Fatal(err)
				}
				err = c.Validate()
			}
			if wantErr(t, err, tt.err) {
				return
			}
			if !tt.check(c) {
				t.Fatalf("unexpected configuration %+v", c)
			}
		})
	}
}

func TestHelpHidesThePassword(t *testing.T) {
	c := DefaultConfig()
	if err := c.ApplyEnv(lookupIn(map[string]string{"DATABASE_PASSWORD": "hunter2"})); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	c.BindFlags(fs)
	fs.PrintDefaults()
	if strings.Contains(out.String(), "hunter2") {
		t.Fatalf("--help shows the password:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "$DATABASE_PASSWORD") {
		t.Fatalf("--help does not name DATABASE_PASSWORD:\n%s", out.String())
	}
}

func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "database-password")
	c := DefaultConfig()
	c.PasswordFile = path
	for _, tt := range []struct{ content, want string }{
		{"s3cret\n", "s3cret"},   // as kubectl create secret --from-file leaves it
		{"s3cret\r\n", "s3cret"}, // as an editor on Windows leaves it
		{"rotated", "rotated"},   // read again each time: a rotated Secret is picked up
		{" spaces kept \n", " spaces kept "},
	} {
		if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := c.password(); err != nil || got != tt.want {
			t.Fatalf("file %q: password %q, %v; want %q", tt.content, got, err, tt.want)
		}
	}
	c.PasswordFile = filepath.Join(dir, "missing")
	if _, err := c.password(); err == nil || !strings.Contains(err.Error(), "DATABASE_PASSWORD_FILE (--password-file): open "+c.PasswordFile+": no such file") {
		t.Fatalf("a missing file: %v", err)
	}
}

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in, endpoint  string
		bucket, prefx string
		err           string
	}{
		{in: "s3://my-bucket/my-backups", bucket: "my-bucket", prefx: "my-backups/"},
		{in: "s3://my-bucket/a/b/", bucket: "my-bucket", prefx: "a/b/"},
		{in: "s3://my-bucket", bucket: "my-bucket"},
		{in: "s3://my-bucket/p?region=eu-west-1", bucket: "my-bucket", prefx: "p/"},
		{in: "file:///var/backups", bucket: "/var/backups"},
		{in: "s3:///nobucket", err: "names no bucket"},
		{in: "s3://b/p?prefix=x", err: "not as ?prefix="},
		{in: "gs://b/p", err: `scheme "gs" is not supported`},
		{in: "my-bucket/p", err: "is not a URL"},
		{in: "file:///", err: "names no directory"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Setenv("AWS_ENDPOINT_URL", tt.endpoint)
			t.Setenv("AWS_ENDPOINT_URL_S3", "")
			loc, err := ParseLocation(tt.in)
			if wantErr(t, err, tt.err) {
				return
			}
			if loc.Bucket != tt.bucket || loc.Prefix != tt.prefx {
				t.Fatalf("got %q prefix %q, want %q prefix %q", loc.Bucket, loc.Prefix, tt.bucket, tt.prefx)
			}
		})
	}
}

func TestResolveFrom(t *testing.T) {
	tests := []struct {
		location, from string
		bucket, prefx  string
		name, err      string
	}{
		{location: "s3://b/p", from: "latest", bucket: "b", prefx: "p/"},
		{location: "s3://b/p", from: "db-20260102T030405Z.sql.gz", bucket: "b", prefx: "p/", name: "db-20260102T030405Z.sql.gz"},
		{location: "", from: "s3://other/x/y/db-20260102T030405Z.sql.gz", bucket: "other", prefx: "x/y/", name: "db-20260102T030405Z.sql.gz"},
		{location: "s3://b/p", from: "s3://other/db.sql.gz", bucket: "other", name: "db.sql.gz"},
		{location: "", from: "file:///srv/backups/db.sql.gz", bucket: "/srv/backups", name: "db.sql.gz"},
		{location: "", from: "file:///db.sql.gz", err: "objects directly in / are not supported"},
		{location: "", from: "latest", err: "BACKUP_LOCATION (--location) is not set"},
		{location: "s3://b/p", from: "", err: "required"},
		{location: "s3://b/p", from: "sub/db.sql.gz", err: "give a URL"},
		{location: "", from: "s3://b/", err: "names no object"},
	}
	for _, tt := range tests {
		t.Run(tt.location+" "+tt.from, func(t *testing.T) {
			t.Setenv("AWS_ENDPOINT_URL", "")
			t.Setenv("AWS_ENDPOINT_URL_S3", "")
			loc, name, err := resolveFrom(tt.location, tt.from)
			if wantErr(t, err, tt.err) {
				return
			}
			if loc.Bucket != tt.bucket || loc.Prefix != tt.prefx || name != tt.name {
				t.Fatalf("got %q prefix %q name %q, want %q prefix %q name %q", loc.Bucket, loc.Prefix, name, tt.bucket, tt.prefx, tt.name)
			}
		})
	}
}

// TestTheSidecarRefusesToBackUpIntoItsOwnDirectory: a file:// location at or under BACKUP_DIR would put the
// backups where the pod's deletion takes them; a restore from there is allowed.
func TestTheSidecarRefusesToBackUpIntoItsOwnDirectory(t *testing.T) {
	for _, loc := range []string{"file:///backups", "file:///backups/", "file:///backups/db"} {
		cfg := DefaultConfig()
		cfg.Engine, cfg.Database, cfg.Location = "postgres", "app", loc
		if _, err := NewRunner(cfg, logr.Discard(), nil); err == nil || !strings.Contains(err.Error(), "inside the sidecar's own directory /backups") {
			t.Errorf("NewRunner with BACKUP_LOCATION=%s: %v", loc, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate (as a restore reads it) with BACKUP_LOCATION=%s: %v", loc, err)
		}
	}
	cfg := DefaultConfig()
	cfg.Engine, cfg.Database, cfg.Location = "postgres", "app", "file:///backups-elsewhere"
	if _, err := NewRunner(cfg, logr.Discard(), nil); err != nil {
		t.Errorf("NewRunner with a location beside BACKUP_DIR: %v", err)
	}
}
