// Command noop is the no-op controller-runtime webhook server hack/bench compares tandem with: controller-runtime's
// webhook.Server with a logger set and one admission.Webhook that answers every review with the same
// one-operation patch, without looking at the object. What it costs is what linking and running
// controller-runtime's webhook server costs; tandem cannot go below it on memory.
//
// Usage: noop --port PORT --cert-dir DIR (it listens on 127.0.0.1 only).
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"

	"gomodules.xyz/jsonpatch/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Path is where the webhook answers, the path of tandem's pod webhook.
const Path = "/mutate-v1-pod"

func main() {
	port := flag.Int("port", 9443, "port to serve HTTPS on, on 127.0.0.1")
	certDir := flag.String("cert-dir", "", "directory holding tls.crt and tls.key")
	flag.Parse()
	// Without a logger, controller-runtime keeps every log entry in memory and RSS grows without bound.
	ctrl.SetLogger(zap.New())

	server := webhook.NewServer(webhook.Options{
		Host: "127.0.0.1", Port: *port, CertDir: *certDir,
		// As tandem: TLS 1.2 or later, HTTP/1.1 only.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12; c.NextProtos = []string{"http/1.1"} }},
	})
	patch := jsonpatch.NewOperation("add", "/metadata/annotations/tandem.dev~1injected", "postgres")
	server.Register(Path, &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Patched("", patch)
	})})
	if err := server.Start(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintln(os.Stderr, "noop:", err)
		os.Exit(1)
	}
}
