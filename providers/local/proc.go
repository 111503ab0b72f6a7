package local

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A node's server holds an flock on server.lock in the node's folder for
// as long as it runs. The kernel drops it when the server dies, however it
// dies, so "is the node up" is "is its lock held": no pid to trust, and
// no second server for one node. A second one could otherwise start when
// kumo is killed while a server it started is still starting (its pid
// file not written yet) and the resumed run starts it again.
const serverLockName = "server.lock"

// errServed says another server already serves the node.
var errServed = errors.New("another server already serves this node")

// takeServerLock takes the node's lock, trying for a while if its holder
// is starting or stopping (or is serverUp taking it for an instant to
// look), and giving up at once if the holder serves the node.
func takeServerLock(dir string, wait time.Duration) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, serverLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// An open-file-description lock as well, which serverUp can
			// see without taking it (the flock it must take to test).
			lk := unix.Flock_t{Type: unix.F_WRLCK}
			if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
				f.Close()
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
					return nil, errServed
				}
				return nil, err
			}
			return f, nil
		}
		// A holder that has written its pid serves the node: no need to
		// wait for it. One that has not is starting or stopping.
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) || filePID(dir) > 0 {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, errServed
			}
			return nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serverUp reports whether a server holds the node's lock. It asks the
// kernel about the server's open-file-description lock without taking
// anything: a probe that took the lock, even for an instant, could make
// a server starting at that moment give up (eight callers powering on
// one node, on a loaded machine, did). A server of an older kumo holds
// the flock alone; it is tested by taking the flock only once its pid
// file names it, when it no longer starts.
func serverUp(dir string) bool {
	return lockHeld(dir, func() bool { return filePID(dir) > 0 })
}

// lockHeld is serverUp, told by named whether the pid file names a live
// server (asked only when the kernel shows no OFD lock).
func lockHeld(dir string, named func() bool) bool {
	f, err := os.OpenFile(filepath.Join(dir, serverLockName), os.O_RDWR, 0)
	if err != nil {
		return false // no server ever ran, or the folder is gone
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err == nil && lk.Type != unix.F_UNLCK {
		return true
	}
	if !named() {
		return false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// serverPID returns the node server's pid (0 while it is still starting,
// or when the pid file names a process that is not this node's server:
// a stale file, a recycled pid) and whether it is up.
func serverPID(dir string) (int, bool) {
	pid := filePID(dir)
	return pid, lockHeld(dir, func() bool { return pid > 0 })
}

// filePID is the pid the node's pid file names, if that process is the
// node's server and alive; else 0.
func filePID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "server.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !bytes.Contains(cmdline, []byte(dir)) || isZombie(pid) {
		return 0
	}
	return pid
}

// stopServer stops the node server (it kills the node's processes on its
// way out), then kills any process of the node still left, including ones
// that escaped its process groups or outlived a server killed with -9.
func stopServer(dir, token string) error {
	if _, alive := serverPID(dir); alive {
		if pid := waitPID(dir); pid > 0 {
			syscall.Kill(pid, syscall.SIGTERM)
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if _, alive := serverPID(dir); !alive {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if _, alive := serverPID(dir); alive {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	killNodeProcesses(token, 0)
	os.Remove(filepath.Join(dir, "server.pid"))
	return nil
}

// waitPID waits (a little) for a starting server to write its pid.
func waitPID(dir string) int {
	for i := 0; i < 250; i++ {
		if pid, up := serverPID(dir); pid > 0 || !up {
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0
}

// killNodeProcesses kills every process whose environment marks it as
// started by node token (except the caller, skip), and waits for them.
func killNodeProcesses(token string, skip int) {
	mark := []byte(nodeIDVar + "=" + token + "\x00")
	for round := 0; round < 50; round++ {
		pids := nodeProcesses(mark, skip)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func nodeProcesses(mark []byte, skip int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == skip || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		if bytes.Contains(env, mark) && !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}
