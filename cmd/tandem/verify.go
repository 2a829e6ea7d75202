package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tandem-dev/tandem/backup"
)

func runVerify(args []string) error {
	fs := flag.NewFlagSet("tandem verify", flag.ContinueOnError)
	cfg := backup.DefaultConfig()
	if err := cfg.ApplyEnv(os.LookupEnv); err != nil {
		return err
	}
	cfg.BindFlags(fs)
	from := fs.String("from", "", `backup to verify: "latest" (the newest complete backup of the database at --location), an object's URL, or a backup's name at --location`)
	zapOpts := zap.Options{StacktraceLevel: zapcore.DPanicLevel}
	zapOpts.BindFlags(fs)
	if help := parseFlags(fs, `Usage: tandem verify --from latest|URL|NAME [flags]

Proves that a backup restores: checks it against its manifest (size and SHA-256), restores it into a throwaway
PostgreSQL server started here (a data directory under --dir, a Unix socket, no TCP port, at low CPU priority),
checks that every table of the manifest is there with the rows it recorded, and removes the server, also when
stopped half way. Nothing touches the database the sidecar serves. Exits non-zero, saying what did not hold, when
the backup does not verify. postgres backups only, for now. Each flag overrides the environment variable named
after it.

`, args); help {
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log := zap.New(zap.UseFlagOptions(&zapOpts)).WithName("verify")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	_, err := backup.Verify(ctx, cfg, backup.RestoreOptions{From: *from}, log)
	return err
}
