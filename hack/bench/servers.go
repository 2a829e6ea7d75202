package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tandem-dev/tandem/webhook/podinject/injecttest"
)

// binaries are the three servers' executables.
type binaries struct{ floor, noop, tandem string }

// build compiles the floor, the no-op server and, unless a binary is given, tandem, as `make build` does.
func build(ctx context.Context, dir, tandem string) (binaries, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return binaries{}, err
	}
	bins := binaries{floor: filepath.Join(dir, "floor"), noop: filepath.Join(dir, "noop"), tandem: tandem}
	pkgs := map[string]string{bins.floor: "./hack/bench/floor", bins.noop: "./hack/bench/noop"}
	if tandem == "" {
		bins.tandem = filepath.Join(dir, "tandem")
		pkgs[bins.tandem] = "./cmd/tandem"
	} else if bins.tandem, err = filepath.Abs(tandem); err != nil {
		return binaries{}, err
	}
	fmt.Println("Building the servers...")
	for out, pkg := range pkgs {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return binaries{}, fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return bins, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", errors.New("run bench from tandem's repository: it builds the servers from their source")
	}
	return filepath.Dir(gomod), nil
}

// serverSpec says how to start one server.
type serverSpec struct {
	name string
	bin  string
	// args returns the command line for the given ports.
	args func(certDir string, port, metricsPort, probePort int) []string
	path string
	// probed servers answer /readyz on probePort; the others are ready when they answer HTTPS.
	probed bool
}

func floorSpec(bin string) serverSpec {
	return serverSpec{name: "floor", bin: bin, path: "/mutate-v1-pod", args: func(certDir string, port, _, _ int) []string {
		return []string{"--port", strconv.Itoa(port), "--cert-dir", certDir}
	}}
}

func noopSpec(bin string) serverSpec {
	return serverSpec{name: "no-op controller-runtime", bin: bin, path: "/mutate-v1-pod", args: func(certDir string, port, _, _ int) []string {
		return []string{"--port", strconv.Itoa(port), "--cert-dir", certDir}
	}}
}

func tandemSpec(bin string) serverSpec {
	return serverSpec{name: "tandem", bin: bin, path: "/mutate-v1-pod", probed: true, args: func(certDir string, port, metricsPort, probePort int) []string {
		return []string{"webhook", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--cert-dir", certDir,
			"--metrics-bind-address", "127.0.0.1:" + strconv.Itoa(metricsPort),
			"--health-probe-bind-address", "127.0.0.1:" + strconv.Itoa(probePort)}
	}}
}

// server is one running server process.
type server struct {
	name string
	url  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  string
	// ready is how long the process took from its start to answer /readyz 200 (probed servers only).
	ready time.Duration
	// idleRSS and peakRSS are in bytes: before the load, and the most over the whole run.
	idleRSS, peakRSS uint64
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// start starts the server and waits until it is ready, at most 30 seconds.
func start(ctx context.Context, spec serverSpec, certDir, logDir string, roots *x509.CertPool) (*server, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, strings.ReplaceAll(spec.name, " ", "-")+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(spec.bin, spec.args(certDir, ports[0], ports[1], ports[2])...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The server dies with bench even when bench is killed without a chance to stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s := &server{name: spec.name, url: fmt.Sprintf("https://127.0.0.1:%d%s?timeout=10s", ports[0], spec.path), cmd: cmd, done: make(chan struct{}), log: logPath}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", spec.name, err)
	}
	go func() { _ = cmd.Wait(); close(s.done) }()

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}
	readyURL := s.url
	if spec.probed {
		readyURL = fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2])
	}
	for deadline := began.Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if resp, err := client.Get(readyURL); err == nil {
			resp.Body.Close()
			if !spec.probed || resp.StatusCode == http.StatusOK {
				s.ready = time.Since(began)
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s exited before it was ready; its log: %s", spec.name, tail(logPath))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s not ready after 30s; its log: %s", spec.name, tail(logPath))
		}
	}
}

// stop asks the server to stop and kills it after 5 seconds.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// checkAnswer posts one review and checks that the answer allows the pod with a JSON patch.
func (s *server) checkAnswer(ctx context.Context, body []byte, roots *x509.CertPool) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer client.CloseIdleConnections()
	req, err := newRequest(ctx, s.url, body)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &review); err != nil || resp.StatusCode != http.StatusOK || review.Response == nil ||
		!review.Response.Allowed || len(review.Response.Patch) == 0 || review.Response.UID != reviewUID {
		return fmt.Errorf("%s answered %s: %s", s.name, resp.Status, b)
	}
	return nil
}

func newRequest(ctx context.Context, url string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, */*")
	req.Header.Set("User-Agent", "kube-apiserver-admission")
	return req, nil
}

const reviewUID = "7d2e4b8a-5c1f-4e3a-9b6d-0f8c2a1e3d57"

// podReview is the AdmissionReview kube-apiserver sends when the StatefulSet controller creates the ~5 KB
// PostgreSQL Pod.
func podReview() []byte {
	podGVK := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	podGVR := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	no := false
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: reviewUID, Kind: podGVK, Resource: podGVR, RequestKind: &podGVK, RequestResource: &podGVR,
			Name: "orders-db-0", Namespace: "databases", Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:statefulset-controller",
				UID: "2b5e0c7a-3f41-4d8e-a6b9-8c1d2e3f4a5b", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}},
			Object:  runtime.RawExtension{Raw: injecttest.PostgresPod()},
			DryRun:  &no,
			Options: runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"kube-controller-manager"}`)},
		},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// freePorts returns n ports free on 127.0.0.1 now.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// tail returns the end of a log file, for an error message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + string(b)
}
