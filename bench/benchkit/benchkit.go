// Package benchkit is what the benchmark programs share: running kumo and
// reading cell times from `kumo run --json`.
package benchkit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Kumo runs the kumo binary in dir with extra environment variables and
// returns its stdout; a failure carries its stderr.
func Kumo(kumo, dir string, env []string, args ...string) ([]byte, error) {
	out, _, err := KumoRSS(kumo, dir, env, args...)
	return out, err
}

// KumoRSS is Kumo that also returns the process's peak resident memory
// in bytes.
func KumoRSS(kumo, dir string, env []string, args ...string) ([]byte, int64, error) {
	cmd := exec.Command(kumo, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10
	}
	if err != nil {
		return nil, rss, fmt.Errorf("kumo %v: %v: %s", args, err, stderr.String())
	}
	return out, rss, nil
}

// RanCells reads `kumo run --json` output: the time of each cell that
// ran live, by title.
func RanCells(out []byte) map[string]time.Duration {
	times := map[string]time.Duration{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var cell struct {
			Title      string `json:"title"`
			Status     string `json:"status"`
			DurationMS int64  `json:"duration_ms"`
		}
		if json.Unmarshal(sc.Bytes(), &cell) == nil && cell.Status == "ran" {
			times[cell.Title] = time.Duration(cell.DurationMS) * time.Millisecond
		}
	}
	return times
}
