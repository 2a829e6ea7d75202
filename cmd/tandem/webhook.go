package main

import (
	"flag"
	"fmt"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager/signals"

	"github.com/tandem-dev/tandem/webhook/server"
)

func runWebhook(args []string) error {
	fs := flag.NewFlagSet("tandem webhook", flag.ContinueOnError)
	var opts server.Options
	fs.StringVar(&opts.ConfigPath, "config", "", "tandem's YAML configuration file, reloaded when it changes (default: the built-in configuration)")
	fs.StringVar(&opts.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding tls.crt and tls.key, reloaded when they change")
	fs.StringVar(&opts.Host, "host", "", "address the webhook listens on (default: all)")
	fs.IntVar(&opts.Port, "port", 9443, "port the webhook serves HTTPS on")
	fs.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", `address of the Prometheus /metrics endpoint ("0" turns it off)`)
	fs.StringVar(&opts.ProbeAddr, "health-probe-bind-address", ":8081", `address of the /healthz and /readyz endpoints ("0" turns them off)`)
	fs.BoolVar(&opts.EnableHTTP2, "enable-http2", false, "serve HTTP/2 as well as HTTP/1.1")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if help := parseFlags(fs, fmt.Sprintf("Usage: tandem webhook [flags]\n\nServes tandem's mutating admission webhook (pods: %s).\n", server.PodPath), args); help {
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	// Set the logger first: until it is set, controller-runtime keeps every log entry in memory.
	log := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrllog.SetLogger(log)
	log.Info("starting tandem", "version", versionString())
	if err := server.Run(signals.SetupSignalHandler(), opts, log); err != nil {
		log.Error(err, "tandem webhook stopped")
		return err
	}
	return nil
}
