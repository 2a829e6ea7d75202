package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	certutil "k8s.io/client-go/util/cert"

	"github.com/tandem-dev/tandem/webhook/server"
)

// writeCert writes a self-signed serving certificate for 127.0.0.1 (client-go's cert util) into dir as the
// kubelet projects the Secret cert-manager writes: tls.crt, tls.key and ca.crt are symlinks through ..data to a
// timestamped directory, and an update swaps ..data in one rename. It returns the serving certificate (DER), to
// tell which one a server presents.
func writeCert(t *testing.T, dir string, generation int) []byte {
	t.Helper()
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := pem.Decode(certPEM)
	if leaf == nil {
		t.Fatal("client-go's cert util wrote no PEM certificate")
	}
	version := filepath.Join(dir, fmt.Sprintf("..2026_%d", generation))
	must(t, os.Mkdir(version, 0o755))
	must(t, os.WriteFile(filepath.Join(version, "tls.key"), keyPEM, 0o600))
	must(t, os.WriteFile(filepath.Join(version, "tls.crt"), certPEM, 0o644))
	must(t, os.WriteFile(filepath.Join(version, "ca.crt"), certPEM, 0o644))
	must(t, os.Symlink(filepath.Base(version), filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if _, err := os.Lstat(filepath.Join(dir, f)); os.IsNotExist(err) {
			must(t, os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)))
		}
	}
	return leaf.Bytes
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestServe(t *testing.T) {
	certDir := t.TempDir()
	first := writeCert(t, certDir, 1)
	opts := server.Options{
		CertDir: certDir, Host: "127.0.0.1", Port: freePort(t),
		MetricsAddr: "127.0.0.1:" + strconv.Itoa(freePort(t)), ProbeAddr: "127.0.0.1:" + strconv.Itoa(freePort(t)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, opts, logr.Discard()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	waitFor(t, func() bool { return get(t, "http://"+opts.ProbeAddr+"/readyz") == http.StatusOK }, "/readyz to answer 200")
	if code := get(t, "http://"+opts.ProbeAddr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	url := "https://" + net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)) + server.PodPath
	metricsURL := "http://" + opts.MetricsAddr + "/metrics"
	injectedBefore := sample(t, fetch(t, metricsURL), `tandem_pod_injections_total{profile="postgres",result="injected"}`)
	resp, err := client.Post(url, "application/json", bytes.NewReader(review(admissionv1.Create, dbPod)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/1.1" || !strings.Contains(string(body), `"patchType":"JSONPatch"`) {
		t.Errorf("%s answer: %s", resp.Proto, body)
	}
	if !bytes.Equal(servedCert(t, client, url), first) {
		t.Fatal("the server does not present the certificate in its cert dir")
	}

	renewed := writeCert(t, certDir, 2) // cert-manager renews the certificate; the kubelet swaps the Secret volume's ..data
	waitFor(t, func() bool { return bytes.Equal(servedCert(t, client, url), renewed) }, "the renewed certificate to be served without a restart")

	metrics := fetch(t, metricsURL)
	if got := sample(t, metrics, `tandem_pod_injections_total{profile="postgres",result="injected"}`) - injectedBefore; got != 1 {
		t.Errorf("/metrics counted %v injections for this server's one, want 1", got)
	}
	if !strings.Contains(metrics, `controller_runtime_webhook_requests_total{code="200",webhook="/mutate-v1-pod"}`) {
		t.Error("/metrics has no controller-runtime webhook request count for /mutate-v1-pod")
	}
}

// sample returns the value of the series named exactly so in a Prometheus text exposition, 0 when absent.
func sample(t *testing.T, exposition, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

func TestServeRefusesABadConfiguration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	must(t, os.WriteFile(path, []byte("jobs: {backoffLimit: -1}\n"), 0o600))
	err := server.Run(context.Background(), server.Options{ConfigPath: path, Port: freePort(t)}, logr.Discard())
	if err == nil || !strings.Contains(err.Error(), "jobs.backoffLimit") {
		t.Errorf("Run = %v, want an error naming jobs.backoffLimit", err)
	}
}

// servedCert returns the certificate (DER) the server at url presents.
func servedCert(t *testing.T, c *http.Client, url string) []byte {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0].Raw
}

func get(t *testing.T, url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls until cond holds; it waits for behaviour, it does not time it.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
