// Package ssh is the ssh_run builtin and the SSH client every builtin
// uses to reach nodes: one connection per node, reused by every call of a
// run, with host keys verified against the pins in the state.
package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kumo-dev/kumo/builtins"
)

// Pool holds one SSH connection per endpoint for the length of a run.
type Pool struct {
	env   *builtins.Env
	mu    sync.Mutex
	conns map[string]*conn

	agentOnce   sync.Once
	agentConn   net.Conn
	agentClient agent.ExtendedAgent
}

type conn struct {
	ready  chan struct{} // closed when dialling finished
	client *ssh.Client
	err    error
}

// PoolOf returns the run's pool.
func PoolOf(env *builtins.Env) *Pool {
	return env.Plugin("ssh.pool", func() any { return &Pool{env: env, conns: map[string]*conn{}} }).(*Pool)
}

func poolKey(ep builtins.Endpoint) string {
	key := ep.PinTarget + "|" + ep.User + "|" + ep.Addr() + "|" + ep.KeyFile
	if ep.Jump != nil {
		key += "|via " + poolKey(*ep.Jump)
	}
	return key
}

// Client returns the connection to ep, dialling it on first use.
// Concurrent callers for one endpoint share one dial.
func (p *Pool) Client(ctx context.Context, ep builtins.Endpoint) (*ssh.Client, error) {
	key := poolKey(ep)
	p.mu.Lock()
	c, ok := p.conns[key]
	if !ok {
		c = &conn{ready: make(chan struct{})}
		p.conns[key] = c
		p.mu.Unlock()
		c.client, c.err = p.dial(ctx, ep)
		close(c.ready)
		if c.err != nil {
			p.forget(key, c)
		} else {
			go p.keepalive(key, c)
		}
	} else {
		p.mu.Unlock()
	}
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.client, c.err
}

// Drop closes and forgets the connection to ep (after it broke).
func (p *Pool) Drop(ep builtins.Endpoint) {
	key := poolKey(ep)
	p.mu.Lock()
	c := p.conns[key]
	delete(p.conns, key)
	p.mu.Unlock()
	if c != nil && c.client != nil {
		c.client.Close()
	}
}

// DropNode closes connections to a node that was powered off or deleted.
func (p *Pool) DropNode(pinTarget string) {
	p.mu.Lock()
	var drop []*conn
	for k, c := range p.conns {
		if strings.HasPrefix(k, pinTarget+"|") {
			drop = append(drop, c)
			delete(p.conns, k)
		}
	}
	p.mu.Unlock()
	for _, c := range drop {
		<-c.ready
		if c.client != nil {
			c.client.Close()
		}
	}
}

func (p *Pool) forget(key string, c *conn) {
	p.mu.Lock()
	if p.conns[key] == c {
		delete(p.conns, key)
	}
	p.mu.Unlock()
}

// Close closes every connection.
func (p *Pool) Close() error {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[string]*conn{}
	p.mu.Unlock()
	for _, c := range conns {
		<-c.ready
		if c.client != nil {
			c.client.Close()
		}
	}
	if p.agentConn != nil {
		p.agentConn.Close()
	}
	return nil
}

// keepalive notices a dead connection so that the next call re-dials
// instead of failing on it.
func (p *Pool) keepalive(key string, c *conn) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for range t.C {
		if _, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil); err != nil {
			p.forget(key, c)
			c.client.Close()
			return
		}
	}
}

func (p *Pool) dial(ctx context.Context, ep builtins.Endpoint) (*ssh.Client, error) {
	auth, err := p.authMethods(ep)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User:            ep.User,
		Auth:            auth,
		HostKeyCallback: p.hostKeyCallback(ep),
		Timeout:         15 * time.Second,
	}
	nc, err := p.dialTCP(ctx, ep, cfg.Timeout)
	if err != nil {
		return nil, &UnreachableError{Label: ep.Label, Addr: ep.Addr(), Err: err}
	}
	// The handshake has no context: close the socket if ctx ends first.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	nc.SetDeadline(time.Now().Add(cfg.Timeout))
	cc, chans, reqs, err := ssh.NewClientConn(nc, ep.Addr(), cfg)
	if err != nil {
		nc.Close()
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		return nil, &UnreachableError{Label: ep.Label, Addr: ep.Addr(), Err: err}
	}
	nc.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// dialTCP opens the TCP stream to ep: directly, or as a direct-tcpip
// channel of the (pooled) connection to its jump host, as ProxyJump does.
func (p *Pool) dialTCP(ctx context.Context, ep builtins.Endpoint, timeout time.Duration) (net.Conn, error) {
	if ep.Jump == nil {
		d := net.Dialer{Timeout: timeout}
		return d.DialContext(ctx, "tcp", ep.Addr())
	}
	jump, err := p.Client(ctx, *ep.Jump)
	if err != nil {
		return nil, fmt.Errorf("through jump host %s: %w", ep.Jump.Label, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := jump.DialContext(ctx, "tcp", ep.Addr())
	if err != nil {
		p.Drop(*ep.Jump) // it may have died; the next attempt re-dials it
		return nil, fmt.Errorf("through jump host %s (%s): %w", ep.Jump.Label, ep.Jump.Addr(), err)
	}
	return nc, nil
}

// UnreachableError is a node or host that did not answer SSH.
type UnreachableError struct {
	Label, Addr string
	Err         error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%s (%s): cannot connect over SSH: %v", e.Label, e.Addr, e.Err)
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// HostKeyError is a host whose key is not the one kumo pinned or knows.
type HostKeyError struct {
	Label, Addr string
	Want, Got   string // fingerprints; Want is "" for an unknown host
}

func (e *HostKeyError) Error() string {
	if e.Want == "" {
		return fmt.Sprintf("%s (%s): host key %s is unknown; check it and add it to ~/.ssh/known_hosts (ssh-keyscan -p PORT HOST)", e.Label, e.Addr, e.Got)
	}
	return fmt.Sprintf("%s (%s): HOST KEY CHANGED: pinned %s, the host now offers %s. Someone may be impersonating the node, or it was rebuilt; kumo refuses to connect. If the change is expected, run `kumo destroy` for this run or remove the pin from the state", e.Label, e.Addr, e.Want, e.Got)
}

func (p *Pool) hostKeyCallback(ep builtins.Endpoint) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		got := string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(key)))
		pinned, err := p.env.Store.PinnedKey(ep.PinTarget)
		if err != nil {
			return err
		}
		if pinned != "" {
			if pinned == got {
				return nil
			}
			return &HostKeyError{Label: ep.Label, Addr: ep.Addr(), Want: fingerprint(pinned), Got: ssh.FingerprintSHA256(key)}
		}
		if ep.PinOnFirstUse {
			return p.env.Store.PinKey(p.env.Run, ep.PinTarget, got)
		}
		return checkKnownHosts(ep, hostname, remote, key)
	}
}

func checkKnownHosts(ep builtins.Endpoint, hostname string, remote net.Addr, key ssh.PublicKey) error {
	home, _ := os.UserHomeDir()
	path := filepath.Join(home, ".ssh", "known_hosts")
	unknown := &HostKeyError{Label: ep.Label, Addr: ep.Addr(), Got: ssh.FingerprintSHA256(key)}
	if _, err := os.Stat(path); err != nil {
		return unknown
	}
	cb, err := knownhosts.New(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	err = cb(hostname, remote, key)
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		if len(ke.Want) == 0 {
			return unknown
		}
		unknown.Want = ssh.FingerprintSHA256(ke.Want[0].Key)
		return unknown
	}
	return err
}

func fingerprint(authorizedKey string) string {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return "(unreadable pin)"
	}
	return ssh.FingerprintSHA256(k)
}

// authMethods: the key file of the endpoint (the group's key for nodes
// kumo made, an inventory's key for on-prem hosts); otherwise the user's
// ssh-agent and default keys, as OpenSSH would try them.
func (p *Pool) authMethods(ep builtins.Endpoint) ([]ssh.AuthMethod, error) {
	if ep.KeyFile != "" {
		signer, err := readKey(expandHome(ep.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ep.Label, err)
		}
		return []ssh.AuthMethod{ssh.PublicKeys(signer)}, nil
	}
	var signers []ssh.Signer
	if a := p.agent(); a != nil {
		if s, err := a.Signers(); err == nil {
			signers = append(signers, s...)
		}
	}
	home, _ := os.UserHomeDir()
	for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		if s, err := readKey(filepath.Join(home, ".ssh", name)); err == nil {
			signers = append(signers, s)
		}
	}
	if len(signers) == 0 {
		return nil, fmt.Errorf("%s: no SSH key to log in with: give a key file, start ssh-agent (SSH_AUTH_SOCK) or create ~/.ssh/id_ed25519", ep.Label)
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, nil
}

// agent is the user's ssh-agent, connected once per run, or nil.
func (p *Pool) agent() agent.ExtendedAgent {
	p.agentOnce.Do(func() {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			if c, err := net.Dial("unix", sock); err == nil {
				p.agentConn = c
				p.agentClient = agent.NewClient(c)
			}
		}
	})
	return p.agentClient
}

// expandHome turns a leading ~/ into the user's home folder.
func expandHome(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return path
}

func readKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading SSH key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("SSH key %s: %w", path, err)
	}
	return s, nil
}
