// Package server answers the API server's AdmissionReviews: it decodes each review once, calls the pure
// mutators of the podinject and jobdefaults packages, and answers with their JSON patch and warnings. It also wires
// tandem's HTTPS, metrics and health servers.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tandem-dev/tandem/internal/patch"
)

// MaxRequestBytes bounds an AdmissionReview: two objects of at most 3 MiB each and the envelope, as
// controller-runtime allows.
const MaxRequestBytes = 7 << 20

// Mutator answers one admission request.
type Mutator interface {
	Mutate(ctx context.Context, req admission.Request) admission.Response
}

// typedMutator is a Mutator that knows the Go type of the objects its endpoint admits. Handler lets it decode the
// review, so that the object is decoded straight into that type in the same pass as the review, instead of being
// copied aside as raw JSON, checked and decoded again: most of a webhook's work is decoding.
type typedMutator interface {
	// decodeReview decodes body for the endpoint at path, with the object in req.Object.Object. It returns false
	// when it cannot (not JSON, another kind, an object that is not of its type), and Handler then decodes the
	// review with the object raw, as any Mutator gets it, which says what is wrong.
	decodeReview(path string, body []byte) (*admissionv1.AdmissionReview, bool)
}

// Handler serves one webhook endpoint. It decodes the AdmissionReview with a single pass of encoding/json, the
// object included when the Mutator knows its type (controller-runtime's admission.Webhook makes a second pass
// only to learn the review's version, and leaves the object to be decoded again), calls the Mutator, and turns a
// panic into an error answer instead of a dropped connection.
type Handler struct {
	Mutator Mutator
	Log     logr.Logger
}

var _ http.Handler = &Handler{}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	review, err := h.readReview(r)
	if err != nil {
		h.Log.Error(err, "bad admission request")
		writeReview(w, h.Log, metav1.TypeMeta{}, admission.Errored(http.StatusBadRequest, err))
		return
	}
	req := admission.Request{AdmissionRequest: *review.Request}
	resp := h.mutate(r.Context(), req)
	if err := complete(&resp, req); err != nil {
		resp = admission.Errored(http.StatusInternalServerError, fmt.Errorf("encoding the patch: %w", err))
		resp.UID = review.Request.UID
	}
	writeReview(w, h.Log, review.TypeMeta, resp)
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

func (h *Handler) readReview(r *http.Request) (*admissionv1.AdmissionReview, error) {
	if r.Method != http.MethodPost {
		return nil, fmt.Errorf("method %s: an AdmissionReview is POSTed", r.Method)
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return nil, fmt.Errorf("content type %q: an AdmissionReview is application/json", r.Header.Get("Content-Type"))
	}
	body := bodies.Get().(*bytes.Buffer)
	defer putBody(body)
	if err := readBody(r, body); err != nil {
		return nil, err
	}
	review, err := h.decode(r.URL.Path, body.Bytes())
	if err != nil {
		return nil, err
	}
	if review.Kind != "AdmissionReview" || (review.APIVersion != "admission.k8s.io/v1" && review.APIVersion != "admission.k8s.io/v1beta1") {
		return nil, fmt.Errorf("expected an admission.k8s.io/v1 AdmissionReview, got %q %q", review.APIVersion, review.Kind)
	}
	if review.Request == nil {
		return nil, errors.New("the AdmissionReview has no request")
	}
	return review, nil
}

// decode decodes the review: in one pass with its object when the Mutator knows the object's type, or else with
// the object left raw.
func (h *Handler) decode(path string, body []byte) (*admissionv1.AdmissionReview, error) {
	if typed, ok := h.Mutator.(typedMutator); ok {
		if review, ok := typed.decodeReview(path, body); ok {
			return review, nil
		}
	}
	review := &admissionv1.AdmissionReview{}
	if err := json.Unmarshal(body, review); err != nil {
		return nil, fmt.Errorf("decoding the AdmissionReview: %w", err)
	}
	return review, nil
}

// bodies are request buffers for reuse. A decoded review keeps no reference to its buffer (encoding/json copies
// strings, and RawExtension its bytes), so the buffer is free again once the review is decoded.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest buffer kept for reuse: an unusually large review does not pin its memory.
const maxPooledBody = 256 << 10

func putBody(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody {
		b.Reset()
		bodies.Put(b)
	}
}

// readBody reads the request body into buf, at most MaxRequestBytes. When the client says how long the body is,
// as kube-apiserver does, buf grows once to that size rather than step by step as it reads.
func readBody(r *http.Request, buf *bytes.Buffer) error {
	if n := r.ContentLength; n > 0 && n <= MaxRequestBytes {
		buf.Grow(int(n) + bytes.MinRead) // room for the read that finds the end
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, MaxRequestBytes+1)); err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	if buf.Len() > MaxRequestBytes {
		return fmt.Errorf("request larger than %d bytes", MaxRequestBytes)
	}
	return nil
}

// decodeTyped decodes an AdmissionReview whose object is a PT of the given group and kind, all in one pass, and
// returns it with the object in req.Object.Object and req.Object.Raw empty. It returns false when the review does
// not decode that way.
func decodeTyped[T any, PT interface {
	*T
	runtime.Object
}](body []byte, group, kind string) (*admissionv1.AdmissionReview, bool) {
	var review struct {
		metav1.TypeMeta
		Request *struct {
			admissionv1.AdmissionRequest
			// Object takes the JSON key "object" from AdmissionRequest.Object, which is raw.
			Object PT `json:"object"`
		} `json:"request"`
	}
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, false
	}
	req := review.Request
	if req == nil || req.Object == nil || req.Kind.Group != group || req.Kind.Kind != kind {
		return nil, false
	}
	req.AdmissionRequest.Object.Object = req.Object
	return &admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Request: &req.AdmissionRequest}, true
}

// objectOf returns the request's object as a PT: the one Handler decoded with the review, or else its raw JSON
// decoded now.
func objectOf[T any, PT interface {
	*T
	runtime.Object
}](req admission.Request) (PT, error) {
	if obj, ok := req.Object.Object.(PT); ok {
		return obj, nil
	}
	obj := PT(new(T))
	return obj, json.Unmarshal(req.Object.Raw, obj)
}

// complete does what admission.Response.Complete does, but encodes the patch with patch.Marshal, in one
// pass instead of two. The bytes are the same.
func complete(resp *admission.Response, req admission.Request) error {
	ops := resp.Patches
	resp.Patches = nil
	if err := resp.Complete(req); err != nil || len(ops) == 0 {
		return err
	}
	encoded, err := patch.Marshal(ops)
	if err != nil {
		return err
	}
	patchType := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = encoded, &patchType
	return nil
}

// writeReview answers with the same AdmissionReview version the request came in.
func writeReview(w http.ResponseWriter, log logr.Logger, version metav1.TypeMeta, resp admission.Response) {
	out := admissionv1.AdmissionReview{TypeMeta: version, Response: &resp.AdmissionResponse}
	if out.APIVersion == "" {
		out.APIVersion, out.Kind = "admission.k8s.io/v1", "AdmissionReview"
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(&out); err != nil {
		log.Error(err, "writing the admission response")
	}
}

// wrongKind answers a request for a kind the endpoint does not handle, which only a wrong webhook configuration
// sends: the object passes unchanged, with a warning to the user and an error in tandem's log.
func wrongKind(log logr.Logger, endpoint string, req admission.Request) admission.Response {
	log.Error(nil, "request for another kind; check the webhook configuration's rules", "endpoint", endpoint, "kind", req.Kind)
	return admission.Allowed("").WithWarnings(fmt.Sprintf("%s received a %s %s and left it unchanged: the webhook configuration is wrong",
		endpoint, req.Kind.Group, req.Kind.Kind))
}
