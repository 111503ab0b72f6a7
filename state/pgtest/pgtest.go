// Package pgtest starts a PostgreSQL server of Debian's packages for
// tests: initdb into a folder of its own, pg_ctl on a free loopback port
// (as the postgres user when the tests run as root, which initdb
// refuses), trust authentication for the loopback only. One server per
// test process; each test takes an environment of its own in it.
package pgtest

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kumo-dev/kumo/internal/loopback"
)

var (
	once    sync.Once
	baseURL string
	dataDir string
	bin     string
	port    int
	cred    *syscall.Credential // the postgres user's, when root
	server  *exec.Cmd
	failure error
	counter atomic.Int64
)

// URL is a state location for a new environment of the test server,
// starting it on first use. Without PostgreSQL installed the test is
// skipped, unless KUMO_REQUIRE_POSTGRES is set (make test sets it).
func URL(t T) string {
	once.Do(start)
	if failure != nil {
		if os.Getenv("KUMO_REQUIRE_POSTGRES") == "" {
			t.Skip(fmt.Sprintf("no PostgreSQL server for the test: %v", failure))
		}
		t.Fatal(fmt.Sprintf("PostgreSQL server for the test: %v", failure))
	}
	return fmt.Sprintf("%s&environment=t%d_%d", baseURL, os.Getpid(), counter.Add(1))
}

// T is what URL needs of a test: testing.TB, or testscript's T.
type T interface {
	Skip(args ...any)
	Fatal(args ...any)
}

// BaseURL is the server's URL without an environment ("" before URL).
func BaseURL() string { return baseURL }

func start() {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		failure = fmt.Errorf("initdb not found (apt-get install postgresql)")
		return
	}
	bin = filepath.Dir(found[len(found)-1])
	removeStale()
	dir, err := os.MkdirTemp("", "kumo-pgtest-")
	if err != nil {
		failure = err
		return
	}
	dataDir = filepath.Join(dir, "data")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			failure = fmt.Errorf("running as root needs the postgres user: %v", err)
			return
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		os.Chmod(dir, 0o755)
		if err := os.Chown(dir, uid, gid); err != nil {
			failure = err
			return
		}
	}
	if port, err = loopback.FreePort(); err != nil {
		failure = err
		return
	}
	if failure = initData(dataDir); failure != nil {
		return
	}
	if failure = serve(); failure == nil {
		baseURL = fmt.Sprintf("postgres://kumo@127.0.0.1:%d/postgres?sslmode=disable", port)
	}
}

// initData makes a cluster in dir: a copy of one initdb made once per
// machine and PostgreSQL version (initdb is most of a start's work, and
// every test process starts a server).
func initData(dir string) error {
	template := filepath.Join(os.TempDir(), fmt.Sprintf("kumo-pgtemplate-%s-%d", filepath.Base(filepath.Dir(bin)), os.Geteuid()))
	if _, err := os.Stat(filepath.Join(template, "PG_VERSION")); err != nil {
		parent, err := os.MkdirTemp(os.TempDir(), "kumo-pgtemplate-new-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(parent)
		os.Chmod(parent, 0o755)
		if cred != nil {
			os.Chown(parent, int(cred.Uid), int(cred.Gid))
		}
		fresh := filepath.Join(parent, "data")
		initdb := command(filepath.Join(bin, "initdb"), "-N", "-D", fresh, "-U", "kumo", "--auth=trust", "-E", "UTF8", "--no-instructions")
		if out, err := initdb.CombinedOutput(); err != nil {
			return fmt.Errorf("initdb: %v: %s", err, out)
		}
		// Another process may have made it meanwhile: either is good.
		if err := os.Rename(fresh, template); err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
			return err
		}
	}
	if out, err := exec.Command("cp", "-a", template, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("copying the initdb template: %v: %s", err, out)
	}
	return nil
}

// serve starts the server in the foreground of a child process that
// dies with the test process (however it dies), and waits until it
// takes connections.
func serve() error {
	server = command(filepath.Join(bin, "postgres"), "-D", dataDir, "-c", "listen_addresses=127.0.0.1",
		"-p", strconv.Itoa(port), "-k", filepath.Dir(dataDir), "-c", "max_connections=200")
	server.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	log, err := os.Create(filepath.Join(filepath.Dir(dataDir), "log"))
	if err != nil {
		return err
	}
	server.Stdout, server.Stderr = log, log
	if err := server.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if exec.Command(filepath.Join(bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port)).Run() == nil {
			return nil
		}
	}
	b, _ := os.ReadFile(log.Name())
	return fmt.Errorf("the server did not take connections in 30 s: %s", b)
}

// Stop stops the server, if one was started; TestMain calls it.
func Stop() {
	if server == nil {
		return
	}
	server.Process.Signal(syscall.SIGQUIT)
	server.Wait()
	os.RemoveAll(filepath.Dir(dataDir))
}

// Restart stops the server at once (SIGQUIT: no shutdown checkpoint, as
// in a crash) and starts it again on the same port.
func Restart() error {
	server.Process.Signal(syscall.SIGQUIT)
	server.Wait()
	return serve()
}

// removeStale removes the folders of servers whose test process died
// without stopping them (their server died with it).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "kumo-pgtest-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid"))
		if err == nil {
			pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
			if pid > 0 && syscall.Kill(pid, 0) == nil {
				continue // alive: another test process's
			}
		} else if st, serr := os.Stat(d); serr != nil || time.Since(st.ModTime()) < time.Minute {
			continue // being made now, perhaps
		}
		os.RemoveAll(d)
	}
}

func command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd
}

// PoolerURL starts Debian's PgBouncer in transaction mode in front of
// the test server and returns a state URL through it; ignoreParams makes
// it drop the session settings it would otherwise refuse. The pooler
// stops with the test process. Without pgbouncer installed the test is
// skipped (unless KUMO_REQUIRE_POSTGRES is set).
func PoolerURL(t T, ignoreParams bool) string {
	base := URL(t)
	path, err := exec.LookPath("pgbouncer")
	if err != nil {
		if os.Getenv("KUMO_REQUIRE_POSTGRES") == "" {
			t.Skip("no pgbouncer (apt-get install pgbouncer)")
		}
		t.Fatal("pgbouncer not installed")
	}
	dir, err := os.MkdirTemp(filepath.Dir(dataDir), "pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		os.Chown(dir, int(cred.Uid), int(cred.Gid))
	}
	bport, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ini := fmt.Sprintf("[databases]\npostgres = host=127.0.0.1 port=%d dbname=postgres user=kumo\n[pgbouncer]\n"+
		"listen_addr = 127.0.0.1\nlisten_port = %d\nauth_type = trust\nauth_file = %s/users.txt\npool_mode = transaction\nunix_socket_dir =\n",
		port, bport, dir)
	if ignoreParams {
		ini += "ignore_startup_parameters = search_path,tcp_keepalives_idle,tcp_keepalives_interval,tcp_keepalives_count\n"
	}
	os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644)
	os.WriteFile(filepath.Join(dir, "users.txt"), []byte(`"kumo" ""`+"\n"), 0o644)
	cmd := command(path, filepath.Join(dir, "pgbouncer.ini"))
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", bport)); err == nil {
			c.Close()
			break
		}
	}
	return strings.Replace(base, fmt.Sprintf(":%d/", port), fmt.Sprintf(":%d/", bport), 1)
}
