package main

import (
	"context"
	"flag"

	"github.com/go-logr/logr"

	"github.com/tandem-dev/tandem/backup"
)

func runVerify(args []string) error {
	return runOnABackup("verify", `Usage: tandem verify --from latest|URL|NAME [flags]

Proves that a backup restores: checks it against its manifest (size and SHA-256), restores it into a throwaway
PostgreSQL server started here (a data directory under --dir, a Unix socket, no TCP port, at low CPU priority),
checks that every table of the manifest is there with the rows it recorded, and removes the server, also when
stopped half way. Nothing touches the database the sidecar serves. Exits non-zero, saying what did not hold, when
the backup does not verify. postgres backups only, for now. Each flag overrides the environment variable named
after it.

`, args, func(*flag.FlagSet) {},
		func(ctx context.Context, cfg backup.Config, from string, log logr.Logger) error {
			_, err := backup.Verify(ctx, cfg, backup.RestoreOptions{From: from}, log)
			return err
		})
}
