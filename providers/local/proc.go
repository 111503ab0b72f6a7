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
)

// serverPID returns the node server's pid and whether it is alive. The
// pid is only trusted if that process is a node server for this folder,
// so a recycled pid is never mistaken for the node.
func serverPID(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "server.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
		return pid, false
	}
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// A zombie server is not running.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			return pid, false
		}
	}
	return pid, true
}

// stopServer stops the node server (it kills the node's processes on its
// way out), then kills any process of the node still left, including ones
// that escaped its process groups or outlived a server killed with -9.
func stopServer(dir, token string) error {
	if pid, alive := serverPID(dir); alive {
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
	killNodeProcesses(token, 0)
	os.Remove(filepath.Join(dir, "server.pid"))
	return nil
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
