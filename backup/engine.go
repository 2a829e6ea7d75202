package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"unicode/utf8"
)

// engine knows the client programs of one database kind: how to dump to standard output and how to restore
// from standard input. The password never goes on a command line, where any process on the node could read it:
// postgres and mysql clients read it from an environment variable of their own, mongodb's from a configuration
// file only the sidecar's user can read.
type engine struct {
	name string
	// ext is the dump's file extension, before the codec's (.zst).
	ext string
	// dump returns the dump program and its arguments; restore those of the restore program, given the name of
	// the backup it reads.
	dump    func(c *Config) (prog string, args []string, err error)
	restore func(c *Config, backup string) (prog string, args []string, err error)
	// passwordEnv is the variable the clients read the password from; empty when they read it from a
	// configuration file given with --config instead.
	passwordEnv string
}

var engines = map[string]*engine{
	"postgres": {
		name: "postgres", ext: "sql", passwordEnv: "PGPASSWORD",
		dump: func(c *Config) (string, []string, error) {
			// Plain SQL that drops each object before creating it, so that a restore replaces what is there.
			return "pg_dump", append(postgresConn(c), "--no-password", "--clean", "--if-exists", "--dbname", c.Database), nil
		},
		restore: func(c *Config, _ string) (string, []string, error) {
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
		restore: func(c *Config, _ string) (string, []string, error) {
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
	"mongodb": {
		name: "mongodb", ext: "archive",
		dump: func(c *Config) (string, []string, error) {
			// --archive without a file name writes the archive to standard output; it is compressed here, like
			// the other engines' dumps, rather than with --gzip, so that the object is one zstd stream.
			args := append(mongoConn(c), "--archive")
			if c.Database != "" {
				args = append(args, "--db="+c.Database)
			}
			return "mongodump", args, nil
		},
		restore: func(c *Config, backup string) (string, []string, error) {
			// --drop replaces each collection the archive holds; collections it does not hold are left alone.
			args := append(mongoConn(c), "--archive", "--drop")
			if c.Database != "" {
				// The archive's namespaces are those of the database it was dumped from, which its name
				// starts with: restore that database's collections, into the configured database. From a
				// backup of all databases, restore the configured one.
				from := c.Database
				if n, ok := parseBackupName(backup); ok && n.base != "all" {
					from = n.base
				}
				args = append(args, "--nsInclude="+from+".*")
				if from != c.Database {
					args = append(args, "--nsFrom="+from+".*", "--nsTo="+c.Database+".*")
				}
			}
			return "mongorestore", args, nil
		},
	},
}

func postgresConn(c *Config) []string {
	return []string{"--host", c.Host, "--port", strconv.Itoa(c.port()), "--username", c.user()}
}

func mysqlConn(c *Config) []string {
	if strings.HasPrefix(c.Host, "/") {
		// A host that is a path is the server's socket (a throwaway server's, when tandem verifies).
		return []string{"--protocol=SOCKET", "--socket=" + c.Host, "--user=" + c.user()}
	}
	// TCP even to localhost: the sidecar shares the database's network, not its socket file.
	return []string{"--protocol=TCP", "--host=" + c.Host, "--port=" + strconv.Itoa(c.port()), "--user=" + c.user()}
}

func mongoConn(c *Config) []string {
	args := []string{"--host=" + c.Host, "--port=" + strconv.Itoa(c.port())}
	if u := c.user(); u != "" {
		// A user without a database of its own is in admin, as the official image's root user is.
		args = append(args, "--username="+u, "--authenticationDatabase=admin")
	}
	return args
}

func (c *Config) port() int {
	if c.Port != 0 {
		return c.Port
	}
	switch c.Engine {
	case "mysql":
		return 3306
	case "mongodb":
		return 27017
	}
	return 5432
}

func (c *Config) user() string {
	if c.User != "" {
		return c.User
	}
	switch c.Engine {
	case "mysql":
		return "root"
	case "mongodb":
		return "" // a server without access control, as the official image runs without a root user
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

// client is a database client ready to run: its program, arguments and environment, and what to remove once it
// has exited.
type client struct {
	prog    string
	args    []string
	env     []string
	cleanup func()
}

// client makes the dump (restore false) or restore client for c, reading the password now, from
// DATABASE_PASSWORD_FILE when it is set, so that a rotated Secret is used from the next backup on. backup is the
// name of the backup a restore reads. The caller must call cleanup.
func (e *engine) client(c *Config, restore bool, backup string) (client, error) {
	password, err := c.password()
	if err != nil {
		return client{}, err
	}
	var prog string
	var args []string
	if restore {
		prog, args, err = e.restore(c, backup)
	} else {
		prog, args, err = e.dump(c)
	}
	if err != nil {
		return client{}, err
	}
	cl := client{prog: prog, args: args, env: childEnv(), cleanup: func() {}}
	switch {
	case password == "":
	case e.passwordEnv != "":
		cl.env = append(cl.env, e.passwordEnv+"="+password)
	default:
		path, err := writeClientConfig(password, os.TempDir(), c.Dir)
		if err != nil {
			return client{}, fmt.Errorf("writing the password for %s: %w", prog, err)
		}
		cl.args = append(cl.args, "--config="+path)
		cl.cleanup = func() { os.Remove(path) }
	}
	return cl, nil
}

// childEnv is the environment of a database client: the sidecar's own, less the secrets the client has no use
// for.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "DATABASE_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD", "MYSQL_PWD":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// writeClientConfig writes the YAML file mongodump and mongorestore read with --config, holding the password,
// readable by this user only, in the first of dirs where that works (the root filesystem may be read-only). The
// password is a JSON string, which is also a YAML double-quoted scalar.
func writeClientConfig(password string, dirs ...string) (string, error) {
	if !utf8.ValidString(password) {
		return "", errors.New("the password is not valid UTF-8, which mongodb's configuration file cannot hold")
	}
	quoted, err := json.Marshal(password)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		f, err := os.CreateTemp(dir, ".tandem-client-*.yaml") // created 0600
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, err = f.Write(append(append([]byte("password: "), quoted...), '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
			return "", err
		}
		return f.Name(), nil
	}
	return "", errors.Join(errs...)
}

// baseName is the part of a backup's file name before the timestamp.
func (c *Config) baseName() string {
	if c.Database == "" {
		return "all"
	}
	return c.Database
}
