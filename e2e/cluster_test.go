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

// readyPod waits for the StatefulSet's first pod to be Ready with every container running, and returns it.
func readyPod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{}
	eventually(t, 4*time.Minute, "pod "+name+"-0 to be Ready", func() (bool, error) {
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name + "-0"}, pod); err != nil {
			var sts appsv1.StatefulSet
			_ = k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &sts)
			return false, fmt.Errorf("%v (StatefulSet status: %+v)", err, sts.Status)
		}
		for _, cond := range pod.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, fmt.Errorf("pod status: %s %+v", pod.Status.Phase, pod.Status.ContainerStatuses)
	})
	return pod
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
	// The sidecar keeps running: a command that exits at once would pass for Ready between two restarts.
	time.Sleep(5 * time.Second)
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
		t.Fatal(err)
	}
	for _, st := range pod.Status.ContainerStatuses {
		if st.Name == "tandem-backup" && (st.State.Running == nil || st.RestartCount > 0) {
			t.Fatalf("the backup sidecar is not running steadily: state %+v, %d restarts, last %+v", st.State, st.RestartCount, st.LastTerminationState)
		}
	}

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
			if !strings.HasSuffix(o, ".gz") {
				return false, fmt.Errorf("uploaded %q, not a .gz", o)
			}
			if taken, ok := backupTime(o); ok && !taken.Before(written.Truncate(time.Second).Add(time.Second)) {
				object = o
				return true, nil
			}
		}
		return false, fmt.Errorf("uploads so far: %v (%v)", objects, err)
	})

	// Its name says which pod took it, so that the backups of several replicas never collide.
	if !strings.HasSuffix(object, "-"+pod.Name+".sql.gz") {
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

// backupTime reads the UTC timestamp in a backup's name (orders-20261125T073000Z-orders-db.sql.gz).
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
			j.Spec.Template.Annotations = map[string]string{annotations.Backup: "true", annotations.BackupLocation: "file:///backups"}
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
