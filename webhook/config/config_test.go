package config_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/tandem-dev/tandem/webhook/config"
)

func TestBuiltInConfiguration(t *testing.T) {
	c := config.Default()
	if c.DefaultProfile != "postgres" {
		t.Errorf("default profile = %q", c.DefaultProfile)
	}
	for _, name := range []string{"postgres", "mysql", "mongodb"} {
		p := c.Profiles[name]
		if p == nil {
			t.Fatalf("no built-in %s profile", name)
		}
		sc := p.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != "RuntimeDefault" {
			t.Errorf("profile %s's security context does not meet Pod Security restricted: %+v", name, sc)
		}
	}
	if *c.Jobs.TTLSecondsAfterFinished != 100 || *c.Jobs.BackoffLimit != 3 || c.Jobs.ActiveDeadlineSeconds != nil || *c.Jobs.RestartPolicy != "Never" {
		t.Errorf("jobs = %+v", c.Jobs)
	}
	if *c.CronJobs.SuccessfulJobsHistoryLimit != 1 || *c.CronJobs.FailedJobsHistoryLimit != 1 || c.CronJobs.ConcurrencyPolicy != nil || c.CronJobs.StartingDeadlineSeconds != nil {
		t.Errorf("cronJobs = %+v", c.CronJobs)
	}
}

func TestFileIsLaidOverTheBuiltIn(t *testing.T) {
	c, err := config.Parse([]byte(`
profiles:
  mysql: null            # removes the built-in profile
  postgres:              # replaces the built-in profile whole
    image: registry.example.com/pg-backup:2
jobs:
  backoffLimit: 5
  ttlSecondsAfterFinished: null
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Profiles["mysql"]; ok {
		t.Error("mysql: null did not remove the profile")
	}
	if _, ok := c.Profiles["mongodb"]; !ok {
		t.Error("a profile the file does not name was lost")
	}
	pg := c.Profiles["postgres"]
	if pg.Image != "registry.example.com/pg-backup:2" || pg.Command != nil || pg.ContainerName != config.DefaultContainerName || pg.Interval != config.DefaultInterval {
		t.Errorf("postgres = %+v, want the file's profile with tandem's defaults filled in", pg)
	}
	if *c.Jobs.BackoffLimit != 5 || c.Jobs.TTLSecondsAfterFinished != nil || *c.Jobs.RestartPolicy != "Never" {
		t.Errorf("jobs = %+v: want the file's value, null off, and the built-in kept", c.Jobs)
	}
	if *c.CronJobs.SuccessfulJobsHistoryLimit != 1 {
		t.Error("built-in cronJobs lost")
	}
}

func TestBadConfigurationNamesTheKey(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top-level key", "profile: {}", []string{`unknown field "profile"`}},
		{"unknown profile key", "profiles: {pg: {image: x, imagee: y}}", []string{`unknown field "imagee"`}},
		{"unknown key in a Kubernetes type", "profiles: {pg: {image: x, securityContext: {runAsNonRot: true}}}", []string{`unknown field "runAsNonRot"`}},
		{"wrong type", "jobs: {backoffLimit: three}", []string{"backoffLimit"}},
		{"bad interval", "profiles: {pg: {image: x, interval: daily}}", []string{"profiles[pg].interval", "daily"}},
		{"bad location", "profiles: {pg: {image: x, backupLocation: bucket}}", []string{"profiles[pg].backupLocation"}},
		{"reserved env", "profiles: {pg: {image: x, env: [{name: BACKUP_LOCATION, value: y}]}}", []string{"profiles[pg].env[0].name", "set by tandem"}},
		{"metrics address beside metricsPort", "profiles: {pg: {image: x, metricsPort: 9880, env: [{name: BACKUP_METRICS_BIND_ADDRESS, value: \":1\"}]}}", []string{"profiles[pg].env[0].name", "metricsPort: set one"}},
		{"metricsPort out of range", "profiles: {pg: {image: x, metricsPort: 70000}}", []string{"profiles[pg].metricsPort"}},
		{"tandem's own volume", "profiles: {pg: {image: x, volumes: [{name: backup-data, emptyDir: {}}]}}", []string{"profiles[pg].volumes[0].name"}},
		{"mount of an unknown volume", "profiles: {pg: {image: x, volumeMounts: [{name: cache, mountPath: /c}]}}", []string{"profiles[pg].volumeMounts[0].name: Not found"}},
		{"mount over /backups", "profiles: {pg: {image: x, volumes: [{name: c, emptyDir: {}}], volumeMounts: [{name: c, mountPath: /backups}]}}", []string{"profiles[pg].volumeMounts[0].mountPath"}},
		{"request above limit", "profiles: {pg: {image: x, resources: {requests: {memory: 1Gi}, limits: {memory: 1Mi}}}}", []string{"profiles[pg].resources.requests[memory]"}},
		{"guaranteedResources without cpu", "profiles: {pg: {image: x, guaranteedResources: {memory: 1Gi}}}", []string{"profiles[pg].guaranteedResources[cpu]: Required"}},
		{"guaranteedResources of zero", "profiles: {pg: {image: x, guaranteedResources: {cpu: 0, memory: 1Gi}}}", []string{"profiles[pg].guaranteedResources[cpu]", "greater than 0"}},
		{"bad profile name", "profiles: {Postgres_DB: {image: x}}", []string{"profiles[Postgres_DB]"}},
		{"default profile unknown", "defaultProfile: oracle", []string{"defaultProfile", "oracle"}},
		{"negative backoffLimit", "jobs: {backoffLimit: -1}", []string{"jobs.backoffLimit"}},
		{"restartPolicy Always", "jobs: {restartPolicy: Always}", []string{"jobs.restartPolicy"}},
		{"bad concurrencyPolicy", "cronJobs: {concurrencyPolicy: Sometimes}", []string{"cronJobs.concurrencyPolicy"}},
		{"every problem at once", "profiles: {a: {containerName: Backup}, b: {image: x, interval: 1ns}}", []string{"profiles[a].containerName", "profiles[b].interval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestStoreKeepsTheLastGoodConfiguration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("jobs: {backoffLimit: 4}")
	s, err := config.NewStore(path)
	if err != nil {
		t.Fatal(err)
	}
	write("jobs: {backoffLimit: -4}")
	if changed, err := s.Reload(); changed || err == nil || !strings.Contains(err.Error(), "jobs.backoffLimit") {
		t.Errorf("bad file: changed %v, err %v", changed, err)
	}
	if *s.Get().Jobs.BackoffLimit != 4 {
		t.Error("a bad file replaced the configuration in force")
	}
	write("jobs: {backoffLimit: 2}")
	if changed, err := s.Reload(); !changed || err != nil || *s.Get().Jobs.BackoffLimit != 2 {
		t.Errorf("good file: changed %v, err %v, backoffLimit %d", changed, err, *s.Get().Jobs.BackoffLimit)
	}
}

func TestNewStoreRefusesABadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("profiles: {pg: {imagee: x}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.NewStore(path); err == nil || !strings.Contains(err.Error(), `unknown field "imagee"`) {
		t.Errorf("err = %v", err)
	}
}

// TestWatchFollowsAConfigMapUpdate swaps the ..data symlink as the kubelet does when a ConfigMap changes.
func TestWatchFollowsAConfigMapUpdate(t *testing.T) {
	dir := t.TempDir()
	for i, content := range []string{"jobs: {backoffLimit: 4}", "jobs: {backoffLimit: 7}"} {
		d := filepath.Join(dir, "..v"+string(rune('1'+i)))
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "config.yaml"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	must(t, os.Symlink("..data/config.yaml", filepath.Join(dir, "config.yaml")))
	s, err := config.NewStore(filepath.Join(dir, "config.yaml"))
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Watch(ctx, logr.Discard()) }()
	time.Sleep(100 * time.Millisecond) // let the watch start

	must(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	deadline := time.Now().Add(config.PollInterval + 5*time.Second)
	for *s.Get().Jobs.BackoffLimit != 7 {
		if time.Now().After(deadline) {
			t.Fatal("the new ConfigMap content was never loaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestBackupImage: profiles without an image run tandem's backup image, the built-in ones included, and a file's
// backupImage reaches them; a profile with its own image keeps it.
func TestBackupImage(t *testing.T) {
	builtIn := config.Default()
	for _, name := range []string{"postgres", "mysql", "mongodb"} {
		p := builtIn.Profiles[name]
		if p.Image != config.DefaultBackupImage || !slices.Equal(p.Command, []string{"tandem", "backup"}) {
			t.Errorf("built-in %s runs %s %v, want %s tandem backup", name, p.Image, p.Command, config.DefaultBackupImage)
		}
	}
	c, err := config.Parse([]byte("backupImage: registry.example/tandem-backup:v9\nprofiles: {own: {image: registry.example/pg:16}, bare: {}}"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"postgres": "registry.example/tandem-backup:v9", "bare": "registry.example/tandem-backup:v9", "own": "registry.example/pg:16"} {
		if got := c.Profiles[name].Image; got != want {
			t.Errorf("profile %s: image %q, want %q", name, got, want)
		}
	}
}
