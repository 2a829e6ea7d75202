// Package controlplane runs a real local control plane for tandem's end-to-end suite and `make demo`: etcd and
// kube-apiserver through controller-runtime's envtest, kube-controller-manager beside them, and tandem's webhook
// server in-process, registered with the MutatingWebhookConfiguration the Helm chart renders (envtest re-points
// only its clientConfig at the local server, and sets the caBundle as cert-manager's CA injector would). The
// binaries come from hack/control-plane.sh (KUBEBUILDER_ASSETS), helm from hack/tools.sh (HELM).
package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"io"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/tandem-dev/tandem/webhook/server"
)

// Namespace and Release are where the chart is rendered for the local control plane, as a user installs it.
const (
	Namespace   = "tandem-system"
	Release     = "tandem"
	KubeVersion = "1.37.2"
)

// Render runs `helm template` on the chart at dir, with extra helm arguments, and returns its documents.
func Render(helm, dir string, args ...string) ([][]byte, error) {
	if helm == "" {
		return nil, errors.New("no helm: set HELM=$(hack/tools.sh helm) (make e2e does)")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm, append([]string{"template", Release, dir, "-n", Namespace, "--kube-version", KubeVersion}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm template %s: %v: %s", dir, err, stderr.String())
	}
	var docs [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(&stdout))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, doc)
		}
	}
}

// WebhookConfigurations are the chart's mutating and validating webhook configurations, rendered with the
// chart's default values.
func WebhookConfigurations(helm, chart string) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	docs, err := Render(helm, chart)
	if err != nil {
		return nil, nil, err
	}
	var (
		mutating   *admissionregistrationv1.MutatingWebhookConfiguration
		validating *admissionregistrationv1.ValidatingWebhookConfiguration
	)
	for _, doc := range docs {
		m := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := yaml.Unmarshal(doc, m); err == nil && m.Kind == "MutatingWebhookConfiguration" {
			mutating = m
		}
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := yaml.Unmarshal(doc, v); err == nil && v.Kind == "ValidatingWebhookConfiguration" {
			validating = v
		}
	}
	if mutating == nil || validating == nil {
		return nil, nil, fmt.Errorf("the chart at %s renders no MutatingWebhookConfiguration or no ValidatingWebhookConfiguration", chart)
	}
	return mutating, validating, nil
}

// DefaultControllers are the kube-controller-manager controllers the suite relies on: Jobs, CronJobs, the
// TTL-after-finished controller, the garbage collector (which finishes the TTL controller's foreground
// deletions) and StatefulSets.
var DefaultControllers = []string{"job-controller", "cronjob-controller", "ttl-after-finished-controller",
	"garbage-collector-controller", "statefulset-controller"}

// Options configure a local control plane.
type Options struct {
	// Assets is the directory of kube-apiserver, etcd and kube-controller-manager; KUBEBUILDER_ASSETS when empty.
	Assets string
	// Helm is the helm binary and Chart the chart whose MutatingWebhookConfiguration registers tandem; HELM
	// when empty.
	Helm, Chart string
	// CRDDirs hold CustomResourceDefinitions to install, such as cert-manager's.
	CRDDirs []string
	// TandemConfig is tandem's configuration file; empty for the built-in configuration.
	TandemConfig string
	// Controllers run in kube-controller-manager; none starts no controller manager.
	Controllers []string
	// Log receives tandem's logs.
	Log logr.Logger
	// Output receives the control plane's own output; nil discards it.
	Output *os.File
}

// Plane is a running local control plane with tandem.
type Plane struct {
	Config *rest.Config
	env    *envtest.Environment
	opts   Options
	tandem context.CancelFunc
	done   chan error
	kcm    *exec.Cmd
	dir    string
}

// Start starts etcd, kube-apiserver, tandem and, with Controllers, kube-controller-manager. Stop ends them all.
func Start(opts Options) (*Plane, error) {
	if opts.Assets == "" {
		opts.Assets = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if opts.Assets == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: export KUBEBUILDER_ASSETS=\"$(hack/control-plane.sh)\" first (make e2e does)")
	}
	if opts.Helm == "" {
		opts.Helm = os.Getenv("HELM")
	}
	mutating, validating, err := WebhookConfigurations(opts.Helm, opts.Chart)
	if err != nil {
		return nil, err
	}
	p := &Plane{opts: opts, env: &envtest.Environment{
		BinaryAssetsDirectory:    opts.Assets,
		CRDDirectoryPaths:        opts.CRDDirs,
		ErrorIfCRDPathMissing:    true,
		AttachControlPlaneOutput: opts.Output != nil,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			MutatingWebhooks:   []*admissionregistrationv1.MutatingWebhookConfiguration{mutating},
			ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{validating},
		},
	}}
	// Advertise loopback, which kube-apiserver 1.37 accepts only without an endpoint reconciler: otherwise it
	// advertises the default route's address, and a machine with none cannot start it.
	p.env.ControlPlane.GetAPIServer().Configure().
		Set("advertise-address", "127.0.0.1").
		Set("endpoint-reconciler-type", "none")
	if p.Config, err = p.env.Start(); err != nil {
		return nil, fmt.Errorf("starting the control plane from %s: %w", opts.Assets, err)
	}
	if p.dir, err = os.MkdirTemp("", "tandem-control-plane-"); err != nil {
		p.Stop()
		return nil, err
	}
	if err := p.StartTandem(); err != nil {
		p.Stop()
		return nil, err
	}
	if len(opts.Controllers) > 0 {
		if err := p.startControllerManager(); err != nil {
			p.Stop()
			return nil, err
		}
	}
	return p, nil
}

// Webhook is where tandem serves, with the CA the API server trusts for it: for tests that register webhooks of
// their own on the same certificate.
func (p *Plane) Webhook() (host string, certDir string, caData []byte) {
	w := p.env.WebhookInstallOptions
	return w.LocalServingHost, w.LocalServingCertDir, w.LocalServingCAData
}

// Helm is the helm binary the plane renders the chart with.
func (p *Plane) Helm() string { return p.opts.Helm }

// StartTandem serves tandem's webhook where the webhook configuration points, and waits until it is ready.
func (p *Plane) StartTandem() error {
	ctx, cancel := context.WithCancel(context.Background())
	probe := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort()))
	w := p.env.WebhookInstallOptions
	opts := server.Options{ConfigPath: p.opts.TandemConfig, CertDir: w.LocalServingCertDir, Host: w.LocalServingHost, Port: w.LocalServingPort,
		MetricsAddr: "0", ProbeAddr: probe}
	p.tandem, p.done = cancel, make(chan error, 1)
	go func() { p.done <- server.Run(ctx, opts, p.opts.Log) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get("http://" + probe + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.done:
			p.tandem = nil
			return fmt.Errorf("tandem stopped: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("tandem did not become ready within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StopTandem stops tandem's webhook server; the API server's webhook configuration stays.
func (p *Plane) StopTandem() {
	if p.tandem != nil {
		p.tandem()
		<-p.done
		p.tandem = nil
	}
}

func (p *Plane) startControllerManager() error {
	path := filepath.Join(p.opts.Assets, "kube-controller-manager")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("kube-controller-manager not found beside kube-apiserver (%w): run hack/control-plane.sh", err)
	}
	user, err := p.env.ControlPlane.AddUser(envtest.User{Name: "kube-controller-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfigPath := filepath.Join(p.dir, "kube-controller-manager.kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return err
	}
	var logs bytes.Buffer
	p.kcm = exec.Command(path, "--kubeconfig="+kubeconfigPath, "--leader-elect=false", "--secure-port=0",
		"--controllers="+strings.Join(p.opts.Controllers, ","))
	p.kcm.Stdout, p.kcm.Stderr = &logs, &logs
	if p.opts.Output != nil {
		p.kcm.Stdout, p.kcm.Stderr = p.opts.Output, p.opts.Output
	}
	if err := p.kcm.Start(); err != nil {
		return fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = p.kcm.Wait(); close(exited) }()
	select {
	case <-exited:
		return fmt.Errorf("kube-controller-manager exited at start:\n%s", logs.String())
	case <-time.After(2 * time.Second):
		return nil
	}
}

// Stop ends every process Start started and removes their files.
func (p *Plane) Stop() {
	p.StopTandem()
	if p.kcm != nil && p.kcm.Process != nil {
		_ = p.kcm.Process.Kill()
	}
	_ = p.env.Stop()
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

// FreePort returns a TCP port free on loopback.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
