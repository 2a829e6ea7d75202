package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/podinject"
)

// PodPath is the endpoint of the pod injector.
const PodPath = "/mutate-v1-pod"

// PodMutator injects the backup sidecar into Pods on CREATE.
type PodMutator struct {
	Config *config.Store
	Log    logr.Logger
}

// Mutate answers one Pod admission request. Only CREATE mutates: a Pod's containers cannot change after it
// exists. A dry run gets the same answer, since tandem has no side effects to skip.
func (m *PodMutator) Mutate(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create || req.SubResource != "" {
		return admission.Allowed("")
	}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" {
		return wrongKind(m.Log, "tandem's "+PodPath+" endpoint", req)
	}
	pod, err := objectOf[corev1.Pod](req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err))
	}
	plan, err := podinject.New(m.Config.Get()).Plan(&pod.ObjectMeta, &pod.Spec)
	if err != nil {
		var refusal *podinject.Refusal
		if !errors.As(err, &refusal) {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		profile := pod.Annotations[annotations.Backup]
		countInjection(profile, podinject.Refused)
		m.Log.Info("refused backup sidecar injection", "pod", podKey(req.Namespace, pod), "profile", profile, "reason", err.Error())
		return admission.Denied(err.Error())
	}
	countInjection(plan.Profile, plan.Outcome)
	if plan.Outcome != podinject.Injected {
		return admission.Allowed("").WithWarnings(plan.Warnings...)
	}
	if log := m.Log.V(1); log.Enabled() { // the arguments cost even when the line is not logged
		log.Info("injected backup sidecar", "pod", podKey(req.Namespace, pod), "profile", plan.Profile, "dryRun", req.DryRun != nil && *req.DryRun)
	}
	return admission.Patched("", plan.Patch("", &pod.ObjectMeta, &pod.Spec)...).WithWarnings(plan.Warnings...)
}

// decodeReview decodes the review and its Pod in one pass; see typedMutator.
func (m *PodMutator) decodeReview(_ string, body []byte) (*admissionv1.AdmissionReview, bool) {
	return decodeTyped[corev1.Pod](body, "", "Pod")
}

// podKey names a pod in logs: controllers create pods from generateName, so at admission many have no name yet,
// and the namespace comes from the request, not the object.
func podKey(namespace string, pod *corev1.Pod) string {
	return objectKey(namespace, pod.Name, pod.GenerateName)
}
