// Command demo shows tandem in one command: it starts a local control plane (etcd, kube-apiserver and
// kube-controller-manager, from hack/control-plane.sh) with tandem's webhook, creates every manifest in
// examples/ in a fresh namespace, and prints what the API server stored. Everything it started stops when it
// ends, on Ctrl-C too. Run it with `make demo` from the repository's root; it needs KUBEBUILDER_ASSETS and HELM,
// which make sets.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tandem-dev/tandem/e2e/controlplane"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	ctrl.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println("Starting etcd, kube-apiserver, kube-controller-manager and tandem on 127.0.0.1 ...")
	plane, err := controlplane.Start(controlplane.Options{Chart: "charts/tandem", Controllers: controlplane.DefaultControllers, Log: logr.Discard()})
	if err != nil {
		return err
	}
	defer plane.Stop()
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}

	cfg := rest.CopyConfig(plane.Config)
	cfg.WarningHandler = warningPrinter{}
	k8s, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
	if err := k8s.Create(ctx, ns); err != nil {
		return err
	}
	files, _ := filepath.Glob("examples/*.yaml")
	sort.Strings(files)
	for _, f := range files {
		fmt.Printf("\n$ kubectl create -n demo -f %s\n", f)
		if err := create(ctx, k8s, f, ns.Name); err != nil {
			return err
		}
	}
	fmt.Println("\nWaiting for the StatefulSet controller's pod ...")
	var stsPod corev1.Pod
	for {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "orders-db-0"}, &stsPod); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return errors.New("interrupted")
		case <-time.After(200 * time.Millisecond):
		}
	}

	out, err := os.MkdirTemp("", "tandem-demo-")
	if err != nil {
		return err
	}
	fmt.Printf("\nWhat the API server stored (whole objects in %s):\n", out)
	var pods corev1.PodList
	var jobs batchv1.JobList
	var cronJobs batchv1.CronJobList
	var sets appsv1.StatefulSetList
	for _, l := range []client.ObjectList{&pods, &jobs, &cronJobs, &sets} {
		if err := k8s.List(ctx, l, client.InNamespace(ns.Name)); err != nil {
			return err
		}
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if len(p.OwnerReferences) > 0 && p.OwnerReferences[0].Kind == "Job" {
			continue // the Job controller's pods: the Job says it all
		}
		printPod(p)
		save(out, "pod-"+p.Name, p)
	}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		printJob("Job "+j.Name, j.Annotations, &j.Spec)
		save(out, "job-"+j.Name, j)
	}
	for i := range cronJobs.Items {
		cj := &cronJobs.Items[i]
		printJob(fmt.Sprintf("CronJob %s\n  successfulJobsHistoryLimit: %v  failedJobsHistoryLimit: %v\n  jobTemplate:", cj.Name,
			deref(cj.Spec.SuccessfulJobsHistoryLimit), deref(cj.Spec.FailedJobsHistoryLimit)), cj.Annotations, &cj.Spec.JobTemplate.Spec)
		save(out, "cronjob-"+cj.Name, cj)
	}
	fmt.Println("\nStopping everything the demo started.")
	return nil
}

// create creates each document of a manifest file in ns, as kubectl create does.
func create(ctx context.Context, k8s client.Client, file, ns string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		obj.SetNamespace(ns)
		if err := k8s.Create(ctx, obj); err != nil {
			fmt.Printf("Error from server: %v\n", err)
			continue
		}
		fmt.Printf("%s/%s created\n", strings.ToLower(obj.GetKind()), obj.GetName())
	}
}

type warningPrinter struct{}

func (warningPrinter) HandleWarningHeader(_ int, _ string, text string) {
	fmt.Printf("Warning: %s\n", text)
}

func printPod(p *corev1.Pod) {
	fmt.Printf("\nPod %s\n", p.Name)
	if v, ok := p.Annotations["tandem.dev/injected"]; ok {
		fmt.Printf("  tandem.dev/injected: %s\n", v)
	}
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		fmt.Printf("  container %-14s %s\n", c.Name, c.Image)
		if c.Name != "tandem-backup" {
			continue
		}
		for _, e := range c.Env {
			v := e.Value
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				v = fmt.Sprintf("(secret %s, key %s)", e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
			}
			fmt.Printf("    env %s=%s\n", e.Name, v)
		}
		for _, m := range c.VolumeMounts {
			fmt.Printf("    mount %s at %s\n", m.Name, m.MountPath)
		}
	}
	for _, v := range p.Spec.Volumes {
		kind := "emptyDir"
		if v.Secret != nil {
			kind = "secret " + v.Secret.SecretName
		} else if v.EmptyDir == nil {
			kind = "other"
		}
		fmt.Printf("  volume %-15s %s\n", v.Name, kind)
	}
}

func printJob(title string, ann map[string]string, s *batchv1.JobSpec) {
	fmt.Printf("\n%s\n  ttlSecondsAfterFinished: %v  backoffLimit: %v  template restartPolicy: %s\n", title,
		deref(s.TTLSecondsAfterFinished), deref(s.BackoffLimit), s.Template.Spec.RestartPolicy)
	if v, ok := ann["tandem.dev/defaulted"]; ok {
		fmt.Printf("  tandem.dev/defaulted: %s\n", v)
	}
}

func deref(p *int32) any {
	if p == nil {
		return "(unset)"
	}
	return *p
}

func save(dir, name string, obj client.Object) {
	obj.SetManagedFields(nil)
	data, err := yaml.Marshal(obj)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name+".yaml"), data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo: saving", name, err)
	}
}
