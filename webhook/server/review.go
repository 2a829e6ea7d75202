// Package server answers the API server's AdmissionReviews: it decodes each review once, calls the pure
// mutators of the inject (and jobs) packages, and answers with their JSON patch and warnings. It also wires
// tandem's HTTPS, metrics and health servers.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime/debug"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// MaxRequestBytes bounds an AdmissionReview: two objects of at most 3 MiB each and the envelope, as
// controller-runtime allows.
const MaxRequestBytes = 7 << 20

// Mutator answers one admission request.
type Mutator interface {
	Mutate(ctx context.Context, req admission.Request) admission.Response
}

// Handler serves one webhook endpoint. It decodes the AdmissionReview with a single pass of encoding/json
// (controller-runtime's admission.Webhook makes a second pass only to learn the review's version), calls the
// Mutator, and turns a panic into an error answer instead of a dropped connection.
type Handler struct {
	Mutator Mutator
	Log     logr.Logger
}

var _ http.Handler = &Handler{}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	review, err := readReview(r)
	if err != nil {
		h.Log.Error(err, "bad admission request")
		writeReview(w, h.Log, &admissionv1.AdmissionReview{}, admission.Errored(http.StatusBadRequest, err))
		return
	}
	resp := h.mutate(r.Context(), admission.Request{AdmissionRequest: *review.Request})
	if err := resp.Complete(admission.Request{AdmissionRequest: *review.Request}); err != nil {
		resp = admission.Errored(http.StatusInternalServerError, fmt.Errorf("encoding the patch: %w", err))
		resp.UID = review.Request.UID
	}
	writeReview(w, h.Log, review, resp)
}

func (h *Handler) mutate(ctx context.Context, req admission.Request) (resp admission.Response) {
	defer func() {
		if r := recover(); r != nil {
			h.Log.Error(fmt.Errorf("%v", r), "panic while handling an admission request", "uid", req.UID, "stack", string(debug.Stack()))
			resp = admission.Errored(http.StatusInternalServerError, fmt.Errorf("tandem failed unexpectedly (%v); this is a bug in tandem", r))
		}
	}()
	return h.Mutator.Mutate(ctx, req)
}

func readReview(r *http.Request) (*admissionv1.AdmissionReview, error) {
	if r.Method != http.MethodPost {
		return nil, fmt.Errorf("method %s: an AdmissionReview is POSTed", r.Method)
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return nil, fmt.Errorf("content type %q: an AdmissionReview is application/json", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the request: %w", err)
	}
	if len(body) > MaxRequestBytes {
		return nil, fmt.Errorf("request larger than %d bytes", MaxRequestBytes)
	}
	review := &admissionv1.AdmissionReview{}
	if err := json.Unmarshal(body, review); err != nil {
		return nil, fmt.Errorf("decoding the AdmissionReview: %w", err)
	}
	if review.Kind != "AdmissionReview" || (review.APIVersion != "admission.k8s.io/v1" && review.APIVersion != "admission.k8s.io/v1beta1") {
		return nil, fmt.Errorf("expected an admission.k8s.io/v1 AdmissionReview, got %q %q", review.APIVersion, review.Kind)
	}
	if review.Request == nil {
		return nil, errors.New("the AdmissionReview has no request")
	}
	return review, nil
}

// writeReview answers with the same AdmissionReview version the request came in.
func writeReview(w http.ResponseWriter, log logr.Logger, req *admissionv1.AdmissionReview, resp admission.Response) {
	out := admissionv1.AdmissionReview{TypeMeta: req.TypeMeta, Response: &resp.AdmissionResponse}
	if out.APIVersion == "" {
		out.APIVersion, out.Kind = "admission.k8s.io/v1", "AdmissionReview"
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(&out); err != nil {
		log.Error(err, "writing the admission response")
	}
}
