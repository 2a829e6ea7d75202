// Package charts_test renders the Helm chart with the pinned helm (HELM, from hack/tools.sh) and checks what
// users would install: lint, the schema, every object and the webhook configuration, in each TLS mode.
package charts_test

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/tandem-dev/tandem/webhook/config"
)

const (
	chart       = "tandem"
	kubeVersion = "1.37.2"
)

func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		t.Fatal("HELM is not set: run `make unit`, or HELM=$(hack/tools.sh helm) go test ./charts/")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", errors.New(stderr.String())
	}
	return stdout.String(), nil
}

// render runs helm template and returns the objects by kind and name.
func render(t *testing.T, release, namespace string, args ...string) map[string]*unstructured.Unstructured {
	t.Helper()
	out, err := helm(t, append([]string{"template", release, chart, "-n", namespace, "--kube-version", kubeVersion}, args...)...)
	if err != nil {
		t.Fatalf("helm template: %s", err)
	}
	objs := map[string]*unstructured.Unstructured{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if len(u.Object) > 0 {
			objs[u.GetKind()+"/"+u.GetName()] = u
		}
	}
}

func typed(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if u == nil {
		t.Fatal("object not rendered")
	}
	data, _ := u.MarshalJSON()
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s/%s: %v", u.GetKind(), u.GetName(), err)
	}
}

func TestLint(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	for _, values := range append([]string{""}, files...) {
		args := []string{"lint", "--strict", chart, "--kube-version", kubeVersion}
		if values != "" {
			args = append(args, "-f", values)
		}
		if out, err := helm(t, args...); err != nil {
			t.Errorf("helm lint %s: %s%s", values, out, err)
		}
	}
}

func TestSchemaRejectsTyposAndWrongTypes(t *testing.T) {
	for _, set := range []string{"replicaCont=3", "webhook.pods.failurePolicy=Sometimes", "tls.mode=vault", "image.pullPolicy=Maybe",
		"webhook.timeoutSeconds=60", "podDisruptionBudget.minAvilable=1"} {
		key, _, _ := strings.Cut(set, "=")
		leaf := key[strings.LastIndex(key, ".")+1:]
		_, err := helm(t, "template", "t", chart, "--kube-version", kubeVersion, "--set", set)
		if err == nil || !strings.Contains(err.Error(), leaf) {
			t.Errorf("--set %s: err = %v, want the schema to name %s", set, err, leaf)
		}
	}
}

func TestDefaultValues(t *testing.T) {
	objs := render(t, "tandem", "tandem-system")
	for key, o := range objs {
		if len(o.GetName()) > 63 {
			t.Errorf("%s: name longer than 63", key)
		}
		for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/component", "app.kubernetes.io/managed-by"} {
			if o.GetLabels()[l] == "" {
				t.Errorf("%s has no label %s", key, l)
			}
		}
		if strings.Contains(o.GetKind(), "Role") {
			t.Errorf("%s: tandem calls no Kubernetes API and needs no RBAC", key)
		}
	}

	var d appsv1.Deployment
	typed(t, objs["Deployment/tandem"], &d)
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if *d.Spec.Replicas != 2 || pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken ||
		pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
		*c.SecurityContext.AllowPrivilegeEscalation || !*c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.Capabilities.Drop[0] != "ALL" {
		t.Errorf("deployment is not restricted, read-only, tokenless, 2 replicas: %+v", d.Spec)
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.Lifecycle.PreStop.Sleep.Seconds != 5 {
		t.Errorf("probes or preStop: %+v %+v %+v", c.ReadinessProbe, c.LivenessProbe, c.Lifecycle)
	}
	for _, m := range c.VolumeMounts {
		if m.SubPath != "" {
			t.Errorf("mount %s uses subPath, which never sees ConfigMap or Secret updates", m.Name)
		}
	}
	if !slices.Contains(c.Args, "--config=/etc/tandem/config/config.yaml") || !slices.Contains(c.Args, "--cert-dir=/etc/tandem/tls") {
		t.Errorf("args = %v", c.Args)
	}
	if len(pod.TopologySpreadConstraints) != 1 || pod.TopologySpreadConstraints[0].TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("replicas are not spread across nodes: %+v", pod.TopologySpreadConstraints)
	}
	if objs["PodDisruptionBudget/tandem"] == nil || objs["Certificate/tandem"] == nil || objs["Issuer/tandem-selfsigned"] == nil {
		t.Errorf("missing objects; rendered %v", keys(objs))
	}
	dns, _, _ := unstructured.NestedStringSlice(objs["Certificate/tandem"].Object, "spec", "dnsNames")
	if !slices.Contains(dns, "tandem.tandem-system.svc") {
		t.Errorf("certificate DNS names %v lack the Service's", dns)
	}

	var hooks admissionregistrationv1.MutatingWebhookConfiguration
	typed(t, objs["MutatingWebhookConfiguration/tandem"], &hooks)
	if hooks.Annotations["cert-manager.io/inject-ca-from"] != "tandem-system/tandem" {
		t.Errorf("CA injection annotation = %v", hooks.Annotations)
	}
	if len(hooks.Webhooks) != 3 {
		t.Fatalf("%d webhooks", len(hooks.Webhooks))
	}
	for _, h := range hooks.Webhooks {
		if *h.SideEffects != admissionregistrationv1.SideEffectClassNone || !slices.Equal(h.AdmissionReviewVersions, []string{"v1"}) ||
			*h.TimeoutSeconds > 10 || len(h.MatchConditions) != 1 || h.ClientConfig.Service.Name != "tandem" {
			t.Errorf("%s: %+v", h.Name, h)
		}
		excluded := h.NamespaceSelector.MatchExpressions[0]
		if excluded.Key != "kubernetes.io/metadata.name" || !slices.Contains(excluded.Values, "tandem-system") || !slices.Contains(excluded.Values, "kube-system") ||
			h.NamespaceSelector.MatchExpressions[1].Key != "tandem.dev/disabled" {
			t.Errorf("%s: namespaceSelector %+v", h.Name, h.NamespaceSelector)
		}
	}
	pods := hooks.Webhooks[0]
	if pods.Name != "pods.tandem.dev" || *pods.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy ||
		!strings.Contains(pods.MatchConditions[0].Expression, "'tandem.dev/backup' in object.metadata.annotations") {
		t.Errorf("pod webhook: %+v", pods)
	}

	var cm corev1.ConfigMap
	typed(t, objs["ConfigMap/tandem-config"], &cm)
	cfg, err := config.Parse([]byte(cm.Data["config.yaml"]))
	if err != nil {
		t.Fatalf("the default ConfigMap is not a configuration tandem accepts: %v", err)
	}
	// The built-in profiles run the backup image of the chart's own version.
	if want := "ghcr.io/tandem-dev/tandem-backup:v" + chartAppVersion(t); cfg.BackupImage != want || cfg.Profiles["postgres"].Image != want {
		t.Errorf("backup image %q, postgres profile image %q, want %q", cfg.BackupImage, cfg.Profiles["postgres"].Image, want)
	}
}

func TestEveryValue(t *testing.T) {
	objs := render(t, "tandem", "platform", "-f", filepath.Join(chart, "ci", "full-values.yaml"))
	var d appsv1.Deployment
	typed(t, objs["Deployment/platform-tandem"], &d)
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "registry.example.com/platform/tandem@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" ||
		!slices.Contains(c.Args, "--port=10443") || d.Spec.Template.Spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("deployment: image %s, args %v", c.Image, c.Args)
	}
	var hooks admissionregistrationv1.MutatingWebhookConfiguration
	typed(t, objs["MutatingWebhookConfiguration/platform-tandem"], &hooks)
	if *hooks.Webhooks[0].FailurePolicy != admissionregistrationv1.Ignore || *hooks.Webhooks[1].FailurePolicy != admissionregistrationv1.Fail ||
		!slices.Contains(hooks.Webhooks[0].NamespaceSelector.MatchExpressions[0].Values, "monitoring") ||
		hooks.Webhooks[0].NamespaceSelector.MatchLabels["tandem.dev/enabled"] != "true" || len(hooks.Webhooks[0].NamespaceSelector.MatchExpressions) != 3 {
		t.Errorf("webhooks: %+v", hooks.Webhooks)
	}
	if objs["Issuer/platform-tandem-selfsigned"] != nil {
		t.Error("a self-signed Issuer was made although issuerRef names one")
	}
	var cm corev1.ConfigMap
	typed(t, objs["ConfigMap/platform-tandem-config"], &cm)
	cfg, err := config.Parse([]byte(cm.Data["config.yaml"]))
	if err != nil {
		t.Fatalf("the chart's config is not a configuration tandem accepts: %v", err)
	}
	if cfg.Profiles["postgres"].Native() || cfg.Profiles["mysql"] != nil || *cfg.Jobs.TTLSecondsAfterFinished != 600 {
		t.Errorf("config = %+v", cfg)
	}
	if want := "registry.example.com/platform/tandem-backup@sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"; cfg.Profiles["mongodb"].Image != want {
		t.Errorf("mongodb profile image %q, want %q", cfg.Profiles["mongodb"].Image, want)
	}
}

func TestHelmGeneratedCertificate(t *testing.T) {
	objs := render(t, "tandem", "tandem-system", "--set", "tls.mode=helm")
	var secret corev1.Secret
	typed(t, objs["Secret/tandem-tls"], &secret)
	var hooks admissionregistrationv1.MutatingWebhookConfiguration
	typed(t, objs["MutatingWebhookConfiguration/tandem"], &hooks)
	for _, h := range hooks.Webhooks {
		if !bytes.Equal(h.ClientConfig.CABundle, secret.Data["ca.crt"]) {
			t.Errorf("%s: caBundle is not the Secret's CA", h.Name)
		}
	}
	if objs["Certificate/tandem"] != nil || hooks.Annotations["cert-manager.io/inject-ca-from"] != "" {
		t.Error("cert-manager objects rendered in helm mode")
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(secret.Data["ca.crt"])
	block, _ := pem.Decode(secret.Data["tls.crt"])
	if block == nil {
		t.Fatal("tls.crt is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "tandem.tandem-system.svc", Roots: roots}); err != nil {
		t.Errorf("the serving certificate does not verify for the Service's name: %v", err)
	}
}

func TestUserProvidedSecret(t *testing.T) {
	if _, err := helm(t, "template", "t", chart, "--kube-version", kubeVersion, "--set", "tls.mode=secret"); err == nil || !strings.Contains(err.Error(), "tls.secret.name") {
		t.Errorf("secret mode without a name: err = %v", err)
	}
	ca := base64.StdEncoding.EncodeToString([]byte("-----BEGIN CERTIFICATE-----\n"))
	objs := render(t, "tandem", "tandem-system", "--set", "tls.mode=secret", "--set", "tls.secret.name=my-tls", "--set", "tls.secret.caBundle="+ca)
	var hooks admissionregistrationv1.MutatingWebhookConfiguration
	typed(t, objs["MutatingWebhookConfiguration/tandem"], &hooks)
	var d appsv1.Deployment
	typed(t, objs["Deployment/tandem"], &d)
	if base64.StdEncoding.EncodeToString(hooks.Webhooks[0].ClientConfig.CABundle) != ca || d.Spec.Template.Spec.Volumes[1].Secret.SecretName != "my-tls" {
		t.Errorf("caBundle or secret not the user's")
	}
}

func TestLongReleaseNamesStayValid(t *testing.T) {
	release := strings.Repeat("a", 53)
	for key, o := range render(t, release, "ns") {
		if len(o.GetName()) > 63 || strings.HasSuffix(o.GetName(), "-") {
			t.Errorf("%s: name %q is not a valid 63-character name", key, o.GetName())
		}
	}
}

// chartAppVersion reads appVersion from Chart.yaml.
func chartAppVersion(t *testing.T) string {
	data, err := os.ReadFile(filepath.Join(chart, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil || c.AppVersion == "" {
		t.Fatalf("Chart.yaml: no appVersion (%v)", err)
	}
	return c.AppVersion
}

func keys(m map[string]*unstructured.Unstructured) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestEveryValueIsDocumented checks that every key of values.yaml has a "# --" comment, its own or its map's:
// the chart's README is generated from them (go run ./hack/docgen), and helm-docs lists an undocumented value
// with an empty description instead of failing.
func TestEveryValueIsDocumented(t *testing.T) {
	values, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var path []string
	documented, covered := false, -1 // covered: depth of a documented map whose keys need no comment of their own
	for _, line := range strings.Split(string(values), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			documented = false
		case strings.HasPrefix(trimmed, "# --"):
			documented = true
		case strings.HasPrefix(trimmed, "#"):
		default:
			key, _, ok := strings.Cut(trimmed, ":")
			if !ok || strings.HasPrefix(key, "-") {
				continue
			}
			depth := (len(line) - len(strings.TrimLeft(line, " "))) / 2
			path = append(path[:min(depth, len(path))], key)
			leaf := !strings.HasSuffix(trimmed, ":")
			name := strings.Join(path, ".")
			if depth <= covered {
				covered = -1
			}
			if documented && !leaf {
				covered = depth
			}
			if leaf && !documented && covered < 0 {
				t.Errorf("values.yaml: %s has no \"# --\" comment", name)
			}
			documented = false
		}
	}
}
