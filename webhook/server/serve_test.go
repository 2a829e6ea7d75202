package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
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

	"github.com/tandem-dev/tandem/webhook/server"
)

// writeCert writes a self-signed serving certificate for 127.0.0.1 into dir as the kubelet projects the Secret
// cert-manager writes: tls.crt, tls.key and ca.crt are symlinks through ..data to a timestamped directory, and
// an update swaps ..data in one rename.
func writeCert(t *testing.T, dir string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "tandem"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	version := filepath.Join(dir, fmt.Sprintf("..2026_%d", serial))
	must(t, os.Mkdir(version, 0o755))
	must(t, os.WriteFile(filepath.Join(version, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	must(t, os.WriteFile(filepath.Join(version, "tls.crt"), certPEM, 0o644))
	must(t, os.WriteFile(filepath.Join(version, "ca.crt"), certPEM, 0o644))
	must(t, os.Symlink(filepath.Base(version), filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if _, err := os.Lstat(filepath.Join(dir, f)); os.IsNotExist(err) {
			must(t, os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)))
		}
	}
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
	writeCert(t, certDir, 1)
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
	if serial := servedSerial(t, client, url); serial != 1 {
		t.Fatalf("serving certificate %d, want 1", serial)
	}

	writeCert(t, certDir, 2) // cert-manager renews the certificate; the kubelet swaps the Secret volume's ..data
	waitFor(t, func() bool { return servedSerial(t, client, url) == 2 }, "the renewed certificate to be served without a restart")

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

func servedSerial(t *testing.T, c *http.Client, url string) int64 {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
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
