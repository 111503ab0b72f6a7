package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Serve is the node server: the process that is a local node. It serves
// SSH on the node's own loopback address for the node folder dir, running each command with
// /bin/sh inside dir/root, and SFTP for file transfer. It runs until
// SIGTERM or until its folder disappears, and then kills every process
// the node started. ready, if not nil, receives the port once listening.
func Serve(dir string, ready io.WriteCloser) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// One server per node: the lock is held until this process ends.
	lock, err := takeServerLock(dir, 2*time.Second)
	if err != nil {
		return err
	}
	defer lock.Close()
	m, err := readMeta(dir)
	if err != nil {
		return err
	}
	hostKey, err := readSigner(filepath.Join(dir, "hostkey"))
	if err != nil {
		return err
	}
	authorized, _, _, _, err := ssh.ParseAuthorizedKey(mustRead(filepath.Join(dir, "authorized_keys")))
	if err != nil {
		return fmt.Errorf("authorized_keys: %w", err)
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(authorized.Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, fmt.Errorf("key not authorized for %s", c.User())
		},
	}
	cfg.AddHostKey(hostKey)

	// Listen on the node's own loopback address, keeping the port across
	// power cycles so that its address is stable.
	ln, err := net.Listen("tcp", net.JoinHostPort(m.address(), strconv.Itoa(m.Port)))
	if err != nil && m.Port != 0 {
		ln, err = net.Listen("tcp", net.JoinHostPort(m.address(), "0"))
	}
	if err != nil {
		return err
	}
	m.Port = ln.Addr().(*net.TCPAddr).Port
	if err := writeMeta(dir, m); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "server.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return err
	}
	if ready != nil {
		fmt.Fprintf(ready, "%d\n", m.Port)
		ready.Close()
	}

	n := &node{dir: dir, meta: m, cfg: cfg}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	go n.watchFolder(ctx, stop)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		go n.serveConn(c)
	}
	// The pid file goes first: a server that holds the lock without it
	// is starting or stopping, and one started now waits for the lock.
	os.Remove(filepath.Join(dir, "server.pid"))
	killNodeProcesses(m.Token, os.Getpid())
	return nil
}

type node struct {
	dir  string
	meta meta
	cfg  *ssh.ServerConfig
}

// watchFolder stops the server if its folder is removed behind its back
// (rm -rf .kumo), so that no orphan server outlives its node.
func (n *node) watchFolder(ctx context.Context, stop func()) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := os.Stat(filepath.Join(n.dir, "meta.json")); errors.Is(err, os.ErrNotExist) {
				stop()
				return
			}
		}
	}
}

func (n *node) serveConn(c net.Conn) {
	sc, chans, reqs, err := ssh.NewServerConn(c, n.cfg)
	if err != nil {
		c.Close()
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions are served")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go n.serveSession(sc.User(), ch, chReqs)
	}
}

func (n *node) serveSession(user string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var env []string
	var proc *process
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil {
				env = append(env, kv.Name+"="+kv.Value)
			}
			req.Reply(true, nil)
		case "exec", "shell":
			var p struct{ Command string }
			if req.Type == "exec" {
				if ssh.Unmarshal(req.Payload, &p) != nil {
					req.Reply(false, nil)
					continue
				}
			} else {
				p.Command = "exec /bin/sh -i"
			}
			if proc != nil {
				req.Reply(false, nil)
				continue
			}
			// Reply before starting, as sshd does: the command's output and
			// exit status must not overtake the reply.
			req.Reply(true, nil)
			proc = n.start(user, p.Command, env, ch)
			go func(proc *process) {
				proc.sendExit(ch)
				ch.Close()
			}(proc)
		case "subsystem":
			var p struct{ Name string }
			if ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go func() {
				srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(filepath.Join(n.dir, "root")))
				if err == nil {
					srv.Serve()
				}
				ch.Close()
			}()
		case "signal":
			var p struct{ Signal string }
			if ssh.Unmarshal(req.Payload, &p) == nil && proc != nil {
				proc.signal(p.Signal)
			}
			if req.WantReply {
				req.Reply(true, nil)
			}
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
	// The client closed the session: a command still running is killed,
	// as sshd does when the connection goes away.
	if proc != nil {
		proc.signal("KILL")
	}
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (n *node) start(user, command string, env []string, ch ssh.Channel) *process {
	cmd := exec.Command("/bin/sh", "-c", command)
	root := filepath.Join(n.dir, "root")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"HOME="+root, "PWD="+root, "USER="+user, "LOGNAME="+user, "SHELL=/bin/sh",
		"KUMO_NODE="+n.meta.Name, "KUMO_NODE_IP="+n.meta.address(), nodeIDVar+"="+n.meta.Token)
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		p := &process{cmd: cmd, done: make(chan struct{}), err: err}
		close(p.done)
		return p
	}
	cmd.Stdin = stdinR
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	// A background child that keeps stdout open must not hold the session
	// open forever: after the shell exits, give the copy a moment, then close.
	cmd.WaitDelay = 500 * time.Millisecond
	p := &process{cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(ch.Stderr(), "kumo node: %v\n", err)
		stdinR.Close()
		stdinW.Close()
		p.err = err
		close(p.done)
		return p
	}
	stdinR.Close()
	go func() {
		io.Copy(stdinW, ch)
		stdinW.Close()
	}()
	go func() {
		p.err = cmd.Wait()
		stdinW.Close()
		close(p.done)
	}()
	return p
}

func (p *process) signal(name string) {
	sig := map[string]syscall.Signal{"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "HUP": syscall.SIGHUP, "QUIT": syscall.SIGQUIT}[name]
	if sig == 0 {
		return
	}
	select {
	case <-p.done:
	default:
		if p.cmd.Process != nil {
			syscall.Kill(-p.cmd.Process.Pid, sig)
		}
	}
}

// sendExit waits for the command and reports how it ended, as sshd does.
func (p *process) sendExit(ch ssh.Channel) {
	<-p.done
	state := p.cmd.ProcessState
	if state == nil { // it never started
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{127}))
		return
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := map[syscall.Signal]string{syscall.SIGKILL: "KILL", syscall.SIGTERM: "TERM", syscall.SIGINT: "INT", syscall.SIGHUP: "HUP"}[ws.Signal()]
		if sig == "" {
			sig = "KILL"
		}
		ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{sig, false, "", ""}))
		return
	}
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(state.ExitCode())}))
}

// nodeIDVar marks every process a node starts, so that stopping the node
// finds them all, even those that left its process group or were orphaned.
const nodeIDVar = "KUMO_NODE_ID"

func mustRead(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		log.Printf("kumo node: %v", err)
	}
	return b
}
