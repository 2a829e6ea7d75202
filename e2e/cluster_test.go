package e2e

// The checks that need a cluster where pods run (kind, through hack/e2e-kind.sh): a PostgreSQL StatefulSet
// backs up through its injected sidecar, the backup restores into a fresh database, Jobs run with their
// defaults, and admissions keep being answered while tandem's pods go away. They run when the suite is pointed
// at a cluster with nodes (E2E_KUBECONFIG); the local control plane has none, so there they skip.
//
// What the cluster provides comes in through the environment (hack/e2e-kind.sh sets it):
//
//	E2E_POSTGRES_IMAGE     a PostgreSQL image present on the nodes (entrypoint: initdb from POSTGRES_PASSWORD, POSTGRES_DB)
//	E2E_POSTGRES_USER      its numeric uid:gid, for runAsUser and fsGroup under Pod Security "restricted"
//	E2E_BUSYBOX_IMAGE      a busybox image present on the nodes
//	E2E_S3_ENDPOINT        the S3-compatible store, as pods reach it (http://host:port)
//	E2E_S3_BUCKET          a bucket in it; E2E_S3_ACCESS_KEY, E2E_S3_SECRET_KEY its credentials
//	E2E_TANDEM_NAMESPACE   where the chart installed tandem

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tandem-dev/tandem/webhook/annotations"
)

// clusterEnv is what hack/e2e-kind.sh tells the suite about the cluster.
type clusterEnv struct {
	postgresImage, busyboxImage   string
	uid, gid                      int64
	s3Endpoint, bucket            string
	accessKey, secretKey          string
	tandemNamespace               string
	clientset                     *kubernetes.Clientset
	restrictedNS                  map[string]string
	postgresPassword, dbSecretKey string
}

// cluster skips the test unless the suite runs against a cluster with nodes, and fails it when such a cluster
// lacks what the environment must say about it.
func cluster(t *testing.T) *clusterEnv {
	t.Helper()
	if plane != nil {
		t.Skip("needs a cluster where pods run (make e2e-kind); the local control plane has no nodes")
	}
	var nodes corev1.NodeList
	if err := k8s.List(context.Background(), &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) == 0 {
		t.Skip("the cluster has no nodes")
	}
	env := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			t.Fatalf("%s is not set: the cluster checks need it (hack/e2e-kind.sh sets it)", name)
		}
		return v
	}
	c := &clusterEnv{
		postgresImage: env("E2E_POSTGRES_IMAGE"), busyboxImage: env("E2E_BUSYBOX_IMAGE"),
		s3Endpoint: env("E2E_S3_ENDPOINT"), bucket: env("E2E_S3_BUCKET"),
		accessKey: env("E2E_S3_ACCESS_KEY"), secretKey: env("E2E_S3_SECRET_KEY"),
		tandemNamespace: env("E2E_TANDEM_NAMESPACE"),
		restrictedNS: map[string]string{"pod-security.kubernetes.io/enforce": "restricted",
			"pod-security.kubernetes.io/enforce-version": "latest"},
		postgresPassword: "e2e-" + time.Now().Format("150405"), dbSecretKey: "database-password",
	}
	if _, err := fmt.Sscanf(env("E2E_POSTGRES_USER"), "%d:%d", &c.uid, &c.gid); err != nil {
		t.Fatalf("E2E_POSTGRES_USER=%q: want uid:gid", os.Getenv("E2E_POSTGRES_USER"))
	}
	var err error
	if c.clientset, err = kubernetes.NewForConfig(restCfg); err != nil {
		t.Fatal(err)
	}
	return c
}

// secrets creates the database password and the object store's credentials in ns.
func (c *clusterEnv) secrets(t *testing.T, ns string) {
	t.Helper()
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "db-secrets", Namespace: ns}, StringData: map[string]string{c.dbSecretKey: c.postgresPassword}},
		{ObjectMeta: metav1.ObjectMeta{Name: "s3-credentials", Namespace: ns}, StringData: map[string]string{
			"AWS_ACCESS_KEY_ID": c.accessKey, "AWS_SECRET_ACCESS_KEY": c.secretKey,
			"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": c.s3Endpoint}},
	} {
		if err := k8s.Create(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

// postgres is a one-replica PostgreSQL StatefulSet that asks for tandem's backup sidecar, compliant with Pod
// Security "restricted".
func (c *clusterEnv) postgres(ns, name, location, interval string) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1), ServiceName: name,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					annotations.Backup: "true", annotations.BackupLocation: location, annotations.BackupInterval: interval,
					annotations.Database: "orders", annotations.DatabaseSecret: "db-secrets",
					annotations.BackupCredentials: "s3-credentials",
				}},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{RunAsUser: &c.uid, RunAsGroup: &c.gid, FSGroup: &c.gid},
					Containers: []corev1.Container{{
						Name: "postgres", Image: c.postgresImage, ImagePullPolicy: corev1.PullNever,
						Env: []corev1.EnvVar{
							{Name: "POSTGRES_DB", Value: "orders"},
							// A subdirectory of the volume, which initdb can own (the volume's root is root's).
							{Name: "PGDATA", Value: "/var/lib/postgresql/data/pgdata"},
							{Name: "POSTGRES_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: "db-secrets"}, Key: c.dbSecretKey}}},
						},
						Ports:           []corev1.ContainerPort{{Name: "postgres", ContainerPort: 5432}},
						ReadinessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"pg_isready", "-h", "127.0.0.1", "-U", "postgres"}}}, PeriodSeconds: 2},
						SecurityContext: c.restricted(),
						VolumeMounts:    []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql/data"}, {Name: "run", MountPath: "/run/postgresql"}, {Name: "tmp", MountPath: "/tmp"}},
					}},
					Volumes: []corev1.Volume{
						{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
				},
			},
		},
	}
}

// restricted is the database container's security context: Pod Security "restricted", as the image's user.
func (c *clusterEnv) restricted() *corev1.SecurityContext {
	sc := restricted()
	sc.RunAsUser, sc.RunAsGroup = &c.uid, &c.gid
	return sc
}

// readyPod waits for the StatefulSet name's first pod to be Ready, and returns it.
func readyPod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	return waitReady(t, ns, name+"-0")
}

// exec runs a command in a container and returns its standard output.
func (c *clusterEnv) exec(ctx context.Context, ns, pod, container string, cmd ...string) (string, error) {
	req := c.clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	spdy, err := remotecommand.NewSPDYExecutor(restCfg, "POST", req.URL())
	if err != nil {
		return "", err
	}
	ws, err := remotecommand.NewWebSocketExecutor(restCfg, "GET", req.URL().String())
	if err != nil {
		return "", err
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, httpstream.IsUpgradeFailure)
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return stdout.String(), fmt.Errorf("%s in %s/%s: %v: %s", strings.Join(cmd, " "), pod, container, err, stderr.String())
	}
	return stdout.String(), nil
}

// uploads are the objects the sidecar's log says it uploaded, oldest first.
func (c *clusterEnv) uploads(ctx context.Context, ns, pod string) ([]string, error) {
	raw, err := c.clientset.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: "tandem-backup"}).DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	var objects []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var entry struct{ Msg, Object string }
		if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Msg == "uploaded" && entry.Object != "" {
			objects = append(objects, entry.Object)
		}
	}
	return objects, nil
}

func TestClusterBackupRestoresIntoAFreshDatabase(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	ns := namespace(t, c.restrictedNS)
	c.secrets(t, ns)
	location := fmt.Sprintf("s3://%s/%s/orders", c.bucket, ns)
	if err := k8s.Create(ctx, c.postgres(ns, "orders-db", location, "15s")); err != nil {
		t.Fatal(err)
	}
	pod := readyPod(t, ns, "orders-db")
	if sidecar := container(pod, "tandem-backup"); sidecar == nil || pod.Annotations[annotations.Injected] != "postgres" {
		t.Fatalf("the running pod has no tandem-backup sidecar: %s", names(pod))
	}
	// The sidecar keeps running: a command that exits at once would pass for Ready between two restarts. (A
	// native sidecar's status is among the init containers': steady looks at both.)
	steady(t, ns, 5*time.Second, pod.Name)

	// The database container trusts its local socket.
	psql := func(pod, sql string) (string, error) {
		return c.exec(ctx, ns, pod, "postgres", "psql", "-U", "postgres", "-d", "orders", "-tA", "-c", sql)
	}
	const note = "written before the backup"
	if _, err := psql(pod.Name, "CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders VALUES (1, '"+note+"');"); err != nil {
		t.Fatal(err)
	}
	written := time.Now().UTC()

	// A backup taken after the row was written lands in the bucket.
	var object string
	eventually(t, 3*time.Minute, "an upload of a backup taken after the row was written", func() (bool, error) {
		objects, err := c.uploads(ctx, ns, pod.Name)
		for _, o := range objects {
			if !strings.HasSuffix(o, ".zst") {
				return false, fmt.Errorf("uploaded %q, not a .zst", o)
			}
			if taken, ok := backupTime(o); ok && !taken.Before(written.Truncate(time.Second).Add(time.Second)) {
				object = o
				return true, nil
			}
		}
		return false, fmt.Errorf("uploads so far: %v (%v)", objects, err)
	})

	// Its name says which pod took it, so that the backups of several replicas never collide.
	if !strings.HasSuffix(object, "-"+pod.Name+".sql.zst") {
		t.Errorf("the backup %s does not name the pod that took it, %s", object, pod.Name)
	}

	// A fresh PostgreSQL, backing up elsewhere, restores that object with tandem restore.
	if err := k8s.Create(ctx, c.postgres(ns, "restored-db", fmt.Sprintf("s3://%s/%s/restored", c.bucket, ns), "24h")); err != nil {
		t.Fatal(err)
	}
	fresh := readyPod(t, ns, "restored-db")
	if out, err := psql(fresh.Name, "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'"); err != nil || strings.TrimSpace(out) != "0" {
		t.Fatalf("the fresh database is not empty: %q, %v", out, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := c.exec(rctx, ns, fresh.Name, "tandem-backup", "tandem", "restore", "--from", object); err != nil {
		t.Fatal(err)
	}
	if out, err := psql(fresh.Name, "SELECT note FROM orders WHERE id = 1"); err != nil || strings.TrimSpace(out) != note {
		t.Fatalf("after restoring %s, the row reads %q (%v), want %q", object, out, err, note)
	}
}

// backupTime reads the UTC timestamp in a backup's name (orders-20261125T073000Z-orders-db.sql.zst).
func backupTime(object string) (time.Time, bool) {
	name := object[strings.LastIndex(object, "/")+1:]
	for part := range strings.SplitSeq(name, "-") {
		if len(part) >= 16 {
			if ts, err := time.Parse("20060102T150405Z", part[:16]); err == nil {
				return ts, true
			}
		}
	}
	return time.Time{}, false
}

func TestClusterJobsRunWithTheirDefaults(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	busybox := func(j *batchv1.Job) {
		for i := range j.Spec.Template.Spec.Containers {
			j.Spec.Template.Spec.Containers[i].Image = c.busyboxImage
			j.Spec.Template.Spec.Containers[i].ImagePullPolicy = corev1.PullNever
			j.Spec.Template.Spec.Containers[i].Command = []string{"sh", "-c", "echo processed"}
		}
	}

	t.Run("the original example Job runs to completion and is deleted after its TTL", func(t *testing.T) {
		j := exampleJob(ns)
		busybox(j)
		if err := k8s.Create(ctx, j); err != nil {
			t.Fatalf("the original example Job was refused: %v", err)
		}
		waitCompleteThenGone(t, j, tandemCfg.Jobs.TTLSecondsAfterFinished)
	})

	t.Run("a Job whose template opts in with the default profile completes and is deleted after its TTL", func(t *testing.T) {
		j := job(ns, busybox, func(j *batchv1.Job) {
			j.Spec.Template.Annotations = map[string]string{annotations.Backup: "true", annotations.BackupLocation: "file:///tmp"}
		})
		if err := k8s.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		var pods corev1.PodList
		eventually(t, time.Minute, "the Job's pod", func() (bool, error) {
			err := k8s.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"batch.kubernetes.io/job-name": j.Name})
			return err == nil && len(pods.Items) > 0, err
		})
		if init := pods.Items[0].Spec.InitContainers; len(init) != 1 || init[0].Name != "tandem-backup" ||
			init[0].RestartPolicy == nil || *init[0].RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Fatalf("the Job's pod has no native tandem-backup sidecar: %s", names(&pods.Items[0]))
		}
		waitCompleteThenGone(t, j, tandemCfg.Jobs.TTLSecondsAfterFinished)
	})

	t.Run("a CronJob's Jobs carry the defaults", func(t *testing.T) {
		cj := cronJob(ns, func(cj *batchv1.CronJob) {
			cj.Spec.Schedule = "* * * * *"
			j := &batchv1.Job{Spec: cj.Spec.JobTemplate.Spec}
			busybox(j)
			cj.Spec.JobTemplate.Spec = j.Spec
		})
		if err := k8s.Create(ctx, cj); err != nil {
			t.Fatal(err)
		}
		var jobs batchv1.JobList
		eventually(t, 2*time.Minute, "the CronJob's first Job", func() (bool, error) {
			err := k8s.List(ctx, &jobs, client.InNamespace(ns))
			for _, j := range jobs.Items {
				if len(j.OwnerReferences) > 0 && j.OwnerReferences[0].Name == cj.Name {
					if int32Of(j.Spec.BackoffLimit) != int32Of(tandemCfg.Jobs.BackoffLimit) ||
						int32Of(j.Spec.TTLSecondsAfterFinished) != int32Of(tandemCfg.Jobs.TTLSecondsAfterFinished) {
						return false, fmt.Errorf("the CronJob's Job has backoffLimit %v, ttl %v", int32Of(j.Spec.BackoffLimit), int32Of(j.Spec.TTLSecondsAfterFinished))
					}
					return true, nil
				}
			}
			return false, err
		})
		_ = k8s.Delete(ctx, cj)
	})
}

// waitCompleteThenGone waits for the Job to complete and then for the TTL controller to delete it.
func waitCompleteThenGone(t *testing.T, j *batchv1.Job, ttl *int32) {
	t.Helper()
	ctx := context.Background()
	completed := false
	eventually(t, 3*time.Minute, "Job "+j.Name+" to complete and then be deleted after its TTL", func() (bool, error) {
		var got batchv1.Job
		err := k8s.Get(ctx, client.ObjectKeyFromObject(j), &got)
		if apierrors.IsNotFound(err) {
			if !completed {
				return false, fmt.Errorf("deleted before it was seen complete")
			}
			return true, nil
		}
		if err != nil {
			return false, err
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
				completed = true
			}
			if cond.Type == batchv1.JobFailed && cond.Status == corev1.ConditionTrue {
				t.Fatalf("Job %s failed: %s", j.Name, cond.Message)
			}
		}
		if ttl == nil && completed {
			return true, nil
		}
		return false, fmt.Errorf("status %+v", got.Status)
	})
}

// TestClusterAdmissionsSurviveLosingATandemPod creates annotated pods (server-side dry run, which admission
// webhooks see like any create) without pause while one tandem pod is deleted, and while the node running one
// is drained; none may fail. Then, with tandem scaled to zero, unannotated pods are still created.
func TestClusterAdmissionsSurviveLosingATandemPod(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	var deploys appsv1.DeploymentList
	if err := k8s.List(ctx, &deploys, client.InNamespace(c.tandemNamespace), client.MatchingLabels{"app.kubernetes.io/name": "tandem"}); err != nil || len(deploys.Items) != 1 {
		t.Fatalf("tandem's Deployment in %s: %d found (%v)", c.tandemNamespace, len(deploys.Items), err)
	}
	deploy := &deploys.Items[0]
	tandemPods := func() []corev1.Pod {
		var pods corev1.PodList
		if err := k8s.List(ctx, &pods, client.InNamespace(c.tandemNamespace), client.MatchingLabels(deploy.Spec.Selector.MatchLabels)); err != nil {
			t.Fatal(err)
		}
		return pods.Items
	}
	waitAvailable := func(replicas int32) {
		eventually(t, 3*time.Minute, fmt.Sprintf("tandem to have %d available replicas", replicas), func() (bool, error) {
			var d appsv1.Deployment
			err := k8s.Get(ctx, client.ObjectKeyFromObject(deploy), &d)
			return err == nil && d.Status.AvailableReplicas == replicas && d.Status.UpdatedReplicas == replicas && d.Status.Replicas == replicas, fmt.Errorf("%+v %v", d.Status, err)
		})
	}
	replicas := ptr.Deref(deploy.Spec.Replicas, 1)
	if replicas < 2 {
		t.Fatalf("tandem runs %d replica: the chart's default is 2, which this check needs", replicas)
	}
	waitAvailable(replicas)

	// admit creates annotated pods from four loops until stop is closed and counts the refusals.
	admit := func(stop <-chan struct{}) (created, failed *atomic.Int64, errs *sync.Map) {
		created, failed, errs = new(atomic.Int64), new(atomic.Int64), new(sync.Map)
		for range 4 {
			go func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					pod := examplePod(ns)
					if err := k8s.Create(ctx, pod, &clientDryRun); err != nil {
						failed.Add(1)
						errs.Store(err.Error(), true)
					} else if pod.Annotations[annotations.Injected] == "" {
						failed.Add(1)
						errs.Store("created without the sidecar", true)
					} else {
						created.Add(1)
					}
				}
			}()
		}
		return created, failed, errs
	}
	check := func(what string, created, failed *atomic.Int64, errs *sync.Map) {
		var msgs []string
		errs.Range(func(k, _ any) bool { msgs = append(msgs, k.(string)); return true })
		if failed.Load() > 0 || created.Load() == 0 {
			t.Errorf("%s: %d admissions failed, %d succeeded: %v", what, failed.Load(), created.Load(), msgs)
		} else {
			t.Logf("%s: %d admissions, none failed", what, created.Load())
		}
	}

	t.Run("one tandem pod deleted", func(t *testing.T) {
		stop := make(chan struct{})
		created, failed, errs := admit(stop)
		victim := tandemPods()[0]
		if err := k8s.Delete(ctx, &victim); err != nil {
			t.Fatal(err)
		}
		waitAvailable(replicas)
		time.Sleep(2 * time.Second)
		close(stop)
		check("while a tandem pod was deleted", created, failed, errs)
	})

	t.Run("the node running a tandem pod drained", func(t *testing.T) {
		node := tandemPods()[0].Spec.NodeName
		stop := make(chan struct{})
		created, failed, errs := admit(stop)
		setUnschedulable(t, node, true)
		defer setUnschedulable(t, node, false)
		// Evict as kubectl drain does: through the Eviction API, which honours tandem's PodDisruptionBudget.
		for _, p := range tandemPods() {
			if p.Spec.NodeName != node {
				continue
			}
			eventually(t, 2*time.Minute, "the eviction of "+p.Name, func() (bool, error) {
				err := c.clientset.PolicyV1().Evictions(p.Namespace).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}})
				return err == nil || apierrors.IsNotFound(err), err
			})
		}
		waitAvailable(replicas)
		time.Sleep(2 * time.Second)
		close(stop)
		check("while a node was drained", created, failed, errs)
	})

	t.Run("tandem scaled to zero", func(t *testing.T) {
		scale(t, deploy, 0)
		defer func() {
			scale(t, deploy, replicas)
			waitAvailable(replicas)
			// Available is not yet answering: the Service's endpoints and the nodes' rules follow. The tests
			// after this one need tandem back.
			eventually(t, 2*time.Minute, "tandem to answer again", func() (bool, error) {
				pod := examplePod(ns)
				err := k8s.Create(ctx, pod, &clientDryRun)
				return err == nil && pod.Annotations[annotations.Injected] != "", err
			})
		}()
		eventually(t, 2*time.Minute, "tandem's pods to be gone", func() (bool, error) { return len(tandemPods()) == 0, nil })
		plain := examplePod(ns)
		plain.Annotations = nil
		if err := k8s.Create(ctx, plain, &clientDryRun); err != nil {
			t.Errorf("with tandem down, a pod without tandem's annotations was refused: %v", err)
		}
		if err := k8s.Create(ctx, examplePod(ns), &clientDryRun); err == nil {
			t.Error("with tandem down, an annotated pod was created (without its sidecar), despite failurePolicy: Fail")
		}
	})
}

func setUnschedulable(t *testing.T, node string, unschedulable bool) {
	t.Helper()
	var n corev1.Node
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: node}, &n); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(n.DeepCopy())
	n.Spec.Unschedulable = unschedulable
	if err := k8s.Patch(context.Background(), &n, patch); err != nil {
		t.Fatal(err)
	}
}

func scale(t *testing.T, d *appsv1.Deployment, replicas int32) {
	t.Helper()
	var cur appsv1.Deployment
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(d), &cur); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.Replicas = &replicas
	if err := k8s.Patch(context.Background(), &cur, patch); err != nil {
		t.Fatal(err)
	}
}

// sidecarStatus is the status of the pod's tandem-backup container: a native sidecar's, among the init
// containers, or a regular container's.
func sidecarStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == "tandem-backup" {
				return &list[i]
			}
		}
	}
	return nil
}

func isReady(pod *corev1.Pod) bool {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitReady waits for the pod to be Ready and returns it.
func waitReady(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{}
	eventually(t, 4*time.Minute, "pod "+name+" to be Ready", func() (bool, error) {
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
			return false, err
		}
		return isReady(pod), fmt.Errorf("pod status: %s %v %+v %+v", pod.Status.Phase, pod.Status.Conditions, pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses)
	})
	return pod
}

// steady checks, every two seconds for d, that each pod stays Ready with its backup sidecar running and no
// container restarted: a sidecar that exited would be restarted by the kubelet and, crash-looping, take its pod
// out of Ready between two samples or show in its restart count.
func steady(t *testing.T, ns string, d time.Duration, pods ...string) {
	t.Helper()
	ctx := context.Background()
	samples := 0
	for end := time.Now().Add(d); ; {
		for _, name := range pods {
			var pod corev1.Pod
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &pod); err != nil {
				t.Fatal(err)
			}
			if !isReady(&pod) {
				t.Fatalf("pod %s is not Ready after %d samples: %+v", name, samples, pod.Status.Conditions)
			}
			st := sidecarStatus(&pod)
			if st == nil || st.State.Running == nil || st.RestartCount > 0 {
				t.Fatalf("pod %s: the backup sidecar is not running steadily: %+v", name, st)
			}
			for _, c := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
				if c.RestartCount > 0 {
					t.Fatalf("pod %s: container %s restarted %d times, last %+v", name, c.Name, c.RestartCount, c.LastTerminationState)
				}
			}
		}
		samples++
		if time.Now().After(end) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("%s: Ready, sidecar running, no restarts, over %s (%d samples)", strings.Join(pods, ", "), d, samples)
}

// sidecarHTTP asks a pod's backup sidecar for path on port through the API server's pod proxy (the backup image
// has no HTTP client to exec), and returns the status code and the body.
func (c *clusterEnv) sidecarHTTP(ctx context.Context, ns, pod string, port int32, path string) (int, string, error) {
	body, err := c.clientset.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").
		Name(fmt.Sprintf("http:%s:%d", pod, port)).SubResource("proxy").Suffix(path).DoRaw(ctx)
	if err == nil {
		return 200, string(body), nil
	}
	// An answer that is not 2xx (the sidecar's 503 from /healthz) comes back as a StatusError with the sidecar's
	// code and body.
	var status *apierrors.StatusError
	if errors.As(err, &status) && status.ErrStatus.Code != 0 {
		return int(status.ErrStatus.Code), string(body), nil
	}
	return 0, "", err // no answer at all
}

// metric reads a sample from a /metrics body: name with its labels as written, tandem_backup_failures_total{stage="upload"}.
func metric(body, series string) (float64, bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f, true
			}
		}
	}
	return 0, false
}

// failures is the sidecar's tandem_backup_failures_total of a stage, from its /metrics.
func (c *clusterEnv) failures(ctx context.Context, ns, pod string, port int32, stage string) (float64, error) {
	code, body, err := c.sidecarHTTP(ctx, ns, pod, port, "/metrics")
	if err != nil || code != 200 {
		return 0, fmt.Errorf("GET /metrics: %d %v %.200s", code, err, body)
	}
	v, ok := metric(body, `tandem_backup_failures_total{stage="`+stage+`"}`)
	if !ok {
		return 0, fmt.Errorf("no failures_total of stage %s in /metrics:\n%s", stage, body)
	}
	return v, nil
}

// sidecarLog is the backup sidecar's log, one JSON object a line.
func (c *clusterEnv) sidecarLog(ctx context.Context, ns, pod string) (string, error) {
	raw, err := c.clientset.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: "tandem-backup"}).DoRaw(ctx)
	return string(raw), err
}

// The README's promise for what tandem cannot know at admission: a bucket that does not answer is the sidecar's
// problem, reported in its metrics and /healthz, and never the database's pod's.
func TestClusterUnreachableBucketLeavesThePodReady(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	ns := namespace(t, c.restrictedNS)
	c.secrets(t, ns)
	// A valid location the webhook admits, whose endpoint refuses every connection: nothing listens on port 1 of
	// the pod's loopback. ?endpoint= overrides the AWS_ENDPOINT_URL of the credentials Secret.
	const interval = 15 * time.Second
	if err := k8s.Create(ctx, c.postgres(ns, "stranded-db", "s3://nowhere/x?endpoint=http://127.0.0.1:1", interval.String())); err != nil {
		t.Fatalf("the webhook refused a valid location whose bucket is down: %v", err)
	}
	pod := readyPod(t, ns, "stranded-db")
	const port = 9880 // the built-in profile's metricsPort
	if sc := container(pod, "tandem-backup"); sc == nil || len(sc.Ports) != 1 || sc.Ports[0].Name != "tandem-metrics" || sc.Ports[0].ContainerPort != port {
		t.Fatalf("the sidecar does not declare its metrics port tandem-metrics %d: %+v", port, sc)
	}

	// The first dump is taken as soon as PostgreSQL answers, and its upload fails.
	var first float64
	eventually(t, 3*time.Minute, `a failed upload in the sidecar's tandem_backup_failures_total{stage="upload"}`, func() (bool, error) {
		n, err := c.failures(ctx, ns, pod.Name, port, "upload")
		first = n
		return err == nil && n > 0, err
	})
	log, err := c.sidecarLog(ctx, ns, pod.Name)
	// Streamed with no local copy, a backup that cannot land is dumped again later: the log says so, and why.
	for _, want := range []string{"the backup could not be stored, and nothing of it was left", "127.0.0.1:1", "will try the dump again"} {
		if err != nil || !strings.Contains(log, want) {
			t.Errorf("the sidecar's log does not say %q (%v):\n%s", want, err, log)
			break
		}
	}

	// Several intervals later the pod is still Ready and the sidecar never restarted, sampled all along.
	steady(t, ns, 4*interval, pod.Name)

	// The sidecar kept trying, and says it has not backed up: /healthz answers 503 past two intervals without a
	// success, and why.
	n, err := c.failures(ctx, ns, pod.Name, port, "upload")
	if err != nil || n <= first {
		t.Errorf("upload failures went from %v to %v (%v): the sidecar stopped trying", first, n, err)
	}
	if dumps, err := c.failures(ctx, ns, pod.Name, port, "dump"); err != nil || dumps != 0 {
		t.Errorf("dump failures: %v (%v); the database was up", dumps, err)
	}
	code, body, err := c.sidecarHTTP(ctx, ns, pod.Name, port, "/healthz")
	if err != nil || code != 503 || !strings.Contains(body, "no successful backup since the start") {
		t.Errorf("/healthz answered %d %q (%v), want 503 saying no backup succeeded since the start", code, body, err)
	}
	if objects, err := c.uploads(ctx, ns, pod.Name); err != nil || len(objects) > 0 {
		t.Errorf("uploads to a bucket that does not answer: %v (%v)", objects, err)
	}
	t.Logf("%v upload failures, /healthz %d: %s", n, code, strings.TrimSpace(body))
}

// hostDB is a PostgreSQL pod on the node's network, pinned to node, listening on dbPort, whose sidecar serves
// /metrics on metricsPort (tandem.dev/metrics-port).
func (c *clusterEnv) hostDB(ns, name, node string, dbPort, metricsPort int32) *corev1.Pod {
	tmpl := c.postgres(ns, name, fmt.Sprintf("s3://%s/%s/%s", c.bucket, ns, name), "15s").Spec.Template
	tmpl.Annotations[annotations.MetricsPort] = fmt.Sprint(metricsPort)
	spec := tmpl.Spec
	spec.HostNetwork = true
	spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet // the sidecar resolves the store's Service name
	spec.NodeSelector = map[string]string{"kubernetes.io/hostname": node}
	spec.TerminationGracePeriodSeconds = ptr.To[int64](5)
	db := &spec.Containers[0]
	port := fmt.Sprint(dbPort)
	db.Args = []string{"postgres", "-p", port}
	db.Ports = []corev1.ContainerPort{{Name: "postgres", ContainerPort: dbPort}}
	db.ReadinessProbe.Exec.Command = []string{"pg_isready", "-h", "127.0.0.1", "-p", port, "-U", "postgres"}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: tmpl.Labels, Annotations: tmpl.Annotations}, Spec: spec}
}

// workerNode is a node the suite's pods can be scheduled on.
func workerNode(t *testing.T) string {
	t.Helper()
	var nodes corev1.NodeList
	if err := k8s.List(context.Background(), &nodes); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if !n.Spec.Unschedulable && len(n.Spec.Taints) == 0 {
			return n.Name
		}
	}
	t.Fatalf("no node without taints among %d", len(nodes.Items))
	return ""
}

// createPod creates the pod and deletes it when the test ends, waiting until it is gone: a host-network pod
// holds its ports on the node until then.
func createPod(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k8s.Delete(ctx, pod); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting pod %s: %v", pod.Name, err)
			return
		}
		eventually(t, 2*time.Minute, "pod "+pod.Name+" to be gone", func() (bool, error) {
			err := k8s.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{})
			return apierrors.IsNotFound(err), err
		})
	})
}

func TestClusterHostNetworkReplicasOnOneNode(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	// Pod Security "baseline" and "restricted" forbid the node's network.
	ns := namespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "privileged"})
	c.secrets(t, ns)
	node := workerNode(t)

	t.Run("each with its own metrics port, both Ready with their sidecars running", func(t *testing.T) {
		a, b := c.hostDB(ns, "replica-a", node, 5432, 9881), c.hostDB(ns, "replica-b", node, 5433, 9882)
		createPod(t, a)
		createPod(t, b)
		for _, p := range []*corev1.Pod{a, b} {
			got := waitReady(t, ns, p.Name)
			if got.Spec.NodeName != node || !got.Spec.HostNetwork || got.Annotations[annotations.Injected] != "postgres" {
				t.Fatalf("pod %s: node %q (want %s), hostNetwork %v, injected %q", p.Name, got.Spec.NodeName, node, got.Spec.HostNetwork, got.Annotations[annotations.Injected])
			}
		}
		steady(t, ns, 30*time.Second, a.Name, b.Name)
		for _, p := range []struct {
			name string
			port int32
		}{{a.Name, 9881}, {b.Name, 9882}} {
			if n, err := c.failures(ctx, ns, p.name, p.port, "metrics"); err != nil || n != 0 {
				t.Errorf("pod %s: /metrics on its own port %d: %v metrics failures (%v)", p.name, p.port, n, err)
			}
			eventually(t, 2*time.Minute, "an upload by "+p.name, func() (bool, error) {
				objects, err := c.uploads(ctx, ns, p.name)
				return len(objects) > 0, err
			})
		}
		// Each database listens on a port of its own, as it must on the node's network, but the sidecar's
		// DATABASE_PORT is the profile's (5432) and no annotation sets it per pod: replica-b's sidecar dumps
		// replica-a's database. Said here so that the log of a run shows it.
		for _, p := range []string{a.Name, b.Name} {
			log, _ := c.sidecarLog(ctx, ns, p)
			for line := range strings.SplitSeq(log, "\n") {
				var entry struct{ Msg, Address string }
				if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "the database accepts connections" {
					t.Logf("%s's sidecar backs up the database at %s", p, entry.Address)
				}
			}
		}
	})

	t.Run("the same metrics port: the scheduler keeps the second pod off the node", func(t *testing.T) {
		// The sidecar declares its metrics port, which in a host-network pod is a host port (the API server
		// defaults hostPort), and the scheduler counts a native sidecar's host ports: two such pods never share
		// a node, so the second one pinned there waits, Pending, instead of running with its metrics unserved.
		a, b := c.hostDB(ns, "shared-a", node, 5432, 9883), c.hostDB(ns, "shared-b", node, 5433, 9883)
		createPod(t, a)
		waitReady(t, ns, a.Name)
		createPod(t, b)
		eventually(t, time.Minute, "the scheduler to say "+b.Name+" finds no free port on "+node, func() (bool, error) {
			var pod corev1.Pod
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(b), &pod); err != nil {
				return false, err
			}
			if pod.Spec.NodeName != "" {
				t.Fatalf("%s was bound to %s beside %s, both with metrics port 9883", b.Name, pod.Spec.NodeName, a.Name)
			}
			evs, err := c.clientset.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + b.Name})
			if err != nil {
				return false, err
			}
			var msgs []string
			for _, e := range evs.Items {
				if e.Reason == "FailedScheduling" && strings.Contains(e.Message, "free ports") {
					return true, nil
				}
				msgs = append(msgs, e.Reason+": "+e.Message)
			}
			return false, fmt.Errorf("events: %v", msgs)
		})
		steady(t, ns, 10*time.Second, a.Name)
		// The port is all that keeps it off: once the first pod is gone, the second one starts there.
		if err := k8s.Delete(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got := waitReady(t, ns, b.Name); got.Spec.NodeName != node {
			t.Errorf("%s runs on %s, want %s", b.Name, got.Spec.NodeName, node)
		}
	})

	t.Run("a metrics port another process holds on the node: the sidecar keeps running and backing up", func(t *testing.T) {
		// What tandem cannot know at admission, nor the scheduler: a process on the node that listens on the
		// port without declaring it (here busybox httpd, in a host-network pod with no ports).
		const port = 9884
		holder := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "port-holder", Namespace: ns}, Spec: corev1.PodSpec{
			HostNetwork: true, NodeSelector: map[string]string{"kubernetes.io/hostname": node},
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{Name: "httpd", Image: c.busyboxImage, ImagePullPolicy: corev1.PullNever,
				Command:        []string{"httpd", "-f", "-p", fmt.Sprint(port), "-h", "/tmp"},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(port)}}, PeriodSeconds: 1}}},
		}}
		createPod(t, holder)
		waitReady(t, ns, holder.Name)
		db := c.hostDB(ns, "crowded-db", node, 5432, port)
		createPod(t, db)
		waitReady(t, ns, db.Name)

		// It cannot bind, says so, and backs up all the same.
		eventually(t, 3*time.Minute, "the sidecar to log that it cannot serve its metrics, and then an upload", func() (bool, error) {
			log, err := c.sidecarLog(ctx, ns, db.Name)
			i := strings.Index(log, "cannot serve /metrics and /healthz; backups go on")
			return i >= 0 && strings.Contains(log[i:], `"msg":"uploaded"`), fmt.Errorf("%v; log:\n%s", err, log)
		})
		steady(t, ns, 30*time.Second, db.Name)

		// Once the port is free, the sidecar serves it, without a restart, and has counted the failures.
		if err := k8s.Delete(ctx, holder); err != nil {
			t.Fatal(err)
		}
		var n float64
		eventually(t, 3*time.Minute, "the sidecar to serve /metrics on the freed port", func() (bool, error) {
			var err error
			n, err = c.failures(ctx, ns, db.Name, port, "metrics")
			return err == nil && n > 0, err
		})
		if up, err := c.failures(ctx, ns, db.Name, port, "upload"); err != nil || up != 0 {
			t.Errorf("upload failures: %v (%v)", up, err)
		}
		steady(t, ns, 5*time.Second, db.Name)
		t.Logf(`tandem_backup_failures_total{stage="metrics"} %v`, n)
	})
}
