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

// TestWebhookAdmitsWhatTheSidecarStartsWith feeds the same locations and intervals to both sides of the
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

	inj := podinject.New(config.Default())
	check := func(t *testing.T, ann map[string]string) {
		t.Helper()
		ann[annotations.Backup] = "postgres"
		ann[annotations.Database] = "app"
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: ann},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "postgres"}}}}
		plan, err := inj.Plan(&pod.ObjectMeta, &pod.Spec)
		admitted := err == nil && plan.Container != nil

		env := map[string]string{}
		if admitted {
			for _, e := range plan.Container.Env {
				if e.ValueFrom == nil {
					env[e.Name] = e.Value
				}
			}
		} else {
			// What a hand-written pod would give the sidecar for the same annotations.
			env["BACKUP_ENGINE"] = "postgres"
			env["DATABASE_NAME"] = "app"
			env["BACKUP_LOCATION"] = ann[annotations.BackupLocation]
			if v, ok := ann[annotations.BackupInterval]; ok {
				env["BACKUP_INTERVAL"] = v
			}
		}
		cfg := backup.DefaultConfig()
		sidecarErr := cfg.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if sidecarErr == nil {
			sidecarErr = cfg.Validate()
		}
		switch {
		case admitted && sidecarErr != nil:
			t.Errorf("the webhook admits %v, but the sidecar it injects would not start: %v", ann, sidecarErr)
		case !admitted && sidecarErr == nil:
			t.Errorf("the webhook refuses %v (%v), but the sidecar would start with it", ann, err)
		}
	}
	for _, loc := range locations {
		t.Run("location "+loc, func(t *testing.T) {
			check(t, map[string]string{annotations.BackupLocation: loc})
		})
	}
	for _, iv := range intervals {
		t.Run("interval "+iv, func(t *testing.T) {
			check(t, map[string]string{annotations.BackupLocation: "s3://my-bucket/x", annotations.BackupInterval: iv})
		})
	}
}
