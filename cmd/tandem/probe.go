package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// probePod is an annotated pod the probe asks tandem about; nothing is created.
const probePod = `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"tandem-probe-","annotations":{
  "tandem.dev/backup":"true","tandem.dev/backup-location":"s3://tandem-probe/probe","tandem.dev/database-secret":"tandem-probe"}},
  "spec":{"containers":[{"name":"db","image":"postgres"}]}}`

// runProbe sends tandem's pod endpoint the AdmissionReview the API server would send for an annotated pod, and
// succeeds when tandem answers with an injection. `helm test` runs it.
func runProbe(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tandem probe", flag.ContinueOnError)
	url := fs.String("url", "", "tandem's pod endpoint, e.g. https://tandem.tandem-system.svc/mutate-v1-pod")
	caFile := fs.String("ca-file", "", "PEM of the CA that signed tandem's certificate")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *caFile == "" {
		return fmt.Errorf("--url and --ca-file are required")
	}
	ca, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("%s holds no PEM certificate", *caFile)
	}
	review, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "tandem-probe", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: "default",
			Operation: admissionv1.Create, DryRun: new(true), Object: runtime.RawExtension{Raw: []byte(probePod)}},
	})
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Post(*url, "application/json", bytes.NewReader(review))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var answer admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer.Response == nil {
		return fmt.Errorf("HTTP %s: not an AdmissionReview (%v)", resp.Status, err)
	}
	r := answer.Response
	if !r.Allowed || len(r.Patch) == 0 {
		msg := ""
		if r.Result != nil {
			msg = r.Result.Message
		}
		return fmt.Errorf("tandem answered without injecting (allowed %v): %s", r.Allowed, msg)
	}
	fmt.Fprintf(stdout, "tandem answered at %s with a %d-byte patch\n", *url, len(r.Patch))
	return nil
}
