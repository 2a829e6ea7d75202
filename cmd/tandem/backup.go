package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tandem-dev/tandem/backup"
	"github.com/tandem-dev/tandem/internal/contract"
)

func runBackup(args []string) error {
	fs := flag.NewFlagSet("tandem backup", flag.ContinueOnError)
	cfg := backup.DefaultConfig()
	cfg.TandemVersion = versionString()
	envErr := cfg.ApplyEnv(os.LookupEnv) // fatal with --once; the sidecar reports it and stays up
	cfg.BindFlags(fs)
	once := fs.Bool("once", false, "take one backup and exit, non-zero if it failed (for a CronJob or a test)")
	// Failures are routine for a sidecar (a database restarting): log them without stack traces.
	zapOpts := zap.Options{StacktraceLevel: zapcore.DPanicLevel}
	zapOpts.BindFlags(fs)
	if help := parseFlags(fs, `Usage: tandem backup [flags]

Runs in tandem's backup sidecar: every interval it dumps the database through gzip into
<dir>/<database>-<UTC timestamp>-<pod>.<ext>.gz (written as a hidden .partial file, renamed only when the dump
program exited 0 and its output ends with the engine's completion marker), writes its manifest beside it (the
SHA-256 and sizes of the file, the tables and their rows, the versions), uploads the file and then its manifest to
the backup location, retrying with backoff and keeping them until they land, and
deletes uploaded backups beyond the newest --keep. After each upload, backups of the database at the location
beyond the newest --remote-keep or older than --remote-max-age are deleted (both off by default; the newest is
always kept). Engines: postgres (pg_dump), mysql (mysqldump or mariadb-dump), mongodb (mongodump --archive).
Each flag overrides the environment variable named after it.

`, args); help {
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log := zap.New(zap.UseFlagOptions(&zapOpts)).WithName("backup")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	// The sidecar runs beside every database: keep its heap small unless told otherwise. Dumps stream through
	// gzip to the file and uploads read each part straight from it, so BenchmarkSidecarFootprint (backup/)
	// measures about 8 MiB of anonymous memory while idle and while dumping, and 9 MiB at the peak of the upload
	// of a 1 GB dump; this limit only caps a surprise.
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(32 << 20)
	}
	if *once {
		if envErr != nil {
			return envErr
		}
		runner, err := backup.NewRunner(cfg, log, nil)
		if err != nil {
			return err
		}
		return runner.Once(ctx)
	}

	interval := cfg.Interval
	if interval < contract.MinInterval {
		interval = backup.DefaultConfig().Interval // for /healthz only: the configuration error is reported
	}
	metrics := backup.NewMetrics(interval)
	if cfg.MetricsAddr != "" && cfg.MetricsAddr != "0" {
		go metrics.ServeUntil(ctx, cfg.MetricsAddr, log)
	}
	log.Info("starting tandem backup", "version", versionString(), "engine", cfg.Engine, "database", cfg.Database,
		"location", cfg.Location, "interval", cfg.Interval.String(), "dir", cfg.Dir, "keep", cfg.Keep,
		"remoteKeep", cfg.RemoteKeep, "remoteMaxAge", cfg.RemoteMaxAge.String())
	backup.RunSidecar(ctx, cfg, envErr, log, metrics)
	return nil
}
