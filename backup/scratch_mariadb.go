package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
)

// scratchMariaDB is a throwaway MariaDB (or MySQL) server. It runs without grant tables: it listens on no TCP
// port, its socket is in a directory only its user reaches, and a dump of all databases restores the source's
// users into it (mysql.global_priv) without locking tandem out.
type scratchMariaDB struct {
	scratchProcess
	client string // mariadb or mysql
	socket string
}

// startScratchMariaDB makes a data directory under parent with mariadb-install-db and starts mariadbd on a Unix
// socket only.
func startScratchMariaDB(ctx context.Context, parent string, log logr.Logger) (scratchServer, error) {
	installDB, err := lookPath("mariadb-install-db", "mysql_install_db")
	if err != nil {
		return nil, fmt.Errorf("no MariaDB server here: %w", err)
	}
	server, err := lookPath("mariadbd", "mysqld", "/usr/sbin/mariadbd", "/usr/sbin/mysqld")
	if err != nil {
		return nil, fmt.Errorf("no MariaDB server here: %w", err)
	}
	client, err := lookPath("mariadb", "mysql")
	if err != nil {
		return nil, err
	}
	s := &scratchMariaDB{scratchProcess: scratchProcess{stop: syscall.SIGTERM}, client: client}
	if err := s.makeDirs(parent); err != nil {
		s.remove(log)
		return nil, err
	}
	data := filepath.Join(s.dir, "data")
	s.socket = filepath.Join(s.socketDir, "mysqld.sock")
	install := s.command(ctx, installDB, "--no-defaults", "--datadir="+data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve")
	if out, err := install.CombinedOutput(); err != nil {
		s.remove(log)
		return nil, fmt.Errorf("%s: %v: %s", filepath.Base(installDB), err, lastLines(out))
	}
	// No durability (the copy is thrown away), little memory, no TCP, no binary log.
	cmd := s.command(context.WithoutCancel(ctx), server, "--no-defaults", "--datadir="+data, "--socket="+s.socket,
		"--pid-file="+filepath.Join(s.dir, "mysqld.pid"), "--skip-networking", "--skip-grant-tables", "--skip-log-bin",
		"--skip-name-resolve", "--max-connections=5", "--open-files-limit=1024", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=64M",
		"--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--key-buffer-size=1M",
		"--aria-pagecache-buffer-size=8M", "--performance-schema=OFF", "--log-error="+filepath.Join(s.dir, "server.log"))
	err = s.start(ctx, cmd, log, func(ctx context.Context) bool {
		_, err := s.query(ctx, "", "SELECT 1")
		return err == nil
	})
	if err != nil {
		s.remove(log)
		return nil, err
	}
	return s, nil
}

func (s *scratchMariaDB) createDatabase(ctx context.Context, database string) error {
	_, err := s.query(ctx, "", "CREATE DATABASE "+mysqlIdent(database))
	return err
}

func (s *scratchMariaDB) target(cfg Config, database string) Config {
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.PasswordFile, cfg.Database = s.socket, 0, "root", "", "", database
	return cfg
}

func (s *scratchMariaDB) query(ctx context.Context, database, query string) (string, error) {
	args := []string{"--no-defaults", "--protocol=SOCKET", "--socket=" + s.socket, "--user=root", "--batch",
		"--skip-column-names", "--execute=" + query}
	if database != "" {
		args = append(args, "--database="+database)
	}
	return output(s.command(ctx, s.client, args...))
}

// rowCounts counts the rows of the tables, named as the dump names them: table in database for a dump of one,
// database.table for a dump of all. The system databases' tables are the server's own, rewritten by it (its
// statistics), and are left out.
func (s *scratchMariaDB) rowCounts(ctx context.Context, database string, tables []tableRows) (map[string]int64, error) {
	split := func(name string) (schema, table string) {
		if database != "" {
			return database, name
		}
		schema, table, _ = strings.Cut(name, ".")
		return schema, table
	}
	var pairs []string
	for _, t := range tables {
		schema, table := split(t.Name)
		pairs = append(pairs, "("+sqlString(schema)+", "+sqlString(table)+")")
	}
	out, err := s.query(ctx, "", "SELECT table_schema, table_name FROM information_schema.tables WHERE (table_schema, table_name) IN ("+
		strings.Join(pairs, ", ")+")")
	if err != nil {
		return nil, err
	}
	present := map[[2]string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if schema, table, ok := strings.Cut(line, "\t"); ok {
			present[[2]string{schema, table}] = true
		}
	}
	var q []string
	for _, t := range tables {
		schema, table := split(t.Name)
		if present[[2]string{schema, table}] {
			q = append(q, "SELECT "+sqlString(t.Name)+", COUNT(*) FROM "+mysqlIdent(schema)+"."+mysqlIdent(table))
		}
	}
	counts := map[string]int64{}
	if len(q) == 0 {
		return counts, nil
	}
	if out, err = s.query(ctx, "", strings.Join(q, " UNION ALL ")); err != nil {
		return nil, err
	}
	return counts, parseCounts(out, "\t", counts)
}

// mysqlSystemTable reports whether a table a dump of all databases names (database.table) is one of the
// server's own, which it rewrites.
func mysqlSystemTable(name string) bool {
	schema, _, ok := strings.Cut(name, ".")
	return ok && (schema == "mysql" || schema == "sys" || schema == "performance_schema" || schema == "information_schema")
}

func mysqlIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
