package podinject_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/podinject"
)

// dbPod is the database Pod of the design: one container, a data volume, and the annotations given.
func dbPod(ann map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "db-pod", Annotations: ann},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "db-container", Image: "my-database-image"}},
			Volumes:    []corev1.Volume{{Name: "db-data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

// withSidecar gives the pod a container of the sidecar's name, as tandem's injection leaves it.
func withSidecar(pod *corev1.Pod) *corev1.Pod {
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "tandem-backup", Image: "tandem-backup"})
	return pod
}

func optIn(extra ...string) map[string]string {
	ann := map[string]string{
		annotations.Backup:         "postgres",
		annotations.BackupLocation: "s3://my-bucket/my-backups",
		annotations.DatabaseSecret: "db-secrets",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "<delete>" {
			delete(ann, extra[i])
			continue
		}
		ann[extra[i]] = extra[i+1]
	}
	return ann
}

func envOf(c *corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

// testConfig is the built-in configuration plus a profile that injects a regular container and one with a
// default location.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(`
profiles:
  regular:
    image: example.com/backup:1
    nativeSidecar: false
  located:
    image: example.com/backup:1
    backupLocation: s3://platform-bucket/backups
    interval: 6h
    database: app
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name    string
		pod     *corev1.Pod
		outcome podinject.Outcome
		refused []string // substrings of the refusal
		check   func(t *testing.T, p *podinject.Plan)
	}{
		{name: "pod without annotations is skipped", pod: dbPod(nil), outcome: podinject.Skipped},
		{name: `"false" opts out`, pod: dbPod(optIn(annotations.Backup, "false")), outcome: podinject.Skipped},
		{name: "pod already injected is left alone", pod: withSidecar(dbPod(optIn(annotations.Injected, "postgres"))), outcome: podinject.Skipped,
			check: func(t *testing.T, p *podinject.Plan) {
				if p.Container != nil || len(p.Volumes) > 0 || len(p.Warnings) > 0 {
					t.Errorf("plan adds to, or warns about, an injected pod: %+v", p)
				}
			}},
		{name: "status annotation without its sidecar is injected, with a warning", pod: dbPod(optIn(annotations.Injected, "postgres")), outcome: podinject.Injected,
			check: func(t *testing.T, p *podinject.Plan) {
				if p.Container == nil || p.Container.Name != "tandem-backup" {
					t.Errorf("no sidecar planned for a pod whose %s was copied: %+v", annotations.Injected, p)
				}
				if !slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, "no tandem-backup container") }) {
					t.Errorf("warnings %q do not say the sidecar was missing", p.Warnings)
				}
			}},
		{name: "example pod gets sidecar, backup volume and secret volume", pod: dbPod(optIn()), outcome: podinject.Injected,
			check: func(t *testing.T, p *podinject.Plan) {
				c := p.Container
				if c == nil || c.Name != config.DefaultContainerName || !p.Native {
					t.Fatalf("container = %+v, native %v", c, p.Native)
				}
				env := envOf(c)
				if env["BACKUP_LOCATION"].Value != "s3://my-bucket/my-backups" || env["BACKUP_INTERVAL"].Value != "24h" ||
					env["BACKUP_INTERVAL_SECONDS"].Value != "86400" || env["DATABASE_NAME"].Value != "postgres" {
					t.Errorf("env = %+v", c.Env)
				}
				ref := env["DATABASE_PASSWORD"].ValueFrom.SecretKeyRef
				if ref.Name != "db-secrets" || ref.Key != "database-password" || ref.Optional == nil || !*ref.Optional {
					t.Errorf("DATABASE_PASSWORD from %+v", ref)
				}
				names := []string{}
				for _, v := range p.Volumes {
					names = append(names, v.Name)
				}
				if strings.Join(names, ",") != "backup-data,tandem-database-secret,tandem-tmp" {
					t.Errorf("volumes = %v", names)
				}
				mounts := map[string]corev1.VolumeMount{}
				for _, m := range c.VolumeMounts {
					mounts[m.Name] = m
				}
				if mounts["backup-data"].MountPath != "/backups" || mounts["tandem-database-secret"].MountPath != "/secrets" || !mounts["tandem-database-secret"].ReadOnly {
					t.Errorf("mounts = %+v", c.VolumeMounts)
				}
				if len(p.Warnings) != 0 {
					t.Errorf("warnings = %q", p.Warnings)
				}
			}},
		{name: `"true" selects the default profile`, pod: dbPod(optIn(annotations.Backup, "true")), outcome: podinject.Injected,
			check: func(t *testing.T, p *podinject.Plan) {
				if p.Profile != "postgres" {
					t.Errorf("profile = %q, want the default, postgres", p.Profile)
				}
			}},
		{name: "unknown profile is refused with the known ones", pod: dbPod(optIn(annotations.Backup, "postgress")), outcome: podinject.Refused,
			refused: []string{`unknown profile "postgress"`, "located, mongodb, mysql, postgres, regular"}},
		{name: "missing location without profile default is refused", pod: dbPod(optIn(annotations.BackupLocation, "<delete>")), outcome: podinject.Refused,
			refused: []string{"annotation tandem.dev/backup-location is required"}},
		{name: "profile default location, interval and database apply", pod: dbPod(optIn(annotations.Backup, "located", annotations.BackupLocation, "<delete>")),
			outcome: podinject.Injected, check: func(t *testing.T, p *podinject.Plan) {
				env := envOf(p.Container)
				if env["BACKUP_LOCATION"].Value != "s3://platform-bucket/backups" || env["BACKUP_INTERVAL_SECONDS"].Value != "21600" || env["DATABASE_NAME"].Value != "app" {
					t.Errorf("env = %+v", p.Container.Env)
				}
			}},
		{name: "annotations override the profile's interval and database", pod: dbPod(optIn(annotations.BackupInterval, "90m", annotations.Database, "orders")),
			outcome: podinject.Injected, check: func(t *testing.T, p *podinject.Plan) {
				env := envOf(p.Container)
				if env["BACKUP_INTERVAL"].Value != "90m" || env["BACKUP_INTERVAL_SECONDS"].Value != "5400" || env["DATABASE_NAME"].Value != "orders" {
					t.Errorf("env = %+v", p.Container.Env)
				}
			}},
		{name: "malformed location is refused", pod: dbPod(optIn(annotations.BackupLocation, "my-bucket/backups")), outcome: podinject.Refused,
			refused: []string{"annotation tandem.dev/backup-location", "s3://bucket/prefix"}},
		{name: "a location in the sidecar's own volume is refused", pod: dbPod(optIn(annotations.BackupLocation, "file:///backups/db")), outcome: podinject.Refused,
			refused: []string{"annotation tandem.dev/backup-location", "inside the sidecar's own directory /backups", "is deleted with the pod"}},
		{name: "bad duration is refused", pod: dbPod(optIn(annotations.BackupInterval, "daily")), outcome: podinject.Refused,
			refused: []string{"annotation tandem.dev/backup-interval", `"daily" is not a Go duration`}},
		{name: "every bad annotation is reported at once", pod: dbPod(optIn(annotations.BackupInterval, "0s", annotations.DatabaseSecret, "DB_Secrets")), outcome: podinject.Refused,
			refused: []string{"tandem.dev/backup-interval", "tandem.dev/database-secret"}},
		{name: "empty profile is refused", pod: dbPod(optIn(annotations.Backup, "")), outcome: podinject.Refused, refused: []string{"tandem.dev/backup: is empty"}},
		{name: "custom secret key and credentials", pod: dbPod(optIn(annotations.DatabaseSecretKey, "password", annotations.BackupCredentials, "s3-creds")),
			outcome: podinject.Injected, check: func(t *testing.T, p *podinject.Plan) {
				if k := envOf(p.Container)["DATABASE_PASSWORD"].ValueFrom.SecretKeyRef.Key; k != "password" {
					t.Errorf("secret key = %q", k)
				}
				if len(p.Container.EnvFrom) != 1 || p.Container.EnvFrom[0].SecretRef.Name != "s3-creds" {
					t.Errorf("envFrom = %+v", p.Container.EnvFrom)
				}
			}},
		{name: "only the password's key of the secret is mounted, optional", pod: dbPod(optIn(annotations.DatabaseSecret, "db.secrets", annotations.DatabaseSecretKey, "pg-password")),
			outcome: podinject.Injected, check: func(t *testing.T, p *podinject.Plan) {
				v := p.Volumes[1].Secret
				if p.Volumes[1].Name != "tandem-database-secret" || v == nil || v.SecretName != "db.secrets" {
					t.Fatalf("secret volume = %+v", p.Volumes[1])
				}
				if len(v.Items) != 1 || v.Items[0].Key != "pg-password" || v.Items[0].Path != "pg-password" {
					t.Errorf("secret volume projects %+v, want only the key pg-password", v.Items)
				}
				if v.Optional == nil || !*v.Optional {
					t.Error("secret volume is not optional: a missing Secret would keep the database's pod from starting")
				}
			}},
		{name: "tandem.dev/database-user replaces the profile's user", pod: dbPod(optIn(annotations.DatabaseUser, "app")), outcome: podinject.Injected,
			check: func(t *testing.T, p *podinject.Plan) {
				var users []string
				for _, e := range p.Container.Env {
					if e.Name == "DATABASE_USER" {
						users = append(users, e.Value)
					}
				}
				if !slices.Equal(users, []string{"app"}) {
					t.Errorf("DATABASE_USER entries = %q, want only the annotation's", users)
				}
			}},
		{name: "the pod's own volume of the secret's name is no clash", pod: withSpec(dbPod(optIn()), func(s *corev1.PodSpec) {
			s.Volumes = append(s.Volumes, corev1.Volume{Name: "db-secrets", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db-secrets"}}})
		}), outcome: podinject.Injected},
		{name: "no database secret is a warning, not a refusal", pod: dbPod(optIn(annotations.DatabaseSecret, "<delete>")), outcome: podinject.Injected,
			check: func(t *testing.T, p *podinject.Plan) {
				wantWarning(t, p, "tandem.dev/database-secret is not set")
				if _, ok := envOf(p.Container)["DATABASE_PASSWORD"]; ok {
					t.Error("DATABASE_PASSWORD set without a secret")
				}
			}},
		{name: "the default profile's sidecar is native: in initContainers with restartPolicy Always, no warning in a pod that must complete",
			pod:     withSpec(dbPod(optIn()), func(s *corev1.PodSpec) { s.RestartPolicy = corev1.RestartPolicyNever }),
			outcome: podinject.Injected, check: func(t *testing.T, p *podinject.Plan) {
				if !p.Native || p.Container.RestartPolicy == nil || *p.Container.RestartPolicy != corev1.ContainerRestartPolicyAlways {
					t.Errorf("native %v, restartPolicy %v", p.Native, p.Container.RestartPolicy)
				}
				if len(p.Warnings) > 0 {
					t.Errorf("warnings %q for a native sidecar in a pod that must complete", p.Warnings)
				}
			}},
		{name: "a profile with nativeSidecar false adds a regular container",
			pod: dbPod(optIn(annotations.Backup, "regular")), outcome: podinject.Injected, check: func(t *testing.T, p *podinject.Plan) {
				if p.Native || p.Container.RestartPolicy != nil {
					t.Errorf("native %v, restartPolicy %v", p.Native, p.Container.RestartPolicy)
				}
			}},
		{name: "regular sidecar in a pod that must complete is a warning", pod: withSpec(dbPod(optIn(annotations.Backup, "regular")), func(s *corev1.PodSpec) { s.RestartPolicy = corev1.RestartPolicyNever }),
			outcome: podinject.Injected, check: func(t *testing.T, p *podinject.Plan) { wantWarning(t, p, "nativeSidecar: false") }},
		{name: "unknown tandem annotation is a warning", pod: dbPod(optIn("tandem.dev/backup-locaton", "s3://x/y")), outcome: podinject.Injected,
			check: func(t *testing.T, p *podinject.Plan) {
				wantWarning(t, p, "unknown annotation tandem.dev/backup-locaton is ignored")
			}},
		{name: "injection annotation without opt-in is a warning", pod: dbPod(map[string]string{annotations.BackupLocation: "s3://x/y"}), outcome: podinject.Skipped,
			check: func(t *testing.T, p *podinject.Plan) { wantWarning(t, p, "tandem.dev/backup is not") }},
		{name: "existing identical volume is reused, not duplicated", pod: withSpec(dbPod(optIn()), func(s *corev1.PodSpec) {
			mode := int32(0o644) // the API server defaults defaultMode; tandem does not set it, so it does not count
			s.Volumes = append(s.Volumes, corev1.Volume{Name: "db-secrets", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db-secrets", DefaultMode: &mode}}})
		}), outcome: podinject.Injected, check: func(t *testing.T, p *podinject.Plan) {
			for _, v := range p.Volumes {
				if v.Name == "db-secrets" {
					t.Errorf("db-secrets added again: %+v", p.Volumes)
				}
			}
			if p.Container == nil {
				t.Error("sidecar not added")
			}
		}},
		{name: "existing different volume is refused, naming the field", pod: withSpec(dbPod(optIn()), func(s *corev1.PodSpec) {
			s.Volumes = append(s.Volumes, corev1.Volume{Name: "tandem-database-secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "other-secret"}}})
		}), outcome: podinject.Refused, refused: []string{`volume named "tandem-database-secret"`, "secret.secretName", "rename the pod's volume"}},
		{name: "backup-data of another kind is refused", pod: withSpec(dbPod(optIn()), func(s *corev1.PodSpec) {
			s.Volumes = append(s.Volumes, corev1.Volume{Name: "backup-data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/b"}}})
		}), outcome: podinject.Refused, refused: []string{`volume named "backup-data"`, "emptyDir"}},
		{name: "existing different container of the sidecar's name is refused", pod: withSpec(dbPod(optIn()), func(s *corev1.PodSpec) {
			s.InitContainers = append(s.InitContainers, corev1.Container{Name: "tandem-backup", Image: "someone/else:1"})
		}), outcome: podinject.Refused, refused: []string{`container named "tandem-backup"`, "image", "rename that container"}},
		{name: "sidecar's name among regular containers is refused for a native sidecar", pod: withSpec(dbPod(optIn()), func(s *corev1.PodSpec) {
			s.Containers = append(s.Containers, corev1.Container{Name: "tandem-backup", Image: "x"})
		}), outcome: podinject.Refused, refused: []string{`container named "tandem-backup" in containers`}},
		{name: "sidecar's name among init containers is refused for a regular sidecar", pod: withSpec(dbPod(optIn(annotations.Backup, "regular")), func(s *corev1.PodSpec) {
			s.InitContainers = append(s.InitContainers, corev1.Container{Name: "tandem-backup", Image: "x"})
		}), outcome: podinject.Refused, refused: []string{`container named "tandem-backup" in initContainers`}},
	}
	in := podinject.New(testConfig(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.pod.DeepCopy()
			plan, err := in.Plan(&tt.pod.ObjectMeta, &tt.pod.Spec)
			if tt.outcome == podinject.Refused {
				var r *podinject.Refusal
				if !errors.As(err, &r) {
					t.Fatalf("err = %v, want a refusal", err)
				}
				for _, want := range tt.refused {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("refusal %q does not say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if plan.Outcome != tt.outcome {
				t.Fatalf("outcome = %s, want %s (warnings %q)", plan.Outcome, tt.outcome, plan.Warnings)
			}
			if tt.check != nil {
				tt.check(t, plan)
			}
			if !equalPods(before, tt.pod) {
				t.Error("Plan modified the pod")
			}
		})
	}
}

func TestIdenticalContainerIsReused(t *testing.T) {
	in := podinject.New(testConfig(t))
	pod := dbPod(optIn())
	plan, err := in.Plan(&pod.ObjectMeta, &pod.Spec)
	if err != nil {
		t.Fatal(err)
	}
	// The user's copy of the sidecar, as the API server stores it: with defaults tandem does not set.
	theirs := plan.Container.DeepCopy()
	theirs.TerminationMessagePath = "/dev/termination-log"
	theirs.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	pod.Spec.InitContainers = append(pod.Spec.InitContainers, *theirs)

	again, err := in.Plan(&pod.ObjectMeta, &pod.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if again.Outcome != podinject.Injected || again.Container != nil {
		t.Errorf("outcome %s, container %v: want the existing container reused and only the annotation added", again.Outcome, again.Container)
	}
	ops := again.Patch("", &pod.ObjectMeta, &pod.Spec)
	for _, op := range ops {
		if strings.Contains(op.Path, "containers") {
			t.Errorf("patch touches containers: %+v", op)
		}
	}
}

func wantWarning(t *testing.T, p *podinject.Plan, substr string) {
	t.Helper()
	for _, w := range p.Warnings {
		if strings.Contains(w, substr) {
			return
		}
	}
	t.Errorf("no warning says %q; warnings: %q", substr, p.Warnings)
}

func withSpec(p *corev1.Pod, f func(*corev1.PodSpec)) *corev1.Pod {
	f(&p.Spec)
	return p
}

func equalPods(a, b *corev1.Pod) bool { return equality.Semantic.DeepEqual(a, b) }

func TestSidecarRunsAsNonRootWithoutPinningAUID(t *testing.T) {
	root, user := int64(0), int64(1000700000)
	tests := []struct {
		name   string
		podSC  *corev1.PodSecurityContext
		wantID *int64
	}{
		{"no pod security context: the image's user", nil, nil},
		{"a UID the platform or the pod chose: inherited", &corev1.PodSecurityContext{RunAsUser: &user}, nil},
		{"runAsNonRoot without a UID: assigned by the platform", &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}, nil},
		{"a root pod: the image's user, on the sidecar alone", &corev1.PodSecurityContext{RunAsUser: &root}, ptr.To(podinject.ImageUser)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := withSpec(dbPod(optIn()), func(s *corev1.PodSpec) { s.SecurityContext = tt.podSC })
			plan, err := podinject.New(config.Default()).Plan(&pod.ObjectMeta, &pod.Spec)
			if err != nil {
				t.Fatal(err)
			}
			sc := plan.Container.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Fatalf("sidecar security context %+v does not run as non-root", sc)
			}
			if got := sc.RunAsUser; (got == nil) != (tt.wantID == nil) || (got != nil && *got != *tt.wantID) {
				t.Errorf("runAsUser = %v, want %v", ptrString(got), ptrString(tt.wantID))
			}
		})
	}
}

func ptrString(p *int64) string {
	if p == nil {
		return "unset"
	}
	return strconv.FormatInt(*p, 10)
}

// TestSidecarResourcesFollowTheQoSClass: the sidecar's resources are chosen so the pod keeps its QoS class (the
// e2e suite checks the class the API server stores).
func TestSidecarResourcesFollowTheQoSClass(t *testing.T) {
	list := func(cpu, memory string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
	}
	builtin := config.Default().Profiles["postgres"]
	guaranteed := corev1.ResourceRequirements{Requests: builtin.GuaranteedResources, Limits: builtin.GuaranteedResources}
	tests := []struct {
		name string
		edit func(*corev1.PodSpec)
		want corev1.ResourceRequirements
	}{
		{"best effort: none, so the pod stays BestEffort", func(*corev1.PodSpec) {}, corev1.ResourceRequirements{}},
		{"burstable: the profile's", func(s *corev1.PodSpec) { s.Containers[0].Resources.Requests = list("1", "1Gi") }, builtin.Resources},
		{"guaranteed: requests equal to limits", func(s *corev1.PodSpec) {
			s.Containers[0].Resources = corev1.ResourceRequirements{Requests: list("1", "1Gi"), Limits: list("1", "1Gi")}
		}, guaranteed},
		{"guaranteed by limits alone", func(s *corev1.PodSpec) { s.Containers[0].Resources.Limits = list("1", "1Gi") }, guaranteed},
		{"one container without a CPU limit: burstable", func(s *corev1.PodSpec) {
			s.Containers[0].Resources.Limits = list("1", "1Gi")
			s.Containers = append(s.Containers, corev1.Container{Name: "exporter", Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}})
		}, builtin.Resources},
		{"pod-level resources: none, the sidecar shares the pod's", func(s *corev1.PodSpec) {
			s.Resources = &corev1.ResourceRequirements{Limits: list("1", "1Gi")}
		}, corev1.ResourceRequirements{}},
	}
	in := podinject.New(config.Default())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := withSpec(dbPod(optIn()), tt.edit)
			plan, err := in.Plan(&pod.ObjectMeta, &pod.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := plan.Container.Resources; !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("resources = %+v, want %+v", got, tt.want)
			}
		})
	}
}
