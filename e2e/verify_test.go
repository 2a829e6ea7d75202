package e2e

// The sidecar's verification on a cluster where pods run: each backup that lands is restored into a throwaway
// server inside the sidecar's container and checked against its manifest, and the result is what a user sees in
// the bucket (the manifest), in the sidecar's metrics and /healthz, and in what restore --from latest takes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestClusterSidecarVerifiesEachBackup(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	ns := namespace(t, c.restrictedNS)
	c.secrets(t, ns)
	const (
		interval = 20 * time.Second
		port     = 9880 // the built-in profile's metricsPort
		rows     = 3
	)
	prefix := ns + "/orders"
	location := fmt.Sprintf("s3://%s/%s", c.bucket, prefix)
	if err := k8s.Create(ctx, c.postgres(ns, "verified-db", location, interval.String())); err != nil {
		t.Fatal(err)
	}
	pod := readyPod(t, ns, "verified-db")
	psql := func(pod, sql string) (string, error) {
		return c.exec(ctx, ns, pod, "postgres", "psql", "-U", "postgres", "-d", "orders", "-tA", "-c", sql)
	}
	if _, err := psql(pod.Name, fmt.Sprintf("CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT i, 'order ' || i FROM generate_series(1, %d) i;", rows)); err != nil {
		t.Fatal(err)
	}
	written := time.Now().UTC()
	store := c.openBucket(t, prefix)
	metrics := func() (string, error) {
		code, body, err := c.sidecarHTTP(ctx, ns, pod.Name, port, "/metrics")
		if err != nil || code != 200 {
			return "", fmt.Errorf("GET /metrics: %d %v %.200s", code, err, body)
		}
		return body, nil
	}
	gauge := func(series string) (float64, error) {
		body, err := metrics()
		if err != nil {
			return 0, err
		}
		v, ok := metric(body, series)
		if !ok {
			return 0, fmt.Errorf("no %s in /metrics:\n%s", series, body)
		}
		return v, nil
	}
	const lastVerified = "tandem_backup_last_verified_timestamp_seconds"
	checksumFailures := `tandem_backup_verification_failures_total{reason="checksum"}`

	// (a) A backup taken after the rows were written is verified by the sidecar: the metric says when, and the
	// backup's manifest in the bucket records the result and what was checked.
	var verified string
	var verifiedAt float64
	var m manifest
	eventually(t, 4*time.Minute, "the sidecar to verify a backup taken after the rows were written", func() (bool, error) {
		entries, err := c.sidecarEntries(ctx, ns, pod.Name, "verified")
		if err != nil {
			return false, err
		}
		for _, e := range entries {
			if taken, ok := backupTime(e.Object); ok && !taken.Before(written.Truncate(time.Second).Add(time.Second)) {
				verified = e.Object[strings.LastIndex(e.Object, "/")+1:]
			}
		}
		if verified == "" {
			return false, fmt.Errorf("verified so far: %v", entries)
		}
		if verifiedAt, err = gauge(lastVerified); err != nil || verifiedAt <= 0 {
			return false, fmt.Errorf("%s %v (%v)", lastVerified, verifiedAt, err)
		}
		// The result is written into the manifest once the checks are done.
		m, err = store.manifest(ctx, verified)
		return err == nil && m.verification().Result != "", fmt.Errorf("the manifest of %s: %s (%v)", verified, m["verification"], err)
	})
	if v := m.verification(); v.Result != "passed" || v.Tables != 1 || v.Rows != rows {
		t.Fatalf("the manifest of %s records the verification %+v, want passed with 1 table and %d rows", verified, v, rows)
	}
	t.Logf("%s: %s %v; its manifest: %s", verified, lastVerified, verifiedAt, m["verification"])

	// tandem verify, run by hand in the sidecar, verifies the latest backup too.
	vctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	out, err := c.exec(vctx, ns, pod.Name, "tandem-backup", "sh", "-c", "tandem verify --from latest 2>&1")
	if err != nil {
		t.Fatalf("tandem verify --from latest in the sidecar: %v\n%s", err, out)
	}
	if !strings.Contains(out, `"msg":"verified"`) {
		t.Fatalf("tandem verify --from latest did not say it verified a backup:\n%s", out)
	}

	// (b) A tampered object, named as if it were the newest backup and with a manifest copied from the real one,
	// is caught by the sidecar's next verification: its bytes do not match the manifest's SHA-256.
	if n, err := gauge(checksumFailures); err != nil || n != 0 {
		t.Fatalf("%s is %v before anything was tampered with (%v)", checksumFailures, n, err)
	}
	newest, err := store.newestComplete(ctx)
	if err != nil {
		t.Fatal(err)
	}
	taken, _ := backupTime(newest)
	tampered := fmt.Sprintf("orders-%s-%s.sql.zst", taken.Add(time.Hour).UTC().Format("20060102T150405Z"), pod.Name)
	data, err := store.get(ctx, newest)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	tm, err := store.manifest(ctx, newest)
	if err != nil {
		t.Fatal(err)
	}
	if tm["name"], err = json.Marshal(tampered); err != nil {
		t.Fatal(err)
	}
	delete(tm, "verification")
	manifestJSON, err := json.MarshalIndent(tm, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	// The object first, then its manifest, as the sidecar uploads them: a backup is complete once its manifest
	// is there.
	if err := store.put(ctx, tampered, data); err != nil {
		t.Fatal(err)
	}
	if err := store.put(ctx, tampered+".manifest.json", manifestJSON); err != nil {
		t.Fatal(err)
	}
	t.Logf("put %s: a copy of %s with byte %d flipped, and its manifest", tampered, newest, len(data)/2)
	var healthz string
	var failedAt float64 // the last pass, as the metric said while the failure stood
	eventually(t, 3*time.Minute, "a checksum failure in the sidecar's metrics and /healthz answering 503", func() (bool, error) {
		n, err := gauge(checksumFailures)
		if err != nil || n < 1 {
			return false, fmt.Errorf("%s %v (%v)", checksumFailures, n, err)
		}
		if failedAt, err = gauge(lastVerified); err != nil {
			return false, err
		}
		code, body, err := c.sidecarHTTP(ctx, ns, pod.Name, port, "/healthz")
		healthz = body
		return err == nil && code == 503 && strings.Contains(body, "did not pass verification"), fmt.Errorf("/healthz: %d %q (%v)", code, body, err)
	})
	t.Logf("/healthz 503: %s", strings.TrimSpace(healthz))
	tm, err = store.manifest(ctx, tampered)
	if err != nil {
		t.Fatal(err)
	}
	if v := tm.verification(); v.Result != "failed" || v.Reason != "checksum" {
		t.Errorf("the manifest of the tampered %s records the verification %+v, want failed, reason checksum", tampered, v)
	}

	// (c) restore --from latest in a fresh database, backing up elsewhere, takes the newest backup that passed,
	// not the tampered one, though its name is the newest.
	if err := k8s.Create(ctx, c.postgres(ns, "fresh-db", fmt.Sprintf("s3://%s/%s/fresh", c.bucket, ns), "24h")); err != nil {
		t.Fatal(err)
	}
	fresh := readyPod(t, ns, "fresh-db")
	if out, err := psql(fresh.Name, "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'"); err != nil || strings.TrimSpace(out) != "0" {
		t.Fatalf("the fresh database is not empty: %q, %v", out, err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer rcancel()
	out, err = c.exec(rctx, ns, fresh.Name, "tandem-backup", "sh", "-c", "tandem restore --from latest --location "+location+" 2>&1")
	if err != nil {
		t.Fatalf("tandem restore --from latest: %v\n%s", err, out)
	}
	restoring := logEntries(out, "restoring")
	if len(restoring) != 1 {
		t.Fatalf("tandem restore --from latest does not name the backup it restores:\n%s", out)
	}
	restored := restoring[0].Object[strings.LastIndex(restoring[0].Object, "/")+1:]
	if restored == tampered {
		t.Fatalf("tandem restore --from latest restored the tampered %s:\n%s", tampered, out)
	}
	if rm, err := store.manifest(ctx, restored); err != nil || rm.verification().Result != "passed" {
		t.Errorf("tandem restore --from latest restored %s, whose manifest records %+v (%v), not a verification that passed", restored, rm.verification(), err)
	}
	if out, err := psql(fresh.Name, "SELECT count(*) FROM orders"); err != nil || strings.TrimSpace(out) != fmt.Sprint(rows) {
		t.Errorf("after restoring %s, the fresh database has %q rows (%v), want %d", restored, out, err, rows)
	}
	t.Logf("tandem restore --from latest restored %s", restored)

	// Once the sidecar's next own backup verifies, it is healthy again: a failed verification is reported until
	// one passes, and the tampered object does not stop the next ones from being verified.
	eventually(t, 3*time.Minute, "a newer backup to pass verification and /healthz to answer 200", func() (bool, error) {
		at, err := gauge(lastVerified)
		if err != nil || at <= failedAt {
			return false, fmt.Errorf("%s %v, %v when the tampered object had failed (%v)", lastVerified, at, failedAt, err)
		}
		code, body, err := c.sidecarHTTP(ctx, ns, pod.Name, port, "/healthz")
		return err == nil && code == 200, fmt.Errorf("/healthz: %d %q (%v)", code, body, err)
	})
	if n, err := gauge(checksumFailures); err != nil || n != 1 {
		t.Errorf("%s is %v (%v): the tampered object was verified more than once, or the count was lost", checksumFailures, n, err)
	}
	var now corev1.Pod
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(pod), &now); err != nil {
		t.Fatal(err)
	}
	if st := sidecarStatus(&now); st == nil || st.RestartCount != 0 || !isReady(&now) {
		t.Errorf("the database's pod: Ready %v, sidecar %+v; a failed verification is the sidecar's report, never a restart", isReady(&now), st)
	}
}

// logEntry is one line of tandem's JSON log, the fields the suite reads.
type logEntry struct {
	Msg, Object, Reason string
}

// logEntries are the lines of a JSON log with the message msg.
func logEntries(log, msg string) []logEntry {
	var out []logEntry
	for line := range strings.SplitSeq(log, "\n") {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == msg {
			out = append(out, e)
		}
	}
	return out
}

// sidecarEntries are the lines of the backup sidecar's log with the message msg.
func (c *clusterEnv) sidecarEntries(ctx context.Context, ns, pod, msg string) ([]logEntry, error) {
	log, err := c.sidecarLog(ctx, ns, pod)
	return logEntries(log, msg), err
}

// manifest is a backup's manifest as it is in the bucket.
type manifest map[string]json.RawMessage

// verification is the verification the manifest records (all zero when none).
func (m manifest) verification() (v struct {
	Result, Reason string
	Tables         int
	Rows           int64
}) {
	_ = json.Unmarshal(m["verification"], &v)
	return v
}

// bucketClient reads and writes the objects at a prefix of the suite's bucket, with the suite's own S3 client.
type bucketClient struct {
	s3             *s3.Client
	bucket, prefix string
}

// openBucket opens the store's bucket at prefix through a port-forward to the store's pod: its Service is
// reachable from the pods, not from where the suite runs. The forward ends with the test.
func (c *clusterEnv) openBucket(t *testing.T, prefix string) *bucketClient {
	t.Helper()
	ctx := context.Background()
	endpoint, err := url.Parse(c.s3Endpoint) // http://<service>.<namespace>.svc...:<port>
	if err != nil {
		t.Fatalf("E2E_S3_ENDPOINT: %v", err)
	}
	name, rest, _ := strings.Cut(endpoint.Hostname(), ".")
	storeNS, _, _ := strings.Cut(rest, ".")
	var svc corev1.Service
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: storeNS, Name: name}, &svc); err != nil {
		t.Fatalf("the store's Service, from E2E_S3_ENDPOINT %s: %v", c.s3Endpoint, err)
	}
	target := endpoint.Port()
	for _, p := range svc.Spec.Ports {
		if fmt.Sprint(p.Port) == endpoint.Port() && p.TargetPort.IntValue() != 0 {
			target = fmt.Sprint(p.TargetPort.IntValue())
		}
	}
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(storeNS), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		t.Fatal(err)
	}
	var storePod string
	for i := range pods.Items {
		if isReady(&pods.Items[i]) {
			storePod = pods.Items[i].Name
		}
	}
	if storePod == "" {
		t.Fatalf("no Ready pod behind the store's Service %s/%s", storeNS, name)
	}
	req := c.clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(storeNS).Name(storePod).SubResource("portforward")
	transport, upgrader, err := spdy.RoundTripperFor(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", req.URL())
	if ws, err := portforward.NewSPDYOverWebsocketDialer(req.URL(), restCfg); err == nil {
		dialer = portforward.NewFallbackDialer(ws, dialer, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	var errOut bytes.Buffer
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + target}, stop, ready, io.Discard, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port-forward to the store's pod %s/%s: %v %s", storeNS, storePod, err, errOut.String())
	case <-time.After(time.Minute):
		t.Fatalf("port-forward to the store's pod %s/%s: not ready after a minute %s", storeNS, storePod, errOut.String())
	}
	t.Cleanup(func() { close(stop); <-done })
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		t.Fatalf("port-forward: %v %v", ports, err)
	}
	creds := aws.Credentials{AccessKeyID: c.accessKey, SecretAccessKey: c.secretKey}
	return &bucketClient{bucket: c.bucket, prefix: strings.Trim(prefix, "/") + "/", s3: s3.New(s3.Options{
		Region: "us-east-1", UsePathStyle: true, BaseEndpoint: aws.String(fmt.Sprintf("http://127.0.0.1:%d", ports[0].Local)),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
	})}
}

func (b *bucketClient) get(ctx context.Context, name string) ([]byte, error) {
	out, err := b.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: aws.String(b.prefix + name)})
	if err != nil {
		return nil, fmt.Errorf("getting %s%s: %w", b.prefix, name, err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func (b *bucketClient) put(ctx context.Context, name string, data []byte) error {
	_, err := b.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &b.bucket, Key: aws.String(b.prefix + name),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
	if err != nil {
		return fmt.Errorf("putting %s%s: %w", b.prefix, name, err)
	}
	return nil
}

// manifest reads the manifest of the backup name.
func (b *bucketClient) manifest(ctx context.Context, name string) (manifest, error) {
	data, err := b.get(ctx, name+".manifest.json")
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("the manifest of %s: %w: %s", name, err, data)
	}
	return m, nil
}

// newestComplete is the newest backup at the prefix, by the timestamp in its name, whose manifest is there.
func (b *bucketClient) newestComplete(ctx context.Context) (string, error) {
	out, err := b.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &b.prefix})
	if err != nil {
		return "", fmt.Errorf("listing %s: %w", b.prefix, err)
	}
	keys := map[string]bool{}
	var backups []string
	for _, o := range out.Contents {
		name := strings.TrimPrefix(aws.ToString(o.Key), b.prefix)
		keys[name] = true
		if _, ok := backupTime(name); ok && strings.HasSuffix(name, ".sql.zst") {
			backups = append(backups, name)
		}
	}
	sort.Slice(backups, func(i, j int) bool {
		ti, _ := backupTime(backups[i])
		tj, _ := backupTime(backups[j])
		return ti.After(tj)
	})
	for _, name := range backups {
		if keys[name+".manifest.json"] {
			return name, nil
		}
	}
	return "", errors.New("no backup with a manifest at " + b.prefix)
}
