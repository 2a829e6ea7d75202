package main

import (
	"context"
	"encoding/pem"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/server"
)

// probeTarget serves m over HTTPS and returns its pod endpoint's URL and a file with the CA that signed it.
func probeTarget(t *testing.T, m server.Mutator) (string, string) {
	srv := httptest.NewTLSServer(&server.Handler{Mutator: m, Log: logr.Discard()})
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL + server.PodPath, ca
}

func TestProbeSucceedsAgainstTandem(t *testing.T) {
	url, ca := probeTarget(t, &server.PodMutator{Config: config.NewStaticStore(config.Default()), Log: logr.Discard()})
	var out strings.Builder
	if err := runProbe([]string{"--url", url, "--ca-file", ca}, &out); err != nil || !strings.Contains(out.String(), "patch") {
		t.Errorf("probe: %v, %q", err, out.String())
	}
}

type allowAll struct{}

func (allowAll) Mutate(context.Context, admission.Request) admission.Response {
	return admission.Allowed("")
}

func TestProbeFailsWhenNothingIsInjected(t *testing.T) {
	url, ca := probeTarget(t, allowAll{})
	if err := runProbe([]string{"--url", url, "--ca-file", ca}, io.Discard); err == nil || !strings.Contains(err.Error(), "without injecting") {
		t.Errorf("probe against a webhook that injects nothing: %v", err)
	}
	if err := runProbe([]string{"--url", url, "--ca-file", "/dev/null"}, io.Discard); err == nil {
		t.Error("probe trusted a server without the CA")
	}
}
