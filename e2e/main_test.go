// Package e2e proves tandem through a real API server. By default it starts a local control plane (see package
// controlplane: etcd, kube-apiserver and kube-controller-manager built by hack/control-plane.sh, and tandem
// in-process). With E2E_KUBECONFIG it runs against an existing cluster where tandem is installed; then
// E2E_TANDEM_CONFIG names the configuration tandem runs with there (the built-in one when unset).
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tandem-dev/tandem/e2e/controlplane"
	"github.com/tandem-dev/tandem/webhook/config"
)

var (
	k8s     client.Client
	restCfg *rest.Config
	// tandemCfg is the configuration tandem runs with, so tests know the values it sets.
	tandemCfg *config.Config
	// plane is the local control plane; nil against an existing cluster.
	plane *controlplane.Plane
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	log := logr.Discard()
	if os.Getenv("E2E_VERBOSE") != "" {
		log = zap.New(zap.UseDevMode(true))
	}
	ctrl.SetLogger(log)
	var err error
	if kubeconfig := os.Getenv("E2E_KUBECONFIG"); kubeconfig != "" {
		if restCfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return 0, err
		}
		if tandemCfg, err = config.Load(os.Getenv("E2E_TANDEM_CONFIG")); err != nil {
			return 0, err
		}
	} else {
		if tandemCfg, err = config.Load(localConfig); err != nil {
			return 0, err
		}
		var output *os.File
		if os.Getenv("E2E_VERBOSE") != "" {
			output = os.Stderr
		}
		crds := os.Getenv("CERT_MANAGER_CRDS")
		if crds == "" {
			return 0, errors.New("CERT_MANAGER_CRDS is not set: export CERT_MANAGER_CRDS=\"$(hack/tools.sh cert-manager-crds)\" (make e2e does)")
		}
		plane, err = controlplane.Start(controlplane.Options{Chart: chartDir, CRDDirs: []string{crds}, TandemConfig: localConfig,
			Controllers: controlplane.DefaultControllers, Log: log, Output: output})
		if err != nil {
			return 0, err
		}
		defer plane.Stop()
		restCfg = plane.Config
	}
	if k8s, err = client.New(restCfg, client.Options{}); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

const (
	localConfig = "testdata/config.yaml"
	chartDir    = "../charts/tandem"
)

// namespace creates a namespace for one test, with the labels given, and deletes it after.
func namespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + rand.String(6), Labels: labels}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ns) })
	return ns.Name
}

// eventually polls cond until it holds; it waits for the cluster to act, it does not time anything.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// clientDryRun is server-side dry run, as kubectl --dry-run=server sends it.
var clientDryRun = client.CreateOptions{DryRun: []string{metav1.DryRunAll}}
