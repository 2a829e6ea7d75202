package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tandem-dev/tandem/backup"
)

func runRestore(args []string) error {
	var unverified *bool
	return runOnABackup("restore", `Usage: tandem restore --from latest|URL|NAME [flags]

Checks a backup taken by tandem backup against its manifest (its size and SHA-256; "latest" is the newest backup
with a manifest), refusing one that does not match unless --unverified, then streams it from object storage,
decompressed (zstd, or gzip for .gz backups), into the database: psql in a single
transaction that stops at the first error for postgres (a failed restore changes nothing), the mysql client for
mysql, mongorestore --archive --drop for mongodb (only the database's collections, renamed when restoring a
backup of another database). Run it in the sidecar (kubectl exec POD -c tandem-backup -- tandem restore --from latest), where the
environment already names the database and the location. Each flag overrides the environment variable named
after it.

`, args,
		func(fs *flag.FlagSet) {
			unverified = fs.Bool("unverified", false, "restore a backup whose manifest cannot be read or does not match it, knowingly")
		},
		func(ctx context.Context, cfg backup.Config, from string, log logr.Logger) error {
			return backup.Restore(ctx, cfg, backup.RestoreOptions{From: from, Unverified: *unverified}, log)
		})
}

// runOnABackup runs a command on one backup (tandem restore, tandem verify): the sidecar's configuration from the
// environment and the flags, --from and the command's own flags (bound by flags), then run with a logger named
// after the command and a context that SIGTERM ends.
func runOnABackup(name, usage string, args []string, flags func(*flag.FlagSet),
	run func(ctx context.Context, cfg backup.Config, from string, log logr.Logger) error) error {
	fs := flag.NewFlagSet("tandem "+name, flag.ContinueOnError)
	cfg := backup.DefaultConfig()
	if err := cfg.ApplyEnv(os.LookupEnv); err != nil {
		return err
	}
	cfg.BindFlags(fs)
	from := fs.String("from", "", `the backup: "latest" (the newest complete backup of the database at --location), an object's URL, or a backup's name at --location`)
	flags(fs)
	// Failures are routine for a sidecar (a database restarting): log them without stack traces.
	zapOpts := zap.Options{StacktraceLevel: zapcore.DPanicLevel}
	zapOpts.BindFlags(fs)
	if help := parseFlags(fs, usage, args); help {
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return run(ctx, cfg, *from, zap.New(zap.UseFlagOptions(&zapOpts)).WithName(name))
}
