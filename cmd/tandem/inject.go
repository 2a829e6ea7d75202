package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/offline"
)

func runInject(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tandem inject", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", `manifests to read, multi-document YAML or JSON ("-" for standard input)`)
	configPath := fs.String("config", "", "tandem's YAML configuration file (default: the built-in configuration)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: tandem inject -f FILE [--config FILE]

Prints the manifests with exactly the mutation tandem's webhook would make: the backup sidecar in Pods and in the
pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs, and the defaults of Jobs
and CronJobs. Other documents are printed unchanged.
Warnings go to standard error; if any object would be refused, nothing is printed and the command fails.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if *file == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("-f FILE is required, and nothing else")
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	in, name := stdin, "stdin"
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, *file
	}
	res, err := offline.Inject(name, in, stdout, cfg)
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "Warning: %s\n", w)
	}
	return err
}
