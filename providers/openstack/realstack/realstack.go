// Package realstack starts a small real OpenStack for tests, from
// Debian's packages, on loopback: MariaDB (on its socket only), RabbitMQ,
// Keystone, Glance (file store, a tiny image), Placement, Nova (API,
// conductor, scheduler, and compute with nova.virt.fake.FakeDriver) and
// Neutron's server (ML2, no agents). Each service runs as a plain process
// of the test, in a folder of its own, and ends with it; readiness is
// asked of each, never slept for.
//
// The fake driver makes no machine: servers go ACTIVE with addresses
// from Neutron, but nothing answers SSH there (create_unit(wait_ssh =
// False) covers that).
package realstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kumo-dev/kumo/internal/loopback"
)

// Python is the interpreter the services run on: Debian's, whatever
// python3 comes first in PATH (a pyenv's has no OpenStack).
const Python = "/usr/bin/python3"

// Packages are the Debian packages the cloud runs from (make
// test-openstack installs them, without their recommends).
var Packages = []string{"mariadb-server", "rabbitmq-server", "python3-keystone", "python3-glance",
	"python3-placement", "python3-nova", "python3-neutron", "python3-pymysql",
	"python3-openstackclient"} // the openstack CLI: tests count servers as users do

// Missing says which of what the cloud needs is not installed ("" if
// nothing is).
func Missing() string {
	var missing []string
	for _, f := range []struct{ path, pkg string }{
		{"/usr/sbin/mariadbd", "mariadb-server"}, {"/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server"},
		{"/usr/bin/keystone-manage", "python3-keystone"}, {"/usr/lib/python3/dist-packages/glance", "python3-glance"},
		{"/usr/bin/placement-api", "python3-placement"}, {"/usr/lib/python3/dist-packages/nova", "python3-nova"},
		{"/usr/lib/python3/dist-packages/neutron", "python3-neutron"}, {"/usr/lib/python3/dist-packages/pymysql", "python3-pymysql"},
		{"/usr/bin/openstack", "python3-openstackclient"}, {Python, "python3"},
	} {
		if _, err := os.Stat(f.path); err != nil {
			missing = append(missing, f.pkg)
		}
	}
	return strings.Join(missing, " ")
}

// Ports are the cloud's loopback ports.
type Ports struct {
	AMQP, Dist, EPMD, Keystone, Placement, Glance, Nova, Neutron int
}

// Cloud is a running test cloud.
type Cloud struct {
	Dir      string
	Ports    Ports
	Password string // admin's
	AuthURL  string
	// Network is the tenant network servers get (198.18.64.0/24), and
	// External the one floating IPs come from (198.19.64.0/24).
	Network, External string
	Image             string // a tiny raw image, "cirros"
	// Timings of the start, by step, for the note.
	Timings []Timing

	log       io.Writer
	mu        sync.Mutex
	procs     []*exec.Cmd
	lifelines []*os.File // see command
}

// Timing is how long one step of the start took.
type Timing struct {
	Step string
	Took time.Duration
}

// Options configure Start.
type Options struct {
	Dir string    // the cloud's folder (a test's TempDir)
	Log io.Writer // a line per step
}

// Start brings the cloud up: on error, what was started is stopped.
func Start(ctx context.Context, opts Options) (*Cloud, error) {
	if m := Missing(); m != "" {
		return nil, fmt.Errorf("a real OpenStack needs Debian's %s (make test-openstack installs them)", m)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	pw := make([]byte, 12)
	rand.Read(pw)
	c := &Cloud{Dir: opts.Dir, Password: hex.EncodeToString(pw), log: opts.Log}
	if c.log == nil {
		c.log = io.Discard
	}
	if err := c.start(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cloud) start(ctx context.Context) (err error) {
	ports := make([]int, 8)
	for i := range ports {
		if ports[i], err = loopback.FreePort(); err != nil {
			return err
		}
	}
	c.Ports = Ports{ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6], ports[7]}
	c.AuthURL = fmt.Sprintf("http://127.0.0.1:%d/v3", c.Ports.Keystone)
	for _, step := range []struct {
		name string
		do   func(context.Context) error
	}{
		{"MariaDB", c.startMariaDB},
		{"RabbitMQ", c.startRabbitMQ},
		{"Keystone", c.startKeystone},
		{"catalog", c.catalog},
		{"Placement", c.startPlacement},
		{"Glance", c.startGlance},
		{"Neutron", c.startNeutron},
		{"Nova", c.startNova},
		{"resources", c.resources},
	} {
		start := time.Now()
		if err := step.do(ctx); err != nil {
			return fmt.Errorf("starting %s: %w", step.name, err)
		}
		took := time.Since(start)
		c.Timings = append(c.Timings, Timing{step.name, took})
		fmt.Fprintf(c.log, "realstack: %s ready in %s\n", step.name, took.Round(10*time.Millisecond))
	}
	// What another process needs to use the cloud (Attach).
	b, _ := json.Marshal(c)
	return os.WriteFile(filepath.Join(c.Dir, "cloud.json"), b, 0o600)
}

// Attach is a cloud another process started in dir and still runs (a
// developer's, kept up between test runs): its processes are not this
// one's to stop.
func Attach(dir string) (*Cloud, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cloud.json"))
	if err != nil {
		return nil, fmt.Errorf("no running test cloud in %s: %w", dir, err)
	}
	c := &Cloud{log: io.Discard}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, err
	}
	return c, waitHTTP(context.Background(), c.AuthURL, 5*time.Second, 200)
}

// Env is the OS_* environment of the cloud's admin, for kumo's openstack
// provider and Debian's openstack CLI.
func (c *Cloud) Env() []string {
	return []string{"OS_AUTH_URL=" + c.AuthURL, "OS_USERNAME=admin", "OS_PASSWORD=" + c.Password,
		"OS_PROJECT_NAME=admin", "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default",
		"OS_REGION_NAME=RegionOne", "OS_IDENTITY_API_VERSION=3", "OS_CLOUD="}
}

// Leftovers are the processes still running from the cloud's folder
// (their command line names it): none once Stop has returned.
func (c *Cloud) Leftovers() []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if bytes.Contains(cmdline, []byte(c.Dir+"/")) {
			out = append(out, e.Name()+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

// Stop ends every process of the cloud: closing the lifelines has each
// watch send SIGTERM to its service's groups; what is left of a watch's
// group 5 s later gets SIGKILL.
func (c *Cloud) Stop() {
	c.mu.Lock()
	procs, lifelines := c.procs, c.lifelines
	c.procs, c.lifelines = nil, nil
	c.mu.Unlock()
	done := make([]chan struct{}, len(procs))
	for i, p := range procs {
		done[i] = make(chan struct{})
		go func() { p.Wait(); close(done[i]) }()
	}
	for _, f := range lifelines {
		f.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for i, p := range procs {
		select {
		case <-done[i]: // its service ended
		case <-time.After(time.Until(deadline)):
		}
		syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
		<-done[i]
		// A signal is delivered, not obeyed, by the time kill returns.
		for limit := time.Now().Add(5 * time.Second); groupAlive(p.Process.Pid) && time.Now().Before(limit); {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// groupAlive reports whether process group pgid has a process that is
// not a zombie.
func groupAlive(pgid int) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so read
		// after its closing parenthesis.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// DB is the SQLAlchemy URL of one of the cloud's databases.
func (c *Cloud) DB(name string) string {
	return fmt.Sprintf("mysql+pymysql://root@localhost/%s?unix_socket=%s/mysql/mysql.sock", name, c.Dir)
}

// Transport is the RPC transport URL.
func (c *Cloud) Transport() string {
	return fmt.Sprintf("rabbit://guest:guest@127.0.0.1:%d/", c.Ports.AMQP)
}

// write renders a configuration into the cloud's folder: each of its
// placeholders ({{.Dir}}, {{.DB "nova"}}...) replaced by the cloud's
// value. Replaced, not executed as a text/template: a template executed
// anywhere in a binary makes the linker keep every method of every type
// in it, and this package is linked into kumo's test binary, which the
// end-to-end scripts run hundreds of times as kumo.
func (c *Cloud) write(path, text string) error {
	pairs := []string{"{{.AuthURL}}", c.AuthURL, "{{.Dir}}", c.Dir, "{{.Password}}", c.Password, "{{.Transport}}", c.Transport(),
		"{{.Ports.Glance}}", strconv.Itoa(c.Ports.Glance), "{{.Ports.Neutron}}", strconv.Itoa(c.Ports.Neutron), "{{.Ports.Nova}}", strconv.Itoa(c.Ports.Nova)}
	for _, db := range []string{"keystone", "placement", "glance", "neutron", "nova", "nova_api"} {
		pairs = append(pairs, `{{.DB "`+db+`"}}`, c.DB(db))
	}
	b := strings.NewReplacer(pairs...).Replace(text)
	if i := strings.Index(b, "{{"); i >= 0 {
		end, _, _ := strings.Cut(b[i:], "}}")
		return fmt.Errorf("%s: no value for %s}}: add it to write", path, end)
	}
	full := filepath.Join(c.Dir, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, []byte(b), 0o600)
}

// command is a process of the cloud in a process group of its own,
// under a watch that ends the group when this process ends, however it
// ends: a service's own children (RabbitMQ's Erlang VM, forked workers)
// would outlive a parent-death signal meant for it alone. Its output
// goes to a log file.
func (c *Cloud) command(log string, env []string, name string, args ...string) (*exec.Cmd, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", watch, "realstack", name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.ExtraFiles = []*os.File{r}
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = c.Dir
	f, err := os.OpenFile(filepath.Join(c.Dir, log), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	c.mu.Lock()
	c.lifelines = append(c.lifelines, w, r, f)
	c.mu.Unlock()
	return cmd, nil
}

// release ends a finished command's watch: its lifeline closed, the
// watch's reader ends too.
func (c *Cloud) release(cmd *exec.Cmd) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := cmd.ExtraFiles[0]
	for i, f := range c.lifelines {
		if f == r && i > 0 {
			c.lifelines[i-1].Close() // its write end
			r.Close()
			c.lifelines = append(c.lifelines[:i-1], c.lifelines[i+1:]...)
			return
		}
	}
}

// watch runs the command in the background and waits for it, or for
// the end of its lifeline (fd 3: the write end is this process's, so it
// reads end of file when this process is gone), then ends its group and
// the group the command may have made its own (Glance's API leads one).
const watch = `trap '' TERM
"$@" 3<&- &
child=$!
( read -r _ <&3; kill -TERM -$child 2>/dev/null; kill -TERM 0; sleep 5; kill -KILL -$child 2>/dev/null; kill -KILL 0 ) &
wait $child`

// run runs a one-off command (a database sync) to its end.
func (c *Cloud) run(ctx context.Context, log string, env []string, name string, args ...string) error {
	cmd, err := c.command(log, env, name, args...)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { done <- cmd.Wait() }()
	defer c.release(cmd)
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s %s: %v (see %s)", filepath.Base(name), strings.Join(args, " "), err, filepath.Join(c.Dir, log))
		}
		return nil
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return ctx.Err()
	}
}

// serve starts a service and keeps it to stop with the cloud.
func (c *Cloud) serve(log string, env []string, name string, args ...string) error {
	cmd, err := c.command(log, env, name, args...)
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.mu.Lock()
	c.procs = append(c.procs, cmd)
	c.mu.Unlock()
	return nil
}

// python runs a Python entry point (module:function) as a program.
func python(entry string, args ...string) (string, []string) {
	mod, fn, _ := strings.Cut(entry, ":")
	prog := strings.ReplaceAll(strings.TrimSuffix(mod, ".main"), ".", "-")
	code := fmt.Sprintf("import sys; sys.argv[0] = %q; from %s import %s; sys.exit(%s())", prog, mod, fn, fn)
	return Python, append([]string{"-c", code}, args...)
}

// waitHTTP waits until url answers (any of the statuses), the ready
// check of an API.
func waitHTTP(ctx context.Context, url string, timeout time.Duration, statuses ...int) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			for _, s := range statuses {
				if resp.StatusCode == s {
					return nil
				}
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer in %s: %v", url, timeout, last)
}

func (c *Cloud) startMariaDB(ctx context.Context) error {
	data := filepath.Join(c.Dir, "mysql")
	if err := c.run(ctx, "mysql-install.log", nil, "/usr/bin/mysql_install_db", "--no-defaults", "--datadir="+data,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--user=root"); err != nil {
		return err
	}
	sock := filepath.Join(data, "mysql.sock")
	// The socket only: nothing of the database listens on the network.
	if err := c.serve("mysql.log", nil, "/usr/sbin/mariadbd", "--no-defaults", "--datadir="+data, "--socket="+sock,
		"--skip-networking", "--user=root", "--pid-file="+filepath.Join(data, "mysql.pid"), "--skip-log-bin",
		"--innodb-buffer-pool-size=64M", "--max-connections=500"); err != nil {
		return err
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c.run(ctx, "mysql-client.log", nil, "/usr/bin/mysql", "-S", sock, "-u", "root", "-e", "SELECT 1") == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("MariaDB did not take connections on %s in 60s (see %s/mysql.log)", sock, c.Dir)
		}
	}
	var sql strings.Builder
	for _, db := range []string{"keystone", "glance", "placement", "nova_api", "nova", "nova_cell0", "neutron"} {
		sql.WriteString("CREATE DATABASE " + db + ";")
	}
	return c.run(ctx, "mysql-client.log", nil, "/usr/bin/mysql", "-S", sock, "-u", "root", "-e", sql.String())
}

func (c *Cloud) startRabbitMQ(ctx context.Context) error {
	dir := filepath.Join(c.Dir, "rabbitmq")
	for _, d := range []string{"mnesia", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "enabled_plugins"), []byte("[].\n"), 0o600); err != nil {
		return err
	}
	epmd := strconv.Itoa(c.Ports.EPMD)
	// Erlang's port mapper first, in the foreground, so that it ends
	// with the cloud rather than living on as a daemon; on loopback.
	if err := c.serve("epmd.log", nil, "/usr/bin/epmd", "-port", epmd, "-address", "127.0.0.1"); err != nil {
		return err
	}
	env := []string{"HOME=" + dir, "RABBITMQ_NODENAME=rabbit@localhost", "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(c.Ports.AMQP), "RABBITMQ_DIST_PORT=" + strconv.Itoa(c.Ports.Dist),
		"ERL_EPMD_ADDRESS=127.0.0.1", "ERL_EPMD_PORT=" + epmd,
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"), "RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "none"), "RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_PID_FILE=" + filepath.Join(dir, "pid"),
		// Erlang distribution on loopback too (it binds every address otherwise).
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"}
	if err := c.serve("rabbitmq.log", env, "/usr/lib/rabbitmq/bin/rabbitmq-server"); err != nil {
		return err
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Ports.AMQP))); err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("RabbitMQ did not listen on port %d in 90s (see %s/rabbitmq.log)", c.Ports.AMQP, c.Dir)
		}
	}
}

func (c *Cloud) startKeystone(ctx context.Context) error {
	if err := c.write("keystone/keystone.conf", keystoneConf); err != nil {
		return err
	}
	conf := filepath.Join(c.Dir, "keystone", "keystone.conf")
	manage := func(args ...string) error {
		return c.run(ctx, "keystone/manage.log", nil, "/usr/bin/keystone-manage", append([]string{"--config-file", conf}, args...)...)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/v3/", c.Ports.Keystone)
	for _, args := range [][]string{
		{"db_sync"},
		{"fernet_setup", "--keystone-user", "root", "--keystone-group", "root"},
		{"credential_setup", "--keystone-user", "root", "--keystone-group", "root"},
		{"bootstrap", "--bootstrap-password", c.Password, "--bootstrap-admin-url", url, "--bootstrap-internal-url", url,
			"--bootstrap-public-url", url, "--bootstrap-region-id", "RegionOne"},
	} {
		if err := manage(args...); err != nil {
			return err
		}
	}
	env := []string{"OS_KEYSTONE_CONFIG_DIR=" + filepath.Dir(conf), "OS_KEYSTONE_CONFIG_FILES=keystone.conf"}
	if err := c.serve("keystone/wsgi.log", env, "/usr/bin/keystone-wsgi-public", "--port", strconv.Itoa(c.Ports.Keystone), "--host", "127.0.0.1"); err != nil {
		return err
	}
	return waitHTTP(ctx, c.AuthURL, 60*time.Second, 200)
}

func (c *Cloud) startPlacement(ctx context.Context) error {
	if err := c.write("placement/placement.conf", placementConf); err != nil {
		return err
	}
	dir := filepath.Join(c.Dir, "placement")
	if err := c.run(ctx, "placement/manage.log", nil, "/usr/bin/placement-manage", "--config-file", filepath.Join(dir, "placement.conf"), "db", "sync"); err != nil {
		return err
	}
	if err := c.serve("placement/wsgi.log", []string{"OS_PLACEMENT_CONFIG_DIR=" + dir}, "/usr/bin/placement-api",
		"--port", strconv.Itoa(c.Ports.Placement), "--host", "127.0.0.1"); err != nil {
		return err
	}
	return waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/", c.Ports.Placement), 60*time.Second, 200)
}

func (c *Cloud) startGlance(ctx context.Context) error {
	if err := c.write("glance/glance-api.conf", glanceConf); err != nil {
		return err
	}
	if err := c.write("glance/glance-api-paste.ini", glancePaste); err != nil {
		return err
	}
	conf := filepath.Join(c.Dir, "glance", "glance-api.conf")
	prog, args := python("glance.cmd.manage:main", "--config-file", conf, "db_sync")
	if err := c.run(ctx, "glance/manage.log", nil, prog, args...); err != nil {
		return err
	}
	prog, args = python("glance.cmd.api:main", "--config-file", conf)
	if err := c.serve("glance/api.log", nil, prog, args...); err != nil {
		return err
	}
	return waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/", c.Ports.Glance), 60*time.Second, 200, 300)
}

func (c *Cloud) startNeutron(ctx context.Context) error {
	for path, text := range map[string]string{"neutron/neutron.conf": neutronConf, "neutron/api-paste.ini": neutronPaste,
		"neutron/pylib/kumo_bind.py":                             bindDriver,
		"neutron/pylib/kumo_bind-1.0.dist-info/METADATA":         "Metadata-Version: 2.1\nName: kumo-bind\nVersion: 1.0\n",
		"neutron/pylib/kumo_bind-1.0.dist-info/entry_points.txt": "[neutron.ml2.mechanism_drivers]\nkumo_bind = kumo_bind:BindAll\n"} {
		if err := c.write(path, text); err != nil {
			return err
		}
	}
	conf := filepath.Join(c.Dir, "neutron", "neutron.conf")
	prog, args := python("neutron.db.migration.cli:main", "--config-file", conf, "upgrade", "heads")
	if err := c.run(ctx, "neutron/manage.log", nil, prog, args...); err != nil {
		return err
	}
	prog, args = python("neutron.cmd.eventlet.server:main", "--config-file", conf)
	if err := c.serve("neutron/server.log", []string{"PYTHONPATH=" + filepath.Join(c.Dir, "neutron", "pylib")}, prog, args...); err != nil {
		return err
	}
	return waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/", c.Ports.Neutron), 90*time.Second, 200)
}

func (c *Cloud) startNova(ctx context.Context) error {
	if err := c.write("nova/nova.conf", novaConf); err != nil {
		return err
	}
	if err := c.write("nova/api-paste.ini", novaPaste); err != nil {
		return err
	}
	conf := filepath.Join(c.Dir, "nova", "nova.conf")
	manage := func(args ...string) error {
		prog, full := python("nova.cmd.manage:main", append([]string{"--config-file", conf}, args...)...)
		return c.run(ctx, "nova/manage.log", nil, prog, full...)
	}
	for _, args := range [][]string{
		{"api_db", "sync"},
		{"cell_v2", "map_cell0", "--database_connection", c.DB("nova_cell0")},
		{"cell_v2", "create_cell", "--name", "cell1"},
		{"db", "sync"},
	} {
		if err := manage(args...); err != nil {
			return err
		}
	}
	for _, svc := range []string{"conductor", "scheduler", "compute", "api"} {
		prog, args := python("nova.cmd."+svc+":main", "--config-file", conf, "--log-file", filepath.Join(c.Dir, "nova", svc+".log"))
		if err := c.serve("nova/"+svc+".out", nil, prog, args...); err != nil {
			return err
		}
	}
	if err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/", c.Ports.Nova), 90*time.Second, 200); err != nil {
		return err
	}
	// The compute service registers its host in the cell's database;
	// mapped to the cell, it can take servers.
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		prog, args := python("nova.cmd.manage:main", "--config-file", conf, "cell_v2", "discover_hosts")
		if err := c.run(ctx, "nova/manage.log", nil, prog, args...); err != nil {
			return err
		}
		prog, args = python("nova.cmd.manage:main", "--config-file", conf, "cell_v2", "list_hosts")
		out, err := exec.CommandContext(ctx, prog, args...).Output()
		if err == nil && bytes.Contains(out, []byte("kumo-fake-host")) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the compute service did not register its host in 120s (see %s/nova/compute.log)", c.Dir)
		}
	}
}
