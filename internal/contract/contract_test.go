package contract_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tandem-dev/tandem/backup"
	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/podinject"
)

// TestWebhookAdmitsWhatTheSidecarStartsWith feeds the same locations, intervals, users and passwords to both sides of the
// contract: the pod injector, as the webhook and tandem inject call it, and the sidecar's configuration, from
// the environment the injector gives it. A pod the webhook admits must give a sidecar that starts; a value the
// webhook refuses must be one the sidecar would refuse too.
func TestWebhookAdmitsWhatTheSidecarStartsWith(t *testing.T) {
	locations := []string{
		"s3://my-bucket/my-backups",
		"s3://my-bucket",
		"s3://my-bucket/a/b/",
		"s3://my-bucket/x?region=eu-west-1",
		"s3://my-bucket/x?endpoint=http://minio.storage:9000",
		"s3://my-bucket/x?endpoint=minio:9000",
		"s3://my-bucket/x?endpoint=https://",
		"s3://my-bucket/x?use_path_style=true",
		"s3://my-bucket/x?use_path_style=false",
		"s3://my-bucket/x?use_path_style=maybe",
		"s3://my-bucket/x?ssetype=AES256",
		"s3://my-bucket/x?ssetype=aws:kms&kmskeyid=k1",
		"s3://my-bucket/x?kmskeyid=k1",
		"s3://my-bucket/x?ssetype=rot13",
		"s3://my-bucket/x?storage_class=GLACIER",
		"s3://my-bucket/x?region=a&region=b",
		"s3://my-bucket/x?prefix=y",
		"s3://My_Bucket/x",
		"s3://user:secret@my-bucket/x",
		"s3://my-bucket/x#frag",
		"s3:///x",
		"s3:my-bucket",
		"file:///backups",
		"file:///backups/",
		"file://localhost/backups",
		"file:///",
		"file://",
		"file://nas/backups",
		"file:///backups?sync=true",
		"gs://my-bucket/x",
		"azblob://container/x",
		"https://my-bucket.s3.amazonaws.com/x",
		"my-bucket/x",
		"",
	}
	intervals := []string{"24h", "30m", "1s", "1500ms", "999ms", "0s", "-1h", "1d", "soon"}

	cfg := config.Default()
	inj := podinject.New(cfg)
	check := func(t *testing.T, profile string, ann map[string]string) {
		t.Helper()
		ann[annotations.Backup] = profile
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: ann},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db"}}}}
		plan, err := inj.Plan(&pod.ObjectMeta, &pod.Spec)
		admitted := err == nil && plan.Container != nil

		env := map[string]string{}
		if admitted {
			for _, e := range plan.Container.Env {
				switch {
				case e.ValueFrom == nil:
					env[e.Name] = e.Value
				case e.ValueFrom.SecretKeyRef != nil:
					env[e.Name] = "from-the-secret"
				}
			}
		} else {
			// What a hand-written pod would give the sidecar for the same annotations and profile.
			p, _, _ := cfg.Profile(profile)
			for _, e := range p.Env {
				env[e.Name] = e.Value
			}
			set := func(name, key, fallback string) {
				if v, ok := ann[key]; ok {
					env[name] = v
				} else if fallback != "" {
					env[name] = fallback
				}
			}
			set("BACKUP_LOCATION", annotations.BackupLocation, p.BackupLocation)
			set("BACKUP_INTERVAL", annotations.BackupInterval, p.Interval)
			set("DATABASE_NAME", annotations.Database, p.Database)
			set("DATABASE_USER", annotations.DatabaseUser, "")
			if ann[annotations.DatabaseSecret] != "" {
				env["DATABASE_PASSWORD"] = "from-the-secret"
			}
		}
		sidecar := backup.DefaultConfig()
		sidecarErr := sidecar.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if sidecarErr == nil {
			sidecarErr = sidecar.ValidateForBackup()
		}
		switch {
		case admitted && sidecarErr != nil:
			t.Errorf("the webhook admits %v, but the sidecar it injects would not start: %v", ann, sidecarErr)
		case !admitted && sidecarErr == nil:
			t.Errorf("the webhook refuses %v (%v), but the sidecar would start with it", ann, err)
		}
	}
	const loc = "s3://my-bucket/x"
	for _, tc := range []struct {
		name, profile string
		ann           map[string]string
	}{
		{"mongodb without a password needs no user", "mongodb", map[string]string{}},
		{"mongodb with a password needs its user", "mongodb", map[string]string{annotations.DatabaseSecret: "db"}},
		{"mongodb with a password and its user", "mongodb", map[string]string{annotations.DatabaseSecret: "db", annotations.DatabaseUser: "backup"}},
		{"postgres with the profile's database", "postgres", map[string]string{}},
		{"postgres with the pod's user", "postgres", map[string]string{annotations.DatabaseUser: "app", annotations.DatabaseSecret: "db"}},
		{"mysql dumps every database", "mysql", map[string]string{annotations.DatabaseSecret: "db"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.ann[annotations.BackupLocation] = loc
			check(t, tc.profile, tc.ann)
		})
	}
	for _, l := range locations {
		t.Run("location "+l, func(t *testing.T) {
			check(t, "postgres", map[string]string{annotations.BackupLocation: l, annotations.Database: "app"})
		})
	}
	for _, iv := range intervals {
		t.Run("interval "+iv, func(t *testing.T) {
			check(t, "postgres", map[string]string{annotations.BackupLocation: loc, annotations.BackupInterval: iv})
		})
	}
}
