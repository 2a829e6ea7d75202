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
server started here (PostgreSQL's initdb and postgres, or MariaDB's mariadb-install-db and mariadbd; a data
directory under --dir, a Unix socket, no TCP port, at low CPU priority), checks that every table of the manifest
is there with the rows it recorded and that every --verify-queries check returns true, records the result in the
backup's manifest, and removes the server, also when stopped half way. Nothing touches the database the sidecar
serves. Exits non-zero, saying what did not hold, when the backup does not verify. postgres and mysql backups;
mongodb backups are checked against their manifest by restore. Each flag overrides the environment variable
named after it.

`, args, func(*flag.FlagSet) {},
		func(ctx context.Context, cfg backup.Config, from string, log logr.Logger) error {
			_, err := backup.Verify(ctx, cfg, backup.RestoreOptions{From: from}, log)
			return err
		})
}
