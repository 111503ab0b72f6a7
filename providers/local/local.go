// Package local is kumo's embedded provider. A node is a folder under
// .kumo/local/ with a node server process (Serve) that answers SSH on an
// address of its own in 127.0.0.0/8 with its own host key, runs commands with /bin/sh inside the
// folder and serves SFTP. It needs no credentials and no root, and its
// nodes outlive the kumo process that made them, like cloud instances.
package local

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kumo-dev/kumo/providers"
)

// Provider runs local nodes under Dir.
type Provider struct {
	Dir string
	// ServerCommand starts a node server; "--dir DIR" is appended. The
	// default is this executable's hidden `node-server` command.
	ServerCommand []string
}

// New returns the provider keeping its nodes under dir. The path is made
// absolute: node servers outlive the folder kumo was started in.
func New(dir string) *Provider {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return &Provider{Dir: dir}
}

// Caveat: local nodes are not machines of their own.
func (p *Provider) Caveat() string {
	return "processes on this host, running as you: the stdlib will not change the system there"
}

func (p *Provider) Name() string { return "local" }

// Spec is a local spec's fields. Local nodes share the host's CPUs and
// memory; the sizes are recorded so that a recipe moves to a cloud
// unchanged.
type Spec struct {
	CPUs     int     `json:"cpus"`
	MemoryGB float64 `json:"memory_gb"`
	DiskGB   int     `json:"disk_gb"`
	User     string  `json:"user"` // the login name nodes report (commands run as you)
	// Ports are all open on a node's loopback address: recorded, so that
	// a recipe written for a cloud runs unchanged.
	Ports []int `json:"ports"`
}

func (p *Provider) NewSpec() any { return &Spec{} }

// meta is a node's own record, in its folder.
type meta struct {
	Token, Run, Group, Unit, Name, User string
	Port                                int
	// IP is the node's own loopback address (see pickAddress); nodes
	// made before kumo gave them one use 127.0.0.1.
	IP         string `json:",omitempty"`
	PoweredOff bool   `json:",omitempty"`
}

func (m meta) address() string {
	if m.IP == "" {
		return "127.0.0.1"
	}
	return m.IP
}

func (p *Provider) nodeDir(token string) (string, error) {
	if token == "" || strings.ContainsAny(token, "/\\.") {
		return "", fmt.Errorf("local: bad node id %q", token)
	}
	return filepath.Join(p.Dir, token), nil
}

// Create makes the node folder, keys and server. A folder already made
// under req.Token is adopted: its server is started if it is not running.
func (p *Provider) Create(ctx context.Context, req providers.NodeRequest) (providers.Instance, error) {
	dir, err := p.nodeDir(req.Token)
	if err != nil {
		return providers.Instance{}, err
	}
	if _, err := readMeta(dir); err != nil {
		// The folder is built beside its final name and renamed into place
		// when complete, so a crash leaves either a whole node or a
		// ".partial" folder, which is thrown away here.
		partial := dir + partialSuffix
		os.RemoveAll(partial)
		if err := p.makeNode(partial, req); err != nil {
			os.RemoveAll(partial)
			return providers.Instance{}, err
		}
		if err := os.Rename(partial, dir); err != nil {
			return providers.Instance{}, err
		}
	}
	m, _ := readMeta(dir)
	if m.PoweredOff {
		return p.instance(dir)
	}
	if err := p.ensureServer(ctx, dir); err != nil {
		return providers.Instance{}, err
	}
	return p.instance(dir)
}

func (p *Provider) makeNode(dir string, req providers.NodeRequest) error {
	if err := os.MkdirAll(filepath.Join(dir, "root"), 0o700); err != nil {
		return err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "kumo node "+req.Name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "hostkey"), pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(req.AuthorizedKey+"\n"), 0o600); err != nil {
		return err
	}
	s, err := providers.ReadSpec[Spec]("local", req.Spec)
	if err != nil {
		return err
	}
	login := s.User
	if login == "" {
		login = currentUser()
	}
	// meta.json last: its presence means the folder is complete.
	return writeMeta(dir, meta{Token: req.Token, Run: req.Run, Group: req.Group, Unit: req.Unit, Name: req.Name, User: login,
		IP: p.pickAddress(req.Token)})
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "kumo"
}

func (p *Provider) instance(dir string) (providers.Instance, error) {
	m, err := readMeta(dir)
	if err != nil {
		return providers.Instance{}, err
	}
	signer, err := readSigner(filepath.Join(dir, "hostkey"))
	if err != nil {
		return providers.Instance{}, err
	}
	// A server that is down though the node was not powered off has
	// crashed or was killed: the node is in ERROR, as a VM whose
	// hypervisor died would be. Create with its token starts it again.
	st := providers.Running
	if _, alive := serverPID(dir); !alive {
		st = providers.Error
		if m.PoweredOff {
			st = providers.PowerOff
		}
	}
	return providers.Instance{
		ID: m.Token, Token: m.Token, State: st, IP: m.address(), PrivateIP: m.address(), Port: m.Port, User: m.User,
		HostKey: string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(signer.PublicKey()))),
	}, nil
}

// Find returns the node made under token, if any.
func (p *Provider) Find(ctx context.Context, ref providers.Ref) (providers.Instance, bool, error) {
	token := ref.Token
	dir, err := p.nodeDir(token)
	if err != nil {
		return providers.Instance{}, false, err
	}
	if _, err := readMeta(dir); err != nil {
		if _, err := os.Stat(dir + partialSuffix); err == nil {
			// Creation was interrupted: report it, so that it gets deleted.
			return providers.Instance{ID: token, Token: token, State: providers.Starting}, true, nil
		}
		return providers.Instance{}, false, nil
	}
	inst, err := p.instance(dir)
	return inst, err == nil, err
}

// partialSuffix marks a node folder still being made.
const partialSuffix = ".partial"

// Delete stops the node and everything it started, and removes its folder.
func (p *Provider) Delete(ctx context.Context, ref providers.Ref) error {
	id := ref.ID
	dir, err := p.nodeDir(id)
	if err != nil {
		return err
	}
	if err := stopServer(dir, id); err != nil {
		return err
	}
	os.RemoveAll(dir + partialSuffix)
	return os.RemoveAll(dir)
}

// PowerOff stops the node's server and every process of the node.
func (p *Provider) PowerOff(ctx context.Context, ref providers.Ref) error {
	id := ref.ID
	dir, err := p.nodeDir(id)
	if err != nil {
		return err
	}
	m, err := readMeta(dir)
	if err != nil {
		return fmt.Errorf("local: node %s: %w", id, err)
	}
	if err := stopServer(dir, id); err != nil {
		return err
	}
	m.PoweredOff = true
	return writeMeta(dir, m)
}

// PowerOn starts the node's server again, on its old port if it is free.
func (p *Provider) PowerOn(ctx context.Context, ref providers.Ref) (providers.Instance, error) {
	id := ref.ID
	dir, err := p.nodeDir(id)
	if err != nil {
		return providers.Instance{}, err
	}
	m, err := readMeta(dir)
	if err != nil {
		return providers.Instance{}, fmt.Errorf("local: node %s: %w", id, err)
	}
	if m.PoweredOff {
		// Written only when it changes: the server writes its port to the
		// same file as it starts.
		m.PoweredOff = false
		if err := writeMeta(dir, m); err != nil {
			return providers.Instance{}, err
		}
	}
	if err := p.ensureServer(ctx, dir); err != nil {
		return providers.Instance{}, err
	}
	return p.instance(dir)
}

// List returns the nodes of run found on disk.
func (p *Provider) List(ctx context.Context, run string, _ []map[string]any) ([]providers.Instance, error) {
	entries, err := os.ReadDir(p.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []providers.Instance
	for _, e := range entries {
		dir := filepath.Join(p.Dir, e.Name())
		m, err := readMeta(dir)
		if err != nil || m.Run != run {
			continue
		}
		if inst, err := p.instance(dir); err == nil {
			out = append(out, inst)
		}
	}
	return out, nil
}

// ensureServer starts the node server unless it runs, and waits until it
// listens. The server runs in its own session so that Ctrl-C in kumo, or
// kumo exiting, leaves the node up.
func (p *Provider) ensureServer(ctx context.Context, dir string) error {
	if _, alive := serverPID(dir); alive {
		return waitServing(ctx, dir) // it may still be starting
	}
	argv := p.ServerCommand
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		argv = []string{exe, "node-server"}
	}
	logf, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(argv[0], append(argv[1:], "--dir", dir)...)
	cmd.Args[0] = "kumo" // how a test binary standing in for kumo knows to act as it
	cmd.Env = nodeEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w} // fd 3: the server writes its port there when ready
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("local: starting node server: %w", err)
	}
	w.Close()
	go cmd.Wait() // reap it if it exits while kumo still runs

	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if _, err := strconv.Atoi(strings.TrimSpace(s)); err != nil {
			if serverUp(dir) {
				// Another server took the node while this one started
				// (two kumo processes, or one resumed after kill -9).
				return waitServing(ctx, dir)
			}
			return fmt.Errorf("local: node server for %s did not start; see %s", dir, filepath.Join(dir, "server.log"))
		}
		return nil
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		return fmt.Errorf("local: node server for %s did not start in 20s; see %s", dir, filepath.Join(dir, "server.log"))
	case <-ctx.Done():
		cmd.Process.Kill()
		return ctx.Err()
	}
}

// waitServing waits until the server that holds the node's lock has
// written its pid, which it does once it listens.
func waitServing(ctx context.Context, dir string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		pid, up := serverPID(dir)
		if !up {
			return fmt.Errorf("local: node server for %s stopped while starting; see %s", dir, filepath.Join(dir, "server.log"))
		}
		if pid > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("local: node server for %s did not start in 20s; see %s", dir, filepath.Join(dir, "server.log"))
}

// nodeEnv is the environment nodes inherit: kumo's, less its own
// settings (secrets above all) and the user's SSH agent.
func nodeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KUMO_") || strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func readMeta(dir string) (meta, error) {
	var m meta
	return m, providers.ReadJSON(filepath.Join(dir, "meta.json"), &m)
}

// writeMeta replaces meta.json atomically: the server and a power call
// may both write it.
func writeMeta(dir string, m meta) error {
	return providers.WriteJSON(filepath.Join(dir, "meta.json"), m)
}

func readSigner(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(b)
}

// Describe gives the sizes the spec records (local nodes share the host).
func (p *Provider) Describe(fields map[string]any) providers.Size {
	s, _ := providers.ReadSpec[Spec]("local", fields)
	return providers.Size{VCPUs: s.CPUs, MemoryGB: s.MemoryGB, DiskGB: s.DiskGB}
}

// ServeIfAsked serves a node and exits when this process was started as
// `PROGRAM node-server --dir DIR`: test binaries that stand in for kumo
// call it first thing in TestMain.
func ServeIfAsked() {
	if len(os.Args) > 3 && os.Args[1] == "node-server" && os.Args[2] == "--dir" {
		if err := Serve(os.Args[3], os.NewFile(3, "ready")); err != nil {
			os.Stderr.WriteString("kumo node-server: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
}
