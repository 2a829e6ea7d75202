package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tandem-dev/tandem/e2e/controlplane"
)

// meshProxy is a second mutating webhook, as a service mesh would be: it appends a proxy container to every pod
// in the namespaces it is registered for, unless the pod has one.
func meshProxy(_ context.Context, req admission.Request) admission.Response {
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if slices.ContainsFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == "mesh-proxy" }) {
		return admission.Allowed("")
	}
	return admission.Patched("", jsonpatch.NewOperation("add", "/spec/containers/-", corev1.Container{Name: "mesh-proxy", Image: "mesh/proxy:1"}))
}

// TestAnotherMutatingWebhookInTheChain registers the mesh webhook before and after tandem, both with
// reinvocationPolicy IfNeeded, so the API server calls tandem again after the mesh changed the pod: the stored
// pod must hold exactly one backup sidecar and one proxy.
func TestAnotherMutatingWebhookInTheChain(t *testing.T) {
	if plane == nil {
		t.Skip("needs the local control plane: the suite's own webhook server is not reachable from an existing cluster's API server")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	host, certDir, caData := plane.Webhook()
	port := controlplane.FreePort()
	srv := webhook.NewServer(webhook.Options{Host: host, Port: port, CertDir: certDir})
	srv.Register("/mesh", &admission.Webhook{Handler: admission.HandlerFunc(meshProxy)})
	go func() { _ = srv.Start(ctx) }()
	waitForTLS(t, net.JoinHostPort(host, strconv.Itoa(port)))

	for _, order := range []string{"aa-mesh", "zz-mesh"} { // configurations are called in name order
		t.Run(order, func(t *testing.T) {
			ns := namespace(t, map[string]string{"mesh": order})
			hook := &admissionregistrationv1.MutatingWebhookConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: order},
				Webhooks: []admissionregistrationv1.MutatingWebhook{{
					Name:                    "proxy.mesh.example.com",
					AdmissionReviewVersions: []string{"v1"},
					SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
					ReinvocationPolicy:      ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
					ClientConfig: admissionregistrationv1.WebhookClientConfig{
						URL:      ptr.To(fmt.Sprintf("https://%s/mesh", net.JoinHostPort(host, strconv.Itoa(port)))),
						CABundle: caData,
					},
					Rules: []admissionregistrationv1.RuleWithOperations{{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
					}},
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"mesh": order}},
				}},
			}
			if err := k8s.Create(ctx, hook); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = k8s.Delete(ctx, hook) }()
			pod := examplePod(ns)
			// The configuration takes a moment to reach the API server's webhook cache.
			eventually(t, 30*time.Second, "the mesh webhook to act", func() (bool, error) {
				probe := examplePod(ns)
				probe.Name = "probe-" + strconv.FormatInt(time.Now().UnixNano(), 36)
				if err := k8s.Create(ctx, probe, &clientDryRun); err != nil {
					return false, err
				}
				return countContainers(probe, "mesh-proxy") == 1, nil
			})
			if err := k8s.Create(ctx, pod); err != nil {
				t.Fatal(err)
			}
			if n, m := countContainers(pod, "tandem-backup"), countContainers(pod, "mesh-proxy"); n != 1 || m != 1 {
				t.Errorf("%d backup sidecars and %d proxies: %v", n, m, names(pod))
			}
			checkInjected(t, pod)
		})
	}
}

// names lists the pod's containers, init containers first, as init:NAME.
func names(pod *corev1.Pod) string {
	var ns []string
	for _, c := range pod.Spec.InitContainers {
		ns = append(ns, "init:"+c.Name)
	}
	for _, c := range pod.Spec.Containers {
		ns = append(ns, c.Name)
	}
	return strings.Join(ns, ",")
}

func waitForTLS(t *testing.T, addr string) {
	t.Helper()
	eventually(t, 10*time.Second, "the mesh webhook server", func() (bool, error) {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return false, err
		}
		return true, c.Close()
	})
}
