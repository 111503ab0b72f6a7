// Package sshdtest starts Debian's OpenSSH sshd on 127.0.0.1 for tests
// and benchmarks: a real server with its own config and host key, run as
// an unprivileged user whose shell is /bin/sh. As root (CI) that user is
// kumotest, which `make test` creates; otherwise it is the current user.
package sshdtest

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kumo-dev/kumo/internal/loopback"
)

// SSHD is the server binary.
const SSHD = "/usr/sbin/sshd"

// DefaultUser is who sshd runs as when the tests run as root.
const DefaultUser = "kumotest"

// Config describes one server.
type Config struct {
	User           string   // default: DefaultUser as root, else the current user
	AuthorizedKeys []string // authorized_keys lines
	AcceptEnv      string   // AcceptEnv patterns; default "*"
	Extra          string   // more sshd_config lines
	NoSFTP         bool     // no sftp subsystem, as on many hardened hosts
	// PrivateMounts runs the server in a mount namespace of its own
	// (root only), so that MountTmpfs gives its host a folder no other
	// server's sees: many hosts on one machine, each with its own files.
	PrivateMounts bool
}

// Server is a running sshd.
type Server struct {
	Addr    string // 127.0.0.1:port
	Port    int
	User    string
	HostKey ssh.PublicKey
	Dir     string
	cmd     *exec.Cmd
}

// Start starts sshd and waits until it answers.
func Start(cfg Config) (*Server, error) {
	if _, err := os.Stat(SSHD); err != nil {
		return nil, fmt.Errorf("sshdtest: %s is missing: run `make test` as root, which installs openssh-server", SSHD)
	}
	login := cfg.User
	if login == "" {
		login = DefaultUser
		if os.Getuid() != 0 {
			cur, err := user.Current()
			if err != nil {
				return nil, err
			}
			login = cur.Username
		}
	}
	u, err := user.Lookup(login)
	if err != nil {
		return nil, fmt.Errorf("sshdtest: user %s: %v (run `make test` as root, which creates it)", login, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	dir, err := os.MkdirTemp("", "kumo-sshd-")
	if err != nil {
		return nil, err
	}
	s := &Server{User: login, Dir: dir}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	s.HostKey = signer.PublicKey()
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return fail(err)
	}
	port, err := loopback.FreePort()
	if err != nil {
		return fail(err)
	}
	s.Port, s.Addr = port, "127.0.0.1:"+strconv.Itoa(port)
	acceptEnv := cfg.AcceptEnv
	if acceptEnv == "" {
		acceptEnv = "*"
	}
	subsystem := "Subsystem sftp internal-sftp"
	if cfg.NoSFTP {
		subsystem = "# no sftp subsystem"
	}
	// sshd keeps the first value it reads for an option: Extra goes first.
	config := fmt.Sprintf(`%s
ListenAddress %s
HostKey %s/host_ed25519
AuthorizedKeysFile %s/authorized_keys
PidFile %s/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AllowTcpForwarding yes
AcceptEnv %s
%s
MaxSessions 128
MaxStartups 256
LogLevel ERROR
`, cfg.Extra, s.Addr, dir, dir, dir, acceptEnv, subsystem)
	files := map[string]string{
		"host_ed25519":    string(pem.EncodeToMemory(block)),
		"authorized_keys": strings.Join(cfg.AuthorizedKeys, "\n") + "\n",
		"sshd_config":     config,
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return fail(err)
		}
		os.Chown(path, uid, gid)
	}
	os.Chmod(dir, 0o755)
	os.Chown(dir, uid, gid)

	cmd := exec.Command(SSHD, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	cmd.Dir = u.HomeDir
	cmd.Env = []string{"HOME=" + u.HomeDir, "USER=" + login, "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
	logf, _ := os.Create(filepath.Join(dir, "sshd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if os.Getuid() == 0 && uid != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if cfg.PrivateMounts {
		if os.Getuid() != 0 {
			return fail(fmt.Errorf("sshdtest: PrivateMounts needs root"))
		}
		// Go makes the new namespace's mounts private: nothing mounted
		// in it reaches the host.
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	s.cmd = cmd
	go cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "SSH-2.0-") {
				return s, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
	s.Stop()
	return nil, fmt.Errorf("sshdtest: sshd did not start on %s: %s", s.Addr, bytes.TrimSpace(log))
}

// Stop kills the server and every connection it serves, and removes its files.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
	os.RemoveAll(s.Dir)
}

// MountTmpfs mounts an empty tmpfs, writable by all, on the folder path
// as the server's sessions see it (a server started with PrivateMounts):
// the host keeps its own folder there, gone with the server.
func (s *Server) MountTmpfs(path string) error {
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(s.cmd.Process.Pid), "-m",
		"mount", "-t", "tmpfs", "-o", "mode=1777,size=16m", "kumo-sshdtest", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sshdtest: mounting a tmpfs on %s for %s: %v: %s", path, s.Addr, err, bytes.TrimSpace(out))
	}
	return nil
}

// KnownHostsLine is the server's line for a known_hosts file.
func (s *Server) KnownHostsLine() string {
	return fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey))))
}

// ClientKey writes a new ed25519 private key to path (mode 0600) and
// returns its public key in authorized_keys form.
func ClientKey(path string) (string, error) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))), nil
}
