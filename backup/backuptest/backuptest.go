// Package backuptest starts the real servers the backup sidecar's tests run against, on 127.0.0.1 and in
// temporary directories: a throwaway PostgreSQL cluster, a throwaway MariaDB server, and versitygw, an
// S3-compatible server with a posix backend. hack/backup-deps.sh provides the programs (installing Debian's
// packages and building versitygw when missing); Provision runs it.
//
// PostgreSQL and MariaDB refuse to run as root: when the tests run as root, the servers run as nobody.
package backuptest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Deps are the programs hack/backup-deps.sh provides.
type Deps struct {
	// PGBinDir holds initdb, postgres, pg_dump and psql.
	PGBinDir string
	// MariaDBBinDir holds mariadb-install-db, mariadb and mariadb-dump; MariaDBD is the server.
	MariaDBBinDir, MariaDBD string
	// VersityGW is the S3-compatible server.
	VersityGW string
}

// Provision runs hack/backup-deps.sh, which installs or builds what is missing, and returns what it printed.
func Provision() (Deps, error) {
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "hack", "backup-deps.sh")
	cmd := exec.Command(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Deps{}, fmt.Errorf("%s: %v\n%s", script, err, stderr.String())
	}
	var d Deps
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "PG_BINDIR":
			d.PGBinDir = v
		case "MARIADB_BINDIR":
			d.MariaDBBinDir = v
		case "MARIADBD":
			d.MariaDBD = v
		case "VERSITYGW":
			d.VersityGW = v
		}
	}
	if d.PGBinDir == "" || d.MariaDBBinDir == "" || d.MariaDBD == "" || d.VersityGW == "" {
		return Deps{}, fmt.Errorf("%s printed no PG_BINDIR, MARIADB_BINDIR, MARIADBD or VERSITYGW:\n%s", script, out)
	}
	return d, nil
}

// server is a process the tests started, with its directory and log.
type server struct {
	dir, log string
	cmd      *exec.Cmd
	exited   chan struct{}
}

// serverDir makes a directory a server running as nobody can own and reach.
func serverDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	return dir, chownNobody(dir)
}

func asRoot() bool { return os.Geteuid() == 0 }

const nobody = 65534

func chownNobody(paths ...string) error {
	if !asRoot() {
		return nil
	}
	for _, p := range paths {
		if err := os.Chown(p, nobody, nobody); err != nil {
			return err
		}
	}
	return nil
}

// command makes a command that runs as nobody when the tests run as root, in a process group of its own.
func command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(prog, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if asRoot() {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: nobody, Gid: nobody}
	}
	cmd.Env = append(os.Environ(), "HOME=/tmp", "LC_ALL=C")
	return cmd
}

func run(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return nil
}

// start starts cmd with its output in logPath.
func start(cmd *exec.Cmd, dir, logPath string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &server{dir: dir, log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(s.exited) }()
	return s, nil
}

// waitPort waits until addr accepts connections, failing early when the server exits.
func (s *server) waitPort(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited while starting: %s", s.cmd.Path, s.tail())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s does not answer on %s after %s: %s", s.cmd.Path, addr, timeout, s.tail())
}

func (s *server) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop ends the server with SIGTERM (SIGKILL after 10 s) and waits for it.
func (s *server) stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Postgres is a throwaway PostgreSQL cluster listening on 127.0.0.1:Port, whose superuser postgres logs in over
// TCP with Password (scram-sha-256).
type Postgres struct {
	Port     int
	Password string
	deps     Deps
	srv      *server
}

// StartPostgres makes a cluster with initdb in a temporary directory and starts it.
func StartPostgres(deps Deps, password string) (*Postgres, error) {
	dir, err := serverDir("tandem-pg-")
	if err != nil {
		return nil, err
	}
	data, pwfile := filepath.Join(dir, "data"), filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := chownNobody(pwfile); err != nil {
		return nil, err
	}
	bin := func(n string) string { return filepath.Join(deps.PGBinDir, n) }
	if err := run(command(bin("initdb"), "--pgdata", data, "--username", "postgres", "--pwfile", pwfile,
		"--auth-local", "trust", "--auth-host", "scram-sha-256", "--encoding", "UTF8", "--no-locale", "--no-sync", "--no-instructions")); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	srv, err := start(command(bin("postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"), dir, filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, err
	}
	p := &Postgres{Port: port, Password: password, deps: deps, srv: srv}
	if err := srv.waitPort(fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	// The port accepts connections a moment before the server accepts logins.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := p.SQL("postgres", "SELECT 1")
		if err == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// SQL runs sql in database db as postgres and returns psql's unaligned, tuples-only output.
func (p *Postgres) SQL(db, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(p.deps.PGBinDir, "psql"), "--no-psqlrc", "--host", "127.0.0.1",
		"--port", strconv.Itoa(p.Port), "--username", "postgres", "--dbname", db, "--no-align", "--tuples-only",
		"--set", "ON_ERROR_STOP=1", "--command", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+p.Password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql %q: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Stop stops the server and removes its directory.
func (p *Postgres) Stop() {
	if p == nil {
		return
	}
	p.srv.stop()
	os.RemoveAll(p.srv.dir)
}

// MariaDB is a throwaway MariaDB server listening on 127.0.0.1:Port, where User logs in over TCP with Password
// and may do anything.
type MariaDB struct {
	Port           int
	User, Password string
	deps           Deps
	srv            *server
	socket         string
}

// StartMariaDB makes a data directory with mariadb-install-db in a temporary directory and starts the server.
func StartMariaDB(deps Deps, user, password string) (*MariaDB, error) {
	dir, err := serverDir("tandem-mariadb-")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := run(command(filepath.Join(deps.MariaDBBinDir, "mariadb-install-db"), "--no-defaults", "--datadir="+data,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve")); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	socket := filepath.Join(dir, "mysqld.sock")
	srv, err := start(command(deps.MariaDBD, "--no-defaults", "--datadir="+data, "--port="+strconv.Itoa(port),
		"--bind-address=127.0.0.1", "--socket="+socket, "--pid-file="+filepath.Join(dir, "mysqld.pid"),
		"--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
		"--innodb-flush-log-at-trx-commit=0", "--log-error="+filepath.Join(dir, "error.log")), dir, filepath.Join(dir, "error.log"))
	if err != nil {
		return nil, err
	}
	m := &MariaDB{Port: port, User: user, Password: password, deps: deps, srv: srv, socket: socket}
	if err := srv.waitPort(fmt.Sprintf("127.0.0.1:%d", port), 60*time.Second); err != nil {
		m.Stop()
		return nil, err
	}
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	setup := fmt.Sprintf("CREATE USER %s@'%%' IDENTIFIED BY %s; GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION;",
		q(user), q(password), q(user))
	// root logs in through the socket, without a password, as mariadb-install-db left it.
	cmd := exec.Command(filepath.Join(deps.MariaDBBinDir, "mariadb"), "--no-defaults", "--socket="+socket, "--user=root", "--execute="+setup)
	if out, err := cmd.CombinedOutput(); err != nil {
		m.Stop()
		return nil, fmt.Errorf("creating user %s: %v: %s", user, err, out)
	}
	return m, nil
}

// SQL runs sql (in database db, if not empty) as User over TCP and returns the client's tab-separated output
// without column names.
func (m *MariaDB) SQL(db, sql string) (string, error) {
	args := []string{"--no-defaults", "--protocol=TCP", "--host=127.0.0.1", "--port=" + strconv.Itoa(m.Port),
		"--user=" + m.User, "--batch", "--skip-column-names", "--execute=" + sql}
	if db != "" {
		args = append(args, "--database="+db)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(m.deps.MariaDBBinDir, "mariadb"), args...)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+m.Password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mariadb %q: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Stop stops the server and removes its directory.
func (m *MariaDB) Stop() {
	if m == nil {
		return
	}
	m.srv.stop()
	os.RemoveAll(m.srv.dir)
}

// S3 is versitygw serving the directory Root over S3 on 127.0.0.1:Port: each directory under Root is a bucket,
// each file below it an object, so tests can check what landed with plain file reads.
type S3 struct {
	Port                 int
	Root                 string
	AccessKey, SecretKey string
	deps                 Deps
	srv                  *server
}

// StartS3 starts versitygw on a free port with a new, empty root directory and the given buckets.
func StartS3(deps Deps, buckets ...string) (*S3, error) {
	root, err := os.MkdirTemp("", "tandem-s3-")
	if err != nil {
		return nil, err
	}
	for _, b := range buckets {
		if err := os.Mkdir(filepath.Join(root, b), 0o755); err != nil {
			return nil, err
		}
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &S3{Port: port, Root: root, AccessKey: "tandem-test", SecretKey: "tandem-test-secret", deps: deps}
	return s, s.Start()
}

// Start starts the server again after Stop, on the same port and root.
func (s *S3) Start() error {
	cmd := exec.Command(s.deps.VersityGW, "--access", s.AccessKey, "--secret", s.SecretKey,
		"--port", fmt.Sprintf("127.0.0.1:%d", s.Port), "--quiet", "posix", s.Root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	srv, err := start(cmd, s.Root, filepath.Join(os.TempDir(), filepath.Base(s.Root)+".log"))
	if err != nil {
		return err
	}
	s.srv = srv
	return srv.waitPort(s.Addr(), 30*time.Second)
}

// Addr is host:port.
func (s *S3) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Env is the environment a client of this server needs: the standard AWS variables.
func (s *S3) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=http://" + s.Addr()}
}

// Objects lists the object names under bucket/prefix, read from the server's directory.
func (s *S3) Objects(bucket, prefix string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.Root, bucket, prefix))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Uploads lists the keys of the multipart uploads open in bucket, asking the server: a writer that committed,
// aborted or failed leaves none.
func (s *S3) Uploads(bucket string) ([]string, error) {
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + s.Addr()), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
	var keys []string
	p := s3.NewListMultipartUploadsPaginator(client, &s3.ListMultipartUploadsInput{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return nil, fmt.Errorf("listing the multipart uploads of %s: %w", bucket, err)
		}
		for _, u := range page.Uploads {
			keys = append(keys, aws.ToString(u.Key))
		}
	}
	return keys, nil
}

// Stop stops the server; its root directory stays until Close.
func (s *S3) Stop() { s.srv.stop() }

// Close stops the server and removes its root directory.
func (s *S3) Close() {
	if s == nil {
		return
	}
	s.Stop()
	os.RemoveAll(s.Root)
	os.Remove(s.srv.log)
}
