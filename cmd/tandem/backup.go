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

Runs in tandem's backup sidecar: every interval it streams the database's dump through zstd to the backup
location as <database>-<UTC timestamp>-<pod>.<ext>.zst (an S3 multipart upload, completed only when the dump
program exited 0 and its output ends with the engine's completion marker, aborted otherwise: nothing partial is
ever visible), then puts its manifest beside it (the SHA-256 and sizes of the object, the tables and their rows,
the versions), and verifies the newest backup by restoring it into a throwaway server (--verify). With --keep N,
it also keeps up to N local copies in --dir; a local copy that could not be uploaded while it was dumped is
uploaded later, with backoff. Without local copies, a backup that could not be stored is taken again, after a
backoff. After each upload, backups of the database at the location beyond the newest --remote-keep or older
than --remote-max-age are deleted (both off by default; the newest, and the newest verified, are always kept).
Engines: postgres (pg_dump), mysql (mysqldump or mariadb-dump), mongodb (mongodump --archive).
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

	// The sidecar runs beside every database: keep its heap small unless told otherwise. A dump streams through
	// zstd (a few MiB) into the parts of its upload (three of 5 MiB: one filling, two in flight), about 25 MiB
	// live; without this soft limit the collector lets the heap grow to twice that. make bench-backup measures
	// the peak RSS (BenchmarkBackupAtScale).
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
