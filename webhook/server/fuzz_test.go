package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/tandem-dev/tandem/webhook/server"
)

// FuzzHandlers posts arbitrary bytes, and arbitrary objects inside a valid review, to the pod, Job and CronJob
// endpoints: the answer is always an AdmissionReview, and an error always says what went wrong.
func FuzzHandlers(f *testing.F) {
	f.Add([]byte(review(admissionv1.Create, dbPod)), false, uint8(0))
	f.Add([]byte(dbPod), true, uint8(0))
	f.Add([]byte(`{"metadata":{"annotations":{"tandem.dev/backup":"true"}},"spec":{"containers":null,"volumes":[{"name":"backup-data"}]}}`), true, uint8(0))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`), false, uint8(0))
	f.Add([]byte("null"), true, uint8(0))
	f.Add([]byte(exampleJob), true, uint8(1))
	f.Add([]byte(cronJob), true, uint8(2))
	f.Add([]byte(`{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[{"restartPolicy":"Never"}]}}}}}}`), true, uint8(2))
	pods, jobs := podHandler(), jobHandler()
	f.Fuzz(func(t *testing.T, data []byte, asObject bool, endpoint uint8) {
		h, kind := pods, func(*admissionv1.AdmissionRequest) {}
		switch endpoint % 3 {
		case 1:
			h, kind = jobs, batchKind("Job")
		case 2:
			h, kind = jobs, batchKind("CronJob")
		}
		body := data
		if asObject {
			if !json.Valid(data) {
				return
			}
			body = review(admissionv1.Create, string(data), kind)
		}
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, server.PodPath, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, r)
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("answer is not an AdmissionReview (%v): %s", err, rec.Body)
		}
		res := out.Response
		if !res.Allowed && (res.Result == nil || res.Result.Message == "") {
			t.Fatalf("denied without a message: %+v", res)
		}
		if res.Result != nil && res.Result.Code >= 500 {
			t.Fatalf("server error %d for input %q: %s", res.Result.Code, data, res.Result.Message)
		}
	})
}
