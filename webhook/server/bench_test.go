package server_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tandem-dev/tandem/webhook/podinject/injecttest"
	"github.com/tandem-dev/tandem/webhook/server"
)

// BenchmarkPodHandler measures one admission of the ~5 KB PostgreSQL Pod through the pod endpoint's
// http.Handler: decoding the review and the Pod, injecting, and encoding the answer. TLS and HTTP are the
// server's, measured by hack/bench.
func BenchmarkPodHandler(b *testing.B) {
	benchmarkHandler(b, podHandler(), server.PodPath, review(admissionv1.Create, string(injecttest.PostgresPod())), true)
}

// BenchmarkPodHandlerUnannotated is BenchmarkPodHandler for the same Pod without tandem's annotations, which
// reaches tandem only where the webhook configuration's matchConditions are not used.
func BenchmarkPodHandlerUnannotated(b *testing.B) {
	benchmarkHandler(b, podHandler(), server.PodPath, review(admissionv1.Create, string(injecttest.UnannotatedPod())), false)
}

// BenchmarkJobHandler measures one admission of the original example Job through the Job endpoint.
func BenchmarkJobHandler(b *testing.B) {
	benchmarkHandler(b, jobHandler(), server.JobPath, review(admissionv1.Create, exampleJob, batchKind("Job")), true)
}

// BenchmarkCronJobHandler measures one admission of a CronJob through the CronJob endpoint.
func BenchmarkCronJobHandler(b *testing.B) {
	benchmarkHandler(b, jobHandler(), server.CronJobPath, review(admissionv1.Create, cronJob, batchKind("CronJob")), true)
}

// benchmarkHandler posts body to h at path again and again, as kube-apiserver does, with its length. The first
// answer is checked: allowed, with a patch or without one as wantPatch says.
func benchmarkHandler(b *testing.B, h http.Handler, path string, body []byte, wantPatch bool) {
	out := post(b, h, body, "application/json").Response
	if !out.Allowed || (len(out.Patch) > 0) != wantPatch {
		b.Fatalf("answer %+v", out)
	}
	w := &discardWriter{header: http.Header{}}
	r, err := http.NewRequest(http.MethodPost, path, nil)
	if err != nil {
		b.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	var reader bytes.Reader
	r.Body, r.ContentLength = io.NopCloser(&reader), int64(len(body))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		reader.Reset(body)
		clear(w.header)
		h.ServeHTTP(w, r)
	}
	if w.code != 0 && w.code != http.StatusOK {
		b.Fatalf("HTTP %d", w.code)
	}
}

// discardWriter is an http.ResponseWriter that keeps nothing, so the benchmark measures the handler alone.
type discardWriter struct {
	header http.Header
	code   int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// TestOnePassDecodingAnswersAlike checks that decoding the object in the same pass as the review, which the
// benchmarks above measure, answers every request exactly as decoding it from raw JSON does: the mutators are
// wrapped so that Handler cannot see their types, and the answers must be the same bytes.
func TestOnePassDecodingAnswersAlike(t *testing.T) {
	pod, unannotated := string(injecttest.PostgresPod()), string(injecttest.UnannotatedPod())
	refused := strings.Replace(pod, "s3://orders-backups/prod", "orders-backups", 1)
	deployment := func(r *admissionv1.AdmissionRequest) {
		r.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	}
	tests := []struct {
		name    string
		handler func() http.Handler
		path    string
		body    []byte
	}{
		{"pod", podHandler, server.PodPath, review(admissionv1.Create, pod)},
		{"unannotated pod", podHandler, server.PodPath, review(admissionv1.Create, unannotated)},
		{"refused pod", podHandler, server.PodPath, review(admissionv1.Create, refused)},
		{"pod update", podHandler, server.PodPath, review(admissionv1.Update, pod)},
		{"pod as v1beta1", podHandler, server.PodPath, bytes.Replace(review(admissionv1.Create, dbPod), []byte("admission.k8s.io/v1"), []byte("admission.k8s.io/v1beta1"), 1)},
		{"not a pod", podHandler, server.PodPath, review(admissionv1.Create, `{"spec":{"containers":"nope"}}`)},
		{"null pod", podHandler, server.PodPath, review(admissionv1.Create, "null")},
		{"deployment on the pod endpoint", podHandler, server.PodPath, review(admissionv1.Create, `{"spec":{"template":{}}}`, deployment)},
		{"job", jobHandler, server.JobPath, review(admissionv1.Create, exampleJob, batchKind("Job"))},
		{"cronjob", jobHandler, server.CronJobPath, review(admissionv1.Create, cronJob, batchKind("CronJob"))},
		{"cronjob on the job endpoint", jobHandler, server.JobPath, review(admissionv1.Create, cronJob, batchKind("CronJob"))},
		{"opted-out job", jobHandler, server.JobPath, review(admissionv1.Create, strings.Replace(exampleJob, `"namespace":"batch"`, `"namespace":"batch","annotations":{"tandem.dev/defaults":"maybe"}`, 1), batchKind("Job"))},
		{"not a job", jobHandler, server.JobPath, review(admissionv1.Create, `{"spec":{"template":"nope"}}`, batchKind("Job"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typed := tt.handler().(*server.Handler)
			raw := &server.Handler{Mutator: struct{ server.Mutator }{typed.Mutator}, Log: typed.Log}
			if got, want := answer(t, typed, tt.path, tt.body), answer(t, raw, tt.path, tt.body); got != want {
				t.Errorf("one pass answered\n%s\nfrom raw JSON\n%s", got, want)
			}
		})
	}
}

func answer(t *testing.T, h http.Handler, path string, body []byte) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, r)
	return rec.Body.String()
}
