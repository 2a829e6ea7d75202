package backup

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// engine knows the client programs of one database kind: how to dump to standard output and how to restore
// from standard input. The password never goes on a command line, where any process could read it: each client
// reads it from its own environment variable.
type engine struct {
	name string
	// ext is the dump's file extension, before .gz.
	ext string
	// dump and restore return the program and its arguments.
	dump, restore func(c *Config) (prog string, args []string, err error)
	// passwordEnv is the variable the clients read the password from.
	passwordEnv string
}

var engines = map[string]*engine{
	"postgres": {
		name: "postgres", ext: "sql", passwordEnv: "PGPASSWORD",
		dump: func(c *Config) (string, []string, error) {
			// Plain SQL that drops each object before creating it, so that a restore replaces what is there.
			return "pg_dump", append(postgresConn(c), "--no-password", "--clean", "--if-exists", "--dbname", c.Database), nil
		},
		restore: func(c *Config) (string, []string, error) {
			// One transaction, stopping at the first error: a restore that fails changes nothing.
			return "psql", append(postgresConn(c), "--no-password", "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1",
				"--single-transaction", "--dbname", c.Database), nil
		},
	},
	"mysql": {
		name: "mysql", ext: "sql", passwordEnv: "MYSQL_PWD",
		dump: func(c *Config) (string, []string, error) {
			prog, err := lookPath("mysqldump", "mariadb-dump")
			if err != nil {
				return "", nil, err
			}
			// A named database is dumped without CREATE DATABASE and USE, so it restores into the configured
			// database, whatever its name; without a name, every database is dumped with its name.
			args := append(mysqlConn(c), "--single-transaction", "--routines")
			if c.Database != "" {
				return prog, append(args, c.Database), nil
			}
			return prog, append(args, "--all-databases"), nil
		},
		restore: func(c *Config) (string, []string, error) {
			prog, err := lookPath("mysql", "mariadb")
			if err != nil {
				return "", nil, err
			}
			args := mysqlConn(c)
			if c.Database != "" {
				args = append(args, "--database", c.Database)
			}
			return prog, args, nil
		},
	},
}

func postgresConn(c *Config) []string {
	return []string{"--host", c.Host, "--port", strconv.Itoa(c.port()), "--username", c.user()}
}

func mysqlConn(c *Config) []string {
	// TCP even to localhost: the sidecar shares the database's network, not its socket file.
	return []string{"--protocol=TCP", "--host=" + c.Host, "--port=" + strconv.Itoa(c.port()), "--user=" + c.user()}
}

func (c *Config) port() int {
	if c.Port != 0 {
		return c.Port
	}
	if c.Engine == "mysql" {
		return 3306
	}
	return 5432
}

func (c *Config) user() string {
	if c.User != "" {
		return c.User
	}
	if c.Engine == "mysql" {
		return "root"
	}
	return "postgres"
}

// lookPath returns the first of names found on PATH.
func lookPath(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s is on PATH", strings.Join(names, ", "))
}

// childEnv is the environment of a database client: the sidecar's own, less the secrets the client has no use
// for, plus the database password in the variable the client reads.
func (e *engine) childEnv(c *Config) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "DATABASE_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD", "MYSQL_PWD":
			continue
		}
		env = append(env, kv)
	}
	if c.Password != "" {
		env = append(env, e.passwordEnv+"="+c.Password)
	}
	return env
}

// baseName is the part of a backup's file name before the timestamp.
func (c *Config) baseName() string {
	if c.Database == "" {
		return "all"
	}
	return c.Database
}
